"""Rosters from spreadsheets (POST /v1/rosters): every row answered as the JSON batch answers its record, a dry
run that writes nothing and answers the same, re-uploads that replay, and bad files refused naming the row and
column."""

from __future__ import annotations

import io

import openpyxl
import pytest
import sqlalchemy as sa

from tests.support.factories import approved_course, at, online_sitting, record_body, ric
from tests.support.rosters import CHINESE, COLUMNS, answered, rows_of, to_csv, to_xlsx, upload

CODE = "C-ROSTER-5"


@pytest.fixture
async def coded_course(catalog, base, fuzhou):
    return await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online", code=CODE)


def two_records(course_id):
    """One record of two sittings (two rows, 315 minutes: 7 学时 credited), one of one sitting (90 minutes:
    partial, 2 of 7)."""
    first = record_body(course_id, ric(1), [online_sitting(at("09:00"), at("11:00")),
                                             online_sitting(at("14:00"), at("17:15"))], external_id="R-1")
    second = record_body(course_id, ric(2), [online_sitting(at("09:00"), at("10:30"))], external_id="R-2",
                         name="林小红")
    return [first, second]


async def ledger_count(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT count(*) FROM hours_ledger.records"))).scalar_one()


def without_ids(rows):
    return [{**r, "result": None if r["result"] is None else {**r["result"], "record_id": None}} for r in rows]


async def test_templates_name_every_column(ledger):
    xlsx = await ledger.get("/v1/rosters/template.xlsx")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert [c.value for c in book.worksheets[0][1]] == COLUMNS
    notes = {row[0]: row[1] for row in book["说明"].iter_rows(min_row=2, values_only=True)}
    assert list(notes.values()) == CHINESE
    csv_template = await ledger.get("/v1/rosters/template.csv")
    assert csv_template.content.startswith(b"\xef\xbb\xbf")
    assert csv_template.content[3:].decode().strip().split(",") == COLUMNS


async def test_the_template_filled_in_credits_and_is_answered_per_row(ledger, base, coded_course, engine):
    records = two_records(coded_course)
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    view = await answered(ledger, base, to_xlsx(rows, CHINESE), "名单.xlsx")
    assert view["status"] == "done" and view["rows_total"] == 3 and view["records_total"] == 2
    assert view["rows_done"] == 3 and view["counts"] == {"credited": 2, "partial": 1, "not_credited": 0,
                                                         "replayed": 0, "refused": 0}
    assert [(r["row"], r["external_id"], r["status"]) for r in view["rows"]] == [
        (2, "R-1", "credited"), (3, "R-1", "credited"), (4, "R-2", "partial")]
    assert view["rows"][0]["result"] == view["rows"][1]["result"]  # two rows, one record
    assert view["rows"][0]["result"]["credited_hours"] == 7 and view["rows"][2]["result"]["credited_hours"] == 2
    record = await ledger.get(f"/v1/records/{view['rows'][2]['result']['record_id']}", headers=base.headers)
    assert record.status_code == 200
    assert await ledger_count(engine) == 2
