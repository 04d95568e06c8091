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

__all__ = ["WORKERS", "check_pdf", "check_signature", "warm"]

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


def _check_pdf(pdf: bytes, ca_der: bytes) -> dict[str, Any]:
    """In the worker: what a PDF's signatures say, as plain data.

    - `signatures`: how many; the registry's proofs carry exactly one, a certification signature.
    - `certified`: the (first) signature is a certification signature with DocMDP permission 1 (no changes).
    - `intact`, `valid`, `trusted`: pyHanko's digest, signature and chain checks (against the deployment CA).
    - `whole_file`: the signature's byte range covers the whole file (nothing appended after it);
      `appended`: bytes or revisions after the signed revision (`revisions` counts them);
      `modification`: pyHanko's diff policy's verdict on what was appended (`none` when nothing).
    - `credential`: the embedded credential.json, parsed (None when missing or not JSON).
    """
    import io

    import orjson
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import MDPPerm
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    out: dict[str, Any] = {"readable": False, "signatures": 0, "certified": False, "intact": False, "valid": False,
                           "trusted": False, "whole_file": False, "appended": False, "revisions": 0,
                           "modification": None, "signer": None, "credential": None, "error": None}
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        out["revisions"] = reader.xrefs.total_revisions
        signatures = reader.embedded_regular_signatures
        out["readable"], out["signatures"] = True, len(signatures)
        if not signatures:
            return out
        first = signatures[0]
        out["certified"] = first.docmdp_level == MDPPerm.NO_CHANGES
        context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(ca_der)], allow_fetching=False)
        status = validate_pdf_signature(first, context, key_usage_settings=KeyUsageConstraints())
        out["intact"], out["valid"], out["trusted"] = bool(status.intact), bool(status.valid), bool(status.trusted)
        out["signer"] = status.signing_cert.subject.human_friendly if status.signing_cert else None
        out["whole_file"] = status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
        signed_until = first.byte_range[-2] + first.byte_range[-1]
        out["appended"] = signed_until != len(pdf) or len(signatures) > 1
        out["modification"] = status.modification_level.name.lower() if status.modification_level else None
        out["docmdp_ok"] = status.docmdp_ok
        # The credential embedded in the signed revision (a later revision could swap it: then `appended` is set).
        def look(parent: Any, key: str) -> Any:
            return parent[key] if parent is not None and key in parent else None  # [] dereferences

        leaves = look(look(look(reader.root, "/Names"), "/EmbeddedFiles"), "/Names")
        if leaves is not None:
            for i in range(0, len(leaves) - 1, 2):
                if str(leaves[i]) == "credential.json":
                    stream = leaves[i + 1]["/EF"]["/F"]
                    try:
                        out["credential"] = orjson.loads(stream.data)
                    except orjson.JSONDecodeError:
                        out["credential"] = None
    except Exception as exc:  # a PDF that cannot be read is a failed check, not a 500
        out["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return out


async def check_pdf(pdf: bytes, ca_der: bytes) -> dict[str, Any]:
    return await asyncio.get_running_loop().run_in_executor(_executor(), _check_pdf, pdf, ca_der)


def _nothing() -> None:
    return None


async def warm() -> None:
    """Start the workers now (a service does at start-up) rather than on the first verification."""
    await asyncio.get_running_loop().run_in_executor(_executor(), _nothing)


async def check_signature(credential: dict[str, Any], public_key: bytes) -> tuple[str, bool, str]:
    return await asyncio.get_running_loop().run_in_executor(_executor(), _check, credential, public_key)
