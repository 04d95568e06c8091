"""Spreadsheet exports that a spreadsheet program cannot turn against its user.

A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by Excel, WPS and
LibreOffice (OWASP: CSV injection): a course title `=HYPERLINK("http://…","详情")` would run on the HR officer's
desk. Such text cells are prefixed with an apostrophe, which every spreadsheet shows as plain text. Numbers stay
numbers (a negative number is not text to neutralise).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_document", "safe_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a cell: text that a spreadsheet would take for a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_document(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV with a header line, CRLF line ends and a BOM (spreadsheet programs in China then open UTF-8 right)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(row.get(k)) for k in columns})
    return "\ufeff" + out.getvalue()
