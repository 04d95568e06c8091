"""Statements with attachments and signed statements (hours_ledger/xapi/multipart.py): what is accepted, what is
refused, and the multipart answer's shape."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest
from hours_ledger.xapi import multipart
from hours_ledger.xapi.validation import SIGNATURE, StatementError

DATA = "这是一份证书".encode()
SHA = hashlib.sha256(DATA).hexdigest()


def statement(*attachments: dict) -> dict:
    return {"actor": {"mbox": "mailto:a@example.cn"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
            "object": {"id": "https://courses.example.cn/au/1"}, "attachments": list(attachments)}


def attachment(sha2: str = SHA, **more) -> dict:
    return {"usageType": "http://adlnet.gov/expapi/attachments/certificate", "display": {"zh-CN": "证书"},
            "contentType": "text/plain", "length": len(DATA), "sha2": sha2, **more}


def body(document, *parts: tuple[dict[str, str], bytes], mark: str = "abc123") -> tuple[str, bytes]:
    chunks = [f"--{mark}\r\nContent-Type: application/json\r\n\r\n".encode(), orjson.dumps(document), b"\r\n"]
    for headers, content in parts:
        chunks += [f"--{mark}\r\n".encode(), "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode(), b"\r\n",
                   content, b"\r\n"]
    chunks.append(f"--{mark}--".encode())
    return f"multipart/mixed; boundary={mark}", b"".join(chunks)


PART = {"Content-Type": "text/plain", "Content-Transfer-Encoding": "binary", "X-Experience-API-Hash": SHA}


def test_a_statement_and_its_attachment_data():
    media, raw = body(statement(attachment()), (PART, DATA))
    statements, data = multipart.read(media, raw)
    assert statements["attachments"][0]["sha2"] == SHA and data == {SHA: ("text/plain", DATA)}
    quoted = media.replace("boundary=abc123", 'boundary="abc123"')
    assert multipart.read(quoted, raw)[1] == data


@pytest.mark.parametrize(("parts", "why"), [
    ((), "neither fileUrl nor its data"),
    (((dict(PART, **{"X-Experience-API-Hash": "0" * 64}), DATA),), "no attachment"),
    (((dict(PART, **{"Content-Transfer-Encoding": "base64"}), DATA),), "binary"),
    ((({k: v for k, v in PART.items() if k != "X-Experience-API-Hash"}, DATA),), "X-Experience-API-Hash"),
    (((PART, DATA + b"!"),), "does not hash"),
])
def test_refusals(parts, why):
    media, raw = body(statement(attachment()), *parts)
    with pytest.raises(StatementError) as refused:
        multipart.read(media, raw)
    assert why in refused.value.detail


def test_the_first_part_is_the_json_and_the_boundary_is_named():
    with pytest.raises(StatementError):
        multipart.read("multipart/mixed;", b"--x\r\n\r\n{}\r\n--x--")
    raw = b"--m\r\nContent-Type: text/plain\r\n\r\n{}\r\n--m--"
    with pytest.raises(StatementError) as refused:
        multipart.read("multipart/mixed; boundary=m", raw)
    assert "application/json" in refused.value.detail


def test_json_requests_carry_no_attachment_data():
    multipart.check_json_request([statement(attachment(fileUrl="https://files.example.cn/1.txt"))])
    with pytest.raises(StatementError):
        multipart.check_json_request([statement(attachment())])


def _jws(header: dict, payload: dict) -> bytes:
    def enc(value: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")
    return f"{enc(header)}.{enc(payload)}.c2lnbmF0dXJl".encode()


@pytest.mark.parametrize(("alg", "ok"), [("RS256", True), ("RS384", True), ("RS512", True), ("HS256", False),
                                         ("none", False)])
def test_signed_statements(alg, ok):
    unsigned = statement()
    del unsigned["attachments"]
    jws = _jws({"alg": alg}, unsigned)
    sha = hashlib.sha256(jws).hexdigest()
    signed = statement({"usageType": SIGNATURE, "display": {"en-US": "signature"},
                        "contentType": "application/octet-stream", "length": len(jws), "sha2": sha})
    media, raw = body(signed, ({"Content-Type": "application/octet-stream", "Content-Transfer-Encoding": "binary",
                                "X-Experience-API-Hash": sha}, jws))
    if ok:
        multipart.read(media, raw)
    else:
        with pytest.raises(StatementError):
            multipart.read(media, raw)


def test_a_signature_of_another_statement_is_refused():
    other = {**statement(), "verb": {"id": "http://adlnet.gov/expapi/verbs/failed"}}
    del other["attachments"]
    jws = _jws({"alg": "RS256"}, other)
    sha = hashlib.sha256(jws).hexdigest()
    signed = statement({"usageType": SIGNATURE, "display": {"en-US": "signature"},
                        "contentType": "application/octet-stream", "length": len(jws), "sha2": sha})
    media, raw = body(signed, ({"Content-Transfer-Encoding": "binary", "X-Experience-API-Hash": sha}, jws))
    with pytest.raises(StatementError) as refused:
        multipart.read(media, raw)
    assert "payload" in refused.value.detail


def test_the_multipart_answer_names_each_hash_twice():
    document = statement(attachment())
    raw, media = multipart.response(document, [(SHA, "text/plain", DATA)])
    mark = media.split("; boundary=")[1]
    assert media == f"multipart/mixed; boundary={mark}" and mark.isalnum()
    assert raw.count(SHA.encode()) == 2 and DATA in raw
    again, data = multipart.read(media, raw)
    assert again == document and data == {SHA: ("text/plain", DATA)}
