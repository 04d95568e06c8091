"""`xueshi run` (what `make run` calls) as a user meets it: a fresh directory, real processes."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

XUESHI = [sys.executable, "-m", "xueshi.cli"]
NAMES = ("catalog", "hours-ledger", "verification")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def environment(ports: list[int], database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_") and k != "DATABASE_URL"}
    env.update(XUESHI_CATALOG_PORT=str(ports[0]), XUESHI_LEDGER_PORT=str(ports[1]),
               XUESHI_VERIFICATION_PORT=str(ports[2]))
    if database_url:
        # The shared test database keeps its stamps across tests: they are sealed with the tests' master key.
        from tests.conftest import TEST_PII_KEY

        env["DATABASE_URL"] = database_url
        env["XUESHI_PII_KEY"] = TEST_PII_KEY
    return env


class Running:
    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.env = cwd, env
        self.urls = {n: f"http://127.0.0.1:{p}" for n, p in zip(
            NAMES, (env["XUESHI_CATALOG_PORT"], env["XUESHI_LEDGER_PORT"], env["XUESHI_VERIFICATION_PORT"]), strict=True)}
        self.log = cwd / "run.log"

    def __enter__(self) -> Running:
        self.out = open(self.log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([*XUESHI, "run"], cwd=self.cwd, env=self.env, stdout=self.out, stderr=self.out)
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        started = time.monotonic()
        pending = set(NAMES)
        while pending and time.monotonic() - started < timeout:
            assert self.proc.poll() is None, self.log.read_text()
            for name in list(pending):
                try:
                    if httpx.get(f"{self.urls[name]}/readyz", timeout=1).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        assert not pending, f"not ready: {pending}\n{self.log.read_text()}"
        return time.monotonic() - started

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def me(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_run_on_embedded_postgres_twice_with_a_cli_command_in_between(tmp_path):
    env = environment(free_ports(3))
    with Running(tmp_path, env) as first:
        first.wait_ready()
        token_file = tmp_path / ".data" / "admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        admin = token_file.read_text().strip()
        for url in first.urls.values():
            assert me(url, admin).json()["role"] == "province_admin"
        assert "admin-token" in first.log.read_text()

        # A `xueshi` command in the same directory joins the same embedded server, while it runs.
        added = subprocess.run([*XUESHI, "staff", "add", "--name", "审计员", "--role", "auditor"],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        auditor = added.stdout.strip()
        assert me(first.urls["catalog"], auditor).status_code == 200
        # ...and leaving does not take the database away from the running services.
        assert httpx.get(f"{first.urls['hours-ledger']}/readyz", timeout=5).status_code == 200

        assert first.stop() == 0
    for url in first.urls.values():
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            raise AssertionError(f"{url} still answers after Ctrl-C")
        except httpx.HTTPError:
            pass
    assert list((tmp_path / ".data").rglob("PG_VERSION")), "the embedded server keeps its data under .data/"
    assert _postmaster_gone(tmp_path), "Ctrl-C must stop the embedded PostgreSQL too"

    with Running(tmp_path, env) as second:
        second.wait_ready()
        assert (tmp_path / ".data" / "admin-token").read_text().strip() == admin, "a second run must reuse the data"
        assert me(second.urls["verification"], admin).status_code == 200
        assert me(second.urls["verification"], auditor).status_code == 200
        assert second.stop() == 0


def _postmaster_gone(project: Path) -> bool:
    pid_files = list((project / ".data").rglob("postmaster.pid"))
    for pid_file in pid_files:
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            continue
    return True


def test_run_with_database_url_starts_no_embedded_server(tmp_path, database_url, engine):
    env = environment(free_ports(3), database_url=database_url)
    with Running(tmp_path, env) as running:
        running.wait_ready()
        admin = (tmp_path / ".data" / "admin-token").read_text().strip()
        assert me(running.urls["catalog"], admin).status_code == 200
        assert running.stop() == 0
    assert not list((tmp_path / ".data").rglob("postmaster.pid"))
    assert not (tmp_path / ".data" / "postgres").exists()

