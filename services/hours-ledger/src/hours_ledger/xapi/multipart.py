"""Statements with attachments (xAPI-Communication §1.5.2, xAPI-Data §2.4.11) and signed statements (§2.6):
`multipart/mixed` in and out. Pure: bytes in, statements and attachment data out, or a StatementError.

A request's first part is `application/json` (the statement or statements); each later part is one
attachment's data, with `X-Experience-API-Hash` (its SHA-256, the attachment's `sha2`) and
`Content-Transfer-Encoding: binary`. Every attachment without a `fileUrl` has its part; no part is left over.
A signed statement's signature attachment holds a compact JWS (RS256, RS384 or RS512) whose payload is the
statement; when the JWS header carries a certificate (`x5c`), the signature is verified with it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from . import store, validation
from .validation import StatementError

_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]
    body: bytes


def boundary(content_type: str) -> str:
    found = _BOUNDARY.search(content_type)
    if not found:
        raise StatementError("Content-Type", "xapi-multipart", "multipart/mixed names its boundary")
    return found.group(1) or found.group(2)


def parts(body: bytes, mark: str) -> list[Part]:
    delimiter = b"--" + mark.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise StatementError("body", "xapi-multipart", "the body does not hold its parts between the boundary")
    out = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise StatementError("body", "xapi-multipart", "a part has no blank line after its headers")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        out.append(Part(headers, content))
    return out


def attachments_of(statements: Iterable[Any]) -> list[dict[str, Any]]:
    found = []
    for statement in statements:
        if isinstance(statement, dict):
            found += [a for a in statement.get("attachments") or [] if isinstance(a, dict)]
            obj = statement.get("object")
            if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
                found += [a for a in obj.get("attachments") or [] if isinstance(a, dict)]
    return found


def check_json_request(statements: list[Any]) -> None:
    """A statement sent as plain JSON carries no attachment data: each of its attachments has a fileUrl."""
    for attachment in attachments_of(statements):
        if "fileUrl" not in attachment:
            raise StatementError("attachments", "xapi-attachment-data", "an attachment without fileUrl is sent with "
                                 "its data, as multipart/mixed")


def read(content_type: str, body: bytes) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """The request's statements (its JSON part, parsed) and the attachment data by SHA-256."""
    found = parts(body, boundary(content_type))
    first = found[0]
    if first.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise StatementError("body", "xapi-multipart", "the first part is application/json: the statements")
    try:
        statements = orjson.loads(first.body)
    except orjson.JSONDecodeError:
        raise StatementError("body", "xapi-json", "the first part is not JSON") from None
    listed = statements if isinstance(statements, list) else [statements]
    declared = {a.get("sha2"): a for a in attachments_of(listed)}
    data: dict[str, tuple[str, bytes]] = {}
    for part in found[1:]:
        sha2 = part.headers.get("x-experience-api-hash")
        if not sha2:
            raise StatementError("body", "xapi-multipart", "an attachment's part names its X-Experience-API-Hash")
        if part.headers.get("content-transfer-encoding", "").lower() != "binary":
            raise StatementError("body", "xapi-multipart", "an attachment's part is Content-Transfer-Encoding: binary")
        if sha2 not in declared:
            raise StatementError("body", "xapi-multipart", f"no attachment of the statements has the hash {sha2}")
        if hashlib.sha256(part.body).hexdigest() != sha2.lower():
            raise StatementError("body", "xapi-multipart", f"the data of attachment {sha2} does not hash to it")
        data[sha2] = (part.headers.get("content-type", declared[sha2].get("contentType", "")), part.body)
    for sha2, attachment in declared.items():
        if "fileUrl" not in attachment and sha2 not in data:
            raise StatementError("attachments", "xapi-attachment-data", f"attachment {sha2} has neither fileUrl "
                                 "nor its data")
    for statement in listed:
        _check_signature(statement, data)
    return statements, data


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HASHES = {"RS256": "SHA256", "RS384": "SHA384", "RS512": "SHA512"}


def _check_signature(statement: Any, data: dict[str, tuple[str, bytes]]) -> None:
    if not isinstance(statement, dict):
        return
    for attachment in statement.get("attachments") or []:
        if not isinstance(attachment, dict) or attachment.get("usageType") != validation.SIGNATURE:
            continue
        signed = data.get(attachment.get("sha2", ""))
        if signed is None:
            raise StatementError("attachments", "xapi-signature", "a signature attachment is sent with its data")
        try:
            header_b64, payload_b64, signature_b64 = signed[1].decode("ascii").strip().split(".")
            header = orjson.loads(_b64(header_b64))
            payload = orjson.loads(_b64(payload_b64))
            signature = _b64(signature_b64)
        except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError):
            raise StatementError("attachments", "xapi-signature", "the signature is no compact JWS of a JSON "
                                 "statement") from None
        if not isinstance(header, dict) or header.get("alg") not in _HASHES:
            raise StatementError("attachments", "xapi-signature", "a statement is signed with RS256, RS384 or RS512")
        unsigned = {k: v for k, v in statement.items() if k != "attachments"}
        if not isinstance(payload, dict) or not store.same_statement(
                {k: v for k, v in payload.items() if k != "attachments"}, unsigned):
            raise StatementError("attachments", "xapi-signature", "the signature's payload is not the statement")
        if header.get("x5c"):
            _verify(header, f"{header_b64}.{payload_b64}".encode("ascii"), signature)


def _verify(header: dict[str, Any], signed: bytes, signature: bytes) -> None:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        key = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0])).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("not an RSA key")
        key.verify(signature, signed, padding.PKCS1v15(), getattr(hashes, _HASHES[header["alg"]])())
    except (InvalidSignature, ValueError, TypeError, IndexError):
        raise StatementError("attachments", "xapi-signature", "the signature does not verify with its x5c "
                             "certificate") from None


def response(document: Any, attachments: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A statement or StatementResult with the data of its attachments (sha2, content type, bytes): the body and
    its Content-Type."""
    mark = secrets.token_hex(16)
    chunks = [f"--{mark}\r\nContent-Type: application/json\r\n\r\n".encode(), orjson.dumps(document), b"\r\n"]
    for sha2, content_type, content in attachments:
        chunks += [f"--{mark}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n"
                   f"X-Experience-API-Hash: {sha2}\r\n\r\n".encode(), content, b"\r\n"]
    chunks.append(f"--{mark}--".encode())
    return b"".join(chunks), f"multipart/mixed; boundary={mark}"
