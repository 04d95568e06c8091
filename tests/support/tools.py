"""External tools the tests use as independent checkers, installed by the tests themselves.

Each helper returns what is needed or calls pytest.skip with the reason printed, only when the tool
truly cannot be installed here (no network to the registries, no permission).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[1] / "js"


@cache
def _npm_ready() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    if not all((JS / "node_modules" / p).exists() for p in ("@digitalbazaar/vc", "@digitalcredentials/verifier-core")):
        proc = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            return f"npm ci failed: {proc.stderr[-500:]}"
    return None


def npm_verifier() -> Path:
    reason = _npm_ready()
    if reason:
        print(f"SKIP independent credential verification: {reason}")
        pytest.skip(reason)
    return JS / "verify.mjs"


@cache
def _apt(packages: tuple[str, ...]) -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "apt-get needs root here"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env,
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        update = subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=600)
        if update.returncode == 0:
            proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env,
                                  capture_output=True, text=True, timeout=1200)
    return None if proc.returncode == 0 else f"apt-get install {' '.join(packages)} failed: {proc.stderr[-300:]}"


def debian_tool(binary: str, *packages: str) -> str:
    """The path of `binary`, installing Debian `packages` first if it is missing."""
    path = shutil.which(binary)
    if path is None:
        reason = _apt(tuple(packages))
        path = shutil.which(binary)
        if path is None:
            reason = reason or f"{binary} is still missing after installing {', '.join(packages)}"
            print(f"SKIP: {reason}")
            pytest.skip(reason)
    return path
