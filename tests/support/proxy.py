"""A TCP proxy in front of the database that a test can cut and restore, to make it unreachable."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.engine import make_url


class DatabaseProxy:
    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        if isinstance(socket_dir, str) and socket_dir.startswith("/"):
            self._unix = f"{socket_dir}/.s.PGSQL.{url.port or 5432}"
            self._tcp = None
        else:
            self._unix = None
            self._tcp = (url.host or "127.0.0.1", url.port or 5432)
        self._url = url
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        query = {k: v for k, v in self._url.query.items() if k != "host"}
        return self._url.set(host="127.0.0.1", port=self.port, query=query).render_as_string(hide_password=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._unix:
                up_reader, up_writer = await asyncio.open_unix_connection(self._unix)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self._tcp)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
