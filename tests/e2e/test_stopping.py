"""Whatever stops them, `make run` and the test suite leave no embedded PostgreSQL behind: Ctrl-C, `kill` and a
closed terminal alike, after a service that was killed, and after the server was restarted under them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_run import free_ports

ROOT = Path(__file__).resolve().parents[2]


def _postgres_of(data: Path) -> list[int]:
    """Pids of postgres processes serving the data directory under `data`."""
    out = subprocess.run(["pgrep", "-f", f"postgres -D {data}"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _gone(data: Path, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _postgres_of(data):
            return True
        time.sleep(0.3)
    return False


def _make_run(data: Path, ports: list[int]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_") and k != "DATABASE_URL"}
    env.update(XUESHI_DATA_DIR=str(data), XUESHI_CATALOG_PORT=str(ports[0]), XUESHI_LEDGER_PORT=str(ports[1]),
               XUESHI_VERIFICATION_PORT=str(ports[2]), MAKEFLAGS="")
    # A session of its own, like a terminal's: a signal to its group reaches make and everything under it.
    return subprocess.Popen(["make", "-s", "-C", str(ROOT), "run"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("make run did not become ready")


def _stop(proc: subprocess.Popen, how: signal.Signals) -> None:
    os.killpg(proc.pid, how)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_make_run_stops_its_database_whatever_stops_it(tmp_path, how):
    data = tmp_path / ".data"
    ports = free_ports(3)
    proc = _make_run(data, ports)
    _wait_ready(ports[2], proc)
    assert _postgres_of(data)
    _stop(proc, how)
    assert _gone(data), f"{how.name} left the embedded PostgreSQL running"


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_a_killed_service_does_not_keep_the_database_alive_for_ever(tmp_path, how):
    """A standalone `xueshi serve` on the embedded database, stopped by `how` (SIGKILL runs no exit handler at
    all: its pid stays in the handle file); then `make run`, and Ctrl-C stops the database all the same."""
    data = tmp_path / ".data"
    ports = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XUESHI_") and k != "DATABASE_URL"}
    env.update(XUESHI_DATA_DIR=str(data), XUESHI_CATALOG_PORT=str(ports[0]))
    subprocess.run([sys.executable, "-m", "xueshi.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True, timeout=300)
    serve = subprocess.Popen([sys.executable, "-m", "xueshi.cli", "serve", "catalog"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(ports[0], serve)
        serve.send_signal(how)
        serve.wait(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
    handles = data / "postgres" / ".handle_pids.json"
    if how == signal.SIGKILL:
        assert serve.pid in json.loads(handles.read_text())  # the stale pid the library would wait for
    proc = _make_run(data, ports)
    _wait_ready(ports[2], proc)
    _stop(proc, signal.SIGINT)
    assert _gone(data), f"after a service stopped by {how.name}, Ctrl-C left the embedded PostgreSQL running"


def test_the_test_setup_stops_the_server_it_started_even_after_a_restart():
    """The suite's crash test restarts its embedded PostgreSQL; run on a data directory of its own, in a pytest of
    its own, it leaves nothing running once that pytest has exited (before the fix, that server stayed up)."""
    # A short path: PostgreSQL's socket lives in the data directory, and socket paths have a length limit.
    data = Path(tempfile.mkdtemp(prefix="xs-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "PYTEST_ADDOPTS")}
    env.update(XUESHI_TEST_DATA_DIR=str(data))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/integration/ledger/test_crash_safety.py"], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "restarted: " in done.stdout or "passed" in done.stdout
    try:
        assert _gone(data), "the embedded server the test setup started is still running"
    finally:
        shutil.rmtree(data, ignore_errors=True)
