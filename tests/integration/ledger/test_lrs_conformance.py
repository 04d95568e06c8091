"""ADL's LRS conformance suite (../shared/tools/lrs-conformance, the suite's own tests, run by node) against the
ledger's LRS over HTTP: every test of xAPI 1.0.3 and of 2.0.0 passes.

The suite is copied into a cache (LRS_CT_HOME, default ~/.cache/lrs-conformance/xueshi) and its npm dependencies
installed there once, from the npm registry; the ledger runs as a real uvicorn server on a port, with a base
approved through the catalog's API, whose id and key are the suite's Basic credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hours_ledger.app import create_app as create_ledger

from tests.support.factories import approved_base
from tests.support.servers import serving

# The project's shared tools sit beside its root (../shared); LRS_CT_SUITE names another copy.
SUITE = Path(os.environ.get("LRS_CT_SUITE", Path(__file__).resolve().parents[4] / "shared" / "tools" / "lrs-conformance"))
HOME = Path(os.environ.get("LRS_CT_HOME", Path.home() / ".cache" / "lrs-conformance" / "xueshi"))


def installed_suite() -> Path:
    """The suite, copied and installed once per version of its package.json."""
    if not (SUITE / "package.json").exists():
        pytest.fail(f"ADL's conformance suite is not at {SUITE}")
    stamp = hashlib.sha256((SUITE / "package.json").read_bytes()).hexdigest()
    work = HOME / "suite"
    done = HOME / ".installed"
    if not done.exists() or done.read_text() != stamp or not (work / "node_modules").is_dir():
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(SUITE, work)
        for path in work.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        work.chmod(work.stat().st_mode | 0o200)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work, check=True,
                       capture_output=True, timeout=900)
        done.write_text(stamp)
    return work


def run_suite(work: Path, endpoint: str, user: str, password: str, version: str) -> dict:
    logs = HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    link = work / "logs"
    if link.is_symlink() or link.exists():
        link.unlink() if link.is_symlink() else shutil.rmtree(link)
    link.symlink_to(logs)
    proc = subprocess.run(["node", "bin/console_runner.js", "-e", endpoint, "-a", "-u", user, "-p", password,
                           "-x", version], cwd=work, capture_output=True, text=True, timeout=1800)
    summaries = re.findall(r'\{"total":\d+,"passed":\d+,"failed":\d+,"version":"[^"]+"\}', proc.stdout)
    assert summaries, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads(summaries[-1])
    if summary["failed"] or summary["passed"] != summary["total"]:
        newest = max(logs.glob("*.log"), key=lambda p: p.stat().st_mtime)
        failures = []

        def walk(node: dict, path: list[str]) -> None:
            for child in node.get("tests") or []:
                walk(child, [*path, node.get("name", "")])
            if node.get("status") == "failed" and not node.get("tests"):
                failures.append(f"{' / '.join(path[-2:])} / {node.get('name')}: {(node.get('error') or '')[:200]}")

        log = json.loads(newest.read_text())
        walk(log.get("log", log), [])
        pytest.fail(f"{summary}\n" + "\n".join(failures[:40]))
    return summary


@pytest.mark.slow
@pytest.mark.parametrize(("version", "tests"), [("1.0.3", 1365), ("2.0.0", 1442)])
async def test_adl_lrs_conformance_suite_passes_every_test(settings, catalog, fuzhou, version, tests):
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm run ADL's conformance suite (Debian: apt install nodejs npm)")
    work = await asyncio.to_thread(installed_suite)
    base = await approved_base(catalog, fuzhou)
    # The version a request without one is answered in: the suites of both versions check it (each its own).
    lrs = settings.model_copy(update={"rate_limit_per_minute": 0, "xapi_default_version": version})
    async with serving(create_ledger(lrs)) as url:
        summary = await asyncio.to_thread(run_suite, work, f"{url}/xapi", str(base.id), base.key, version)
    assert summary["total"] >= tests and summary["passed"] == summary["total"]
