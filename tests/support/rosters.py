"""Rosters for tests: records (in /v1/records' JSON shape) written as spreadsheet rows, uploads and waiting."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import Any

import openpyxl

COLUMNS = ["external_id", "course_code", "id_type", "id_number", "name", "unit_name", "unit_uscc", "unit_region",
           "started_at", "ended_at", "sitting_mode", "media_minutes", "identity_passed", "identity_failed",
           "exam_questions", "exam_correct", "exam_passed"]
CHINESE = ["外部编号", "课程编号", "证件类型", "证件号码", "姓名", "单位名称", "统一社会信用代码", "单位所在地区",
           "开始时间", "结束时间", "学习方式", "有效播放分钟", "人脸核验通过", "人脸核验失败", "考试题数", "答对题数",
           "考试通过"]


def beijing(instant: str) -> str:
    """An ISO instant as Beijing time YYYY-MM-DD HH:MM (the form a base types)."""
    value = dt.datetime.fromisoformat(instant).astimezone(dt.timezone(dt.timedelta(hours=8)))
    return value.strftime("%Y-%m-%d %H:%M")


def rows_of(record: dict[str, Any], code: str) -> list[dict[str, Any]]:
    """A record's rows: one per sitting, the record's columns repeated on each."""
    exam = record.get("exam")
    rows = []
    for sitting in record["sittings"]:
        checks = sitting.get("identity_checks")
        rows.append({
            "external_id": record["external_id"], "course_code": code, "id_type": record["id_type"],
            "id_number": record["id_number"], "name": record["name"], "unit_name": record["unit"]["name"],
            "unit_uscc": record["unit"]["uscc"], "unit_region": record["unit"]["region"],
            "started_at": beijing(sitting["started_at"]), "ended_at": beijing(sitting["ended_at"]),
            "sitting_mode": sitting.get("mode"),
            "media_minutes": None if sitting.get("media_seconds") is None else _minutes(sitting["media_seconds"]),
            "identity_passed": None if checks is None else checks["passed"],
            "identity_failed": None if checks is None else checks["failed"],
            "exam_questions": None if exam is None else exam["questions"],
            "exam_correct": None if exam is None else exam["correct"],
            "exam_passed": None if exam is None else ("是" if exam["passed"] else "否"),
        })
    return rows


def _minutes(seconds: int) -> str:
    return str(seconds // 60) if seconds % 60 == 0 else str(seconds / 60)


def to_csv(rows: list[dict[str, Any]], headers: list[str] = COLUMNS, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS[:len(headers)]])
    return out.getvalue().encode(encoding)


def to_xlsx(rows: list[dict[str, Any]], headers: list[str] = COLUMNS) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append([row.get(c) for c in COLUMNS[:len(headers)]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(ledger, base, data: bytes, filename: str = "roster.csv", *, dry_run: bool = False, headers=None):
    return await ledger.post("/v1/rosters", params={"dry_run": "true"} if dry_run else None,
                             files={"file": (filename, data)}, headers=headers or base.headers)


async def answered(ledger, base, data: bytes, filename: str = "roster.csv", *, dry_run: bool = False,
                   timeout: float = 120) -> dict[str, Any]:
    """Upload and wait until every row is answered; the roster's view with all its rows."""
    accepted = await upload(ledger, base, data, filename, dry_run=dry_run)
    assert accepted.status_code == 202, accepted.text
    return await wait(ledger, base, accepted.json()["id"], timeout)


async def wait(ledger, base, roster_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        view = await ledger.get(f"/v1/rosters/{roster_id}", params={"limit": 10_000}, headers=base.headers)
        assert view.status_code == 200, view.text
        body = view.json()
        if body["status"] != "processing":
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)
