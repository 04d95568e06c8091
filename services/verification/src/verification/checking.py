"""Checking a credential's signature in worker processes of their own.

A credential someone sends is JSON-LD to expand and canonicalize: bounded in cost (jsonld.Limits), but still
CPU work. In threads of the service's own process it held Python's interpreter lock, and the event loop, which
waits for that lock after every network read or write, answered in seconds instead of milliseconds while a few
crafted credentials were being refused (measured in CI: 3.3 s for a normal verification under eight of them).
In worker processes the operating system shares the cores: the service keeps answering whatever they do.

The workers are started with `spawn` (no copy of a running event loop), once per process, on first use or by
`warm()`; results come back as plain tuples, so no exception has to cross the process boundary.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import multiprocessing
from typing import Any

__all__ = ["WORKERS", "check_signature", "warm"]

# Processes checking signatures at once. On the 2-core machines this was measured on, one leaves a core to the
# event loop and the database.
WORKERS = 1
_pool: concurrent.futures.ProcessPoolExecutor | None = None


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
    return _pool


def _check(credential: dict[str, Any], public_key: bytes) -> tuple[str, bool, str]:
    """In the worker: ("checked", ok, detail), ("too-complex", False, why), ("undefined", False, why) or
    ("invalid", False, the error's type)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from . import jsonld
    from .domain import integrity

    try:
        jsonld.check_fully_defined(credential)
        ok, detail = integrity.verify(credential, Ed25519PublicKey.from_public_bytes(public_key), jsonld.canonicalize)
        return "checked", ok, detail
    except jsonld.TooComplex as exc:
        return "too-complex", False, str(exc)
    except jsonld.UndefinedTerms as exc:
        return "undefined", False, str(exc)
    except Exception as exc:  # malformed JSON-LD of any kind
        return "invalid", False, type(exc).__name__


def _nothing() -> None:
    return None


async def warm() -> None:
    """Start the workers now (a service does at start-up) rather than on the first verification."""
    await asyncio.get_running_loop().run_in_executor(_executor(), _nothing)


async def check_signature(credential: dict[str, Any], public_key: bytes) -> tuple[str, bool, str]:
    return await asyncio.get_running_loop().run_in_executor(_executor(), _check, credential, public_key)
