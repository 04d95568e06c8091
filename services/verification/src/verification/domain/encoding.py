"""Multibase/multikey encodings (base58btc) and the Bitstring Status List's encodedList."""

from __future__ import annotations

import base64
import gzip

import base58

__all__ = ["MIN_STATUS_BITS", "decode_multikey", "decode_status_list", "encode_multikey", "encode_status_list",
           "multibase_b58", "status_bit", "unmultibase_b58"]

ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub, varint
# Bitstring Status List v1.0: at least 16 KB (131,072 bits) so that one revocation tells nothing.
MIN_STATUS_BITS = 131_072


def multibase_b58(data: bytes) -> str:
    return "z" + base58.b58encode(data).decode()


def unmultibase_b58(text: str) -> bytes:
    if not text.startswith("z"):
        raise ValueError("not a base58btc multibase value")
    return base58.b58decode(text[1:])


def encode_multikey(public_key: bytes) -> str:
    return multibase_b58(ED25519_PUB + public_key)


def decode_multikey(text: str) -> bytes:
    raw = unmultibase_b58(text)
    if not raw.startswith(ED25519_PUB) or len(raw) != 34:
        raise ValueError("not an Ed25519 multikey")
    return raw[2:]


def encode_status_list(bits: bytes) -> str:
    """`encodedList`: "u" + base64url(gzip(bitstring)), no padding; bit 0 is the most significant bit."""
    return "u" + base64.urlsafe_b64encode(gzip.compress(bits, mtime=0)).decode().rstrip("=")


def decode_status_list(text: str) -> bytes:
    if not text.startswith("u"):
        raise ValueError("encodedList must be base64url multibase ('u')")
    data = text[1:]
    return gzip.decompress(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))


def status_bit(bits: bytes, index: int) -> bool:
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


def set_status_bit(bits: bytearray, index: int, value: bool = True) -> None:
    mask = 0x80 >> (index % 8)
    if value:
        bits[index // 8] |= mask
    else:
        bits[index // 8] &= ~mask & 0xFF
