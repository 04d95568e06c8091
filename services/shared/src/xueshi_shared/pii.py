"""Personal ID numbers: masking for every output and log."""

from __future__ import annotations

__all__ = ["mask_id_number"]


def mask_id_number(value: str) -> str:
    """Keep the first six (region) and last four characters: `350102********123X`."""
    if len(value) <= 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]
