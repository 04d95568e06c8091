"""Reading rosters (hours_ledger/sheets.py): cells, times, numbers, headers and files, at their boundaries."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from hours_ledger import sheets
from hypothesis import given
from hypothesis import strategies as st
from xueshi_shared.problems import InvalidInput

HEADER = ",".join(c.name for c in sheets.COLUMNS)


def test_beijing_times_and_iso_instants():
    assert sheets.parse_time("2026-05-04 09:00") == dt.datetime(2026, 5, 4, 1, 0, tzinfo=dt.UTC)
    assert sheets.parse_time("2026/5/4 9:05") == dt.datetime(2026, 5, 4, 1, 5, tzinfo=dt.UTC)
    assert sheets.parse_time("2026-05-04 09:00:30").second == 30
    assert sheets.parse_time("2026-05-04T01:00:00Z") == dt.datetime(2026, 5, 4, 1, 0, tzinfo=dt.UTC)
    assert sheets.parse_time("2026-05-04T09:00:00+08:00") == dt.datetime(2026, 5, 4, 1, 0, tzinfo=dt.UTC)
    for bad in ("2026-05-04", "2026-05-04 24:00", "2026-02-30 09:00", "09:00", "tomorrow", "2026-05-04 9"):
        with pytest.raises(sheets.CellError):
            sheets.parse_time(bad)


def test_minutes_are_whole_seconds():
    assert sheets.parse_minutes("0") == 0
    assert sheets.parse_minutes("150") == 9000
    assert sheets.parse_minutes("12.5") == 750
    for bad in ("12.33", "abc", "NaN", "Infinity", ""):
        with pytest.raises(sheets.CellError):
            sheets.parse_minutes(bad)


def test_whole_numbers_and_answers():
    assert sheets.parse_int("10") == 10 and sheets.parse_int("10.0") == 10
    for bad in ("10.5", "ten", "1e400000"):
        with pytest.raises(sheets.CellError):
            sheets.parse_int(bad)
    assert sheets.parse_bool("是") is True and sheets.parse_bool("TRUE") is True
    assert sheets.parse_bool("否") is False and sheets.parse_bool("false") is False
    with pytest.raises(sheets.CellError):
        sheets.parse_bool("也许")


@given(st.integers(0, 600_000))
def test_any_whole_second_count_written_as_minutes_reads_back(seconds):
    written = str(seconds // 60) if seconds % 60 == 0 else str(seconds / 60)
    if (seconds / 60) * 60 == seconds and len(written) < 16:
        assert sheets.parse_minutes(written) == seconds


def test_headers_by_name_or_chinese_alias_in_any_order():
    names = [c.name for c in sheets.COLUMNS][::-1]
    sheet = sheets.read((",".join(names) + "\n" + ",".join("x" for _ in names) + "\n").encode())
    assert sheet.columns == names
    aliases = [c.alias for c in sheets.COLUMNS]
    sheet = sheets.read((",".join(aliases) + "\n" + ",".join("x" for _ in aliases) + "\n").encode("gb18030"))
    assert sheet.columns == [c.name for c in sheets.COLUMNS]
    # Only the required columns.
    required = [c.name for c in sheets.COLUMNS if c.required]
    assert sheets.read((",".join(required) + "\n" + "a," * (len(required) - 1) + "a\n").encode()).columns == required


@pytest.mark.parametrize("missing", [c.name for c in sheets.COLUMNS if c.required])
def test_each_required_header_is_required(missing):
    names = [c.name for c in sheets.COLUMNS if c.name != missing]
    with pytest.raises(InvalidInput) as refused:
        sheets.read((",".join(names) + "\nx\n").encode())
    assert refused.value.rule == "roster-headers" and refused.value.extensions["column"] == missing


def test_row_limit_at_the_limit_and_one_past():
    body = HEADER + "\n" + "R,x\n" * 5
    assert len(sheets.read(body.encode(), sheets.Limits(max_rows=5)).rows) == 5
    with pytest.raises(InvalidInput) as refused:
        sheets.read(body.encode(), sheets.Limits(max_rows=4))
    assert refused.value.rule == "roster-too-many-rows" and refused.value.extensions["row"] == 6


def test_blank_rows_are_skipped_and_row_numbers_kept():
    sheet = sheets.read((HEADER + "\n,,,\nR1,x\n\n\nR2,y\n").encode())
    assert [n for n, _ in sheet.rows] == [3, 6]


def test_a_zip_that_unpacks_too_far_is_refused_before_it_is_parsed():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (2 * 1024 * 1024))
    with pytest.raises(InvalidInput) as refused:
        sheets.read(out.getvalue(), sheets.Limits(max_unpacked_bytes=1024 * 1024))
    assert refused.value.rule == "roster-too-large"


def test_the_xlsx_template_reads_as_an_empty_roster():
    with pytest.raises(InvalidInput) as refused:
        sheets.read(sheets.template_xlsx())
    assert refused.value.rule == "roster-empty"
    with pytest.raises(InvalidInput) as refused:
        sheets.read(sheets.template_csv())
    assert refused.value.rule == "roster-empty"


def test_a_formula_deep_in_a_large_workbook_is_found_with_its_row_and_column():
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([c.alias for c in sheets.COLUMNS])
    for i in range(30_000):
        sheet.append([f"R{i}", "C", "RIC", "350102199003071234", "陈小明"])
    sheet["E25000"] = "=CONCAT(\"陈\",\"明\")"
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(InvalidInput) as refused:
        sheets.read(out.getvalue())
    assert refused.value.rule == "roster-formula"
    assert (refused.value.extensions["row"], refused.value.extensions["column"]) == (25000, "姓名")


def test_a_zip_that_is_no_workbook_is_refused():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(InvalidInput) as refused:
        sheets.read(out.getvalue())
    assert refused.value.rule == "roster-not-a-spreadsheet"
