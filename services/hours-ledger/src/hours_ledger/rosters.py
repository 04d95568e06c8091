"""Roster uploads: a training base sends a spreadsheet (sheets.py reads it), the ledger answers every row.

The upload is read and checked as a file in the request (a file that is not a roster is refused at once,
422, naming the row and the column), stored as a roster (`rosters`), and answered 202. Its records are then
pushed in the background through the one intake (intake.py): split into parts that touch disjoint people
(`intake.parts`), several parts at a time, exactly as the JSON batch is. After each part the rows' answers are
written (`roster_rows`) and the progress advances, so that `GET /v1/rosters/{id}` follows it.

A dry run (`dry_run=true`) runs the same code on each part in a transaction that is rolled back
(`intake.rehearse`): it writes nothing to the ledger, and answers what the upload would answer at that moment.

The file itself is not kept: it holds ID numbers in clear. The rows' cells are kept with the ID number
masked, for the answered sheet (`result.xlsx`). An upload whose process stopped (a restart) stops sending
heartbeats and is reported `interrupted` (its rows answered so far stay); uploading the file again is safe:
the records already written replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from xueshi_shared.database import pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys, normalise_id_number
from xueshi_shared.problems import Conflict, InvalidInput, NotFound, Problem, Unavailable

from . import intake, schemas, sheets

log = logging.getLogger("xueshi.ledger.rosters")

# Records a part holds: as the JSON batch's parts (api.BATCH_PART).
PART = 50
# An upload whose heartbeat is older than this is reported interrupted (the heartbeat beats every HEARTBEAT).
HEARTBEAT = dt.timedelta(seconds=15)
STALE = dt.timedelta(minutes=2)
# Tries of a part when no pooled connection frees in time (1 s, 2 s between them).
POOL_ATTEMPTS = 3
STATUSES = ("credited", "partial", "not_credited", "replayed", "refused")

_COURSE_CODES = """SELECT code, id FROM catalog.published_courses WHERE base_id = $1 AND code = ANY($2::text[])"""
_CREATE = """
    INSERT INTO hours_ledger.rosters (base_id, id, uploaded_by, filename, format, dry_run, status, headers,
                                      rows_total, records_total)
    VALUES ($1, $2, $3, $4, $5, $6, 'processing', $7::jsonb, $8, $9)
    RETURNING created_at"""
_PROGRESS = """UPDATE hours_ledger.rosters SET rows_done = rows_done + $3, heartbeat_at = now()
               WHERE base_id = $1 AND id = $2"""
_BEAT = "UPDATE hours_ledger.rosters SET heartbeat_at = now() WHERE base_id = $1 AND id = $2 AND status = 'processing'"
_FINISH = """UPDATE hours_ledger.rosters SET status = $3, finished_at = now(), heartbeat_at = now()
             WHERE base_id = $1 AND id = $2"""
_ROSTER = """
    SELECT id, filename, format, dry_run, rows_total, records_total, rows_done, created_at, finished_at, headers,
           CASE WHEN status = 'processing' AND heartbeat_at < now() - $3::interval THEN 'interrupted'
                ELSE status END AS status
    FROM hours_ledger.rosters WHERE base_id = $1 AND id = $2"""
_COUNTS = """SELECT status, count(*) AS n FROM hours_ledger.roster_rows WHERE base_id = $1 AND roster_id = $2
             GROUP BY status"""
_ROWS = """
    SELECT row, external_id, status, result, problem FROM hours_ledger.roster_rows
    WHERE base_id = $1 AND roster_id = $2 AND row > $3 AND ($4::text IS NULL OR status = $4)
    ORDER BY row LIMIT $5"""
_ALL_ROWS = """SELECT row, cells, status, result, problem FROM hours_ledger.roster_rows
               WHERE base_id = $1 AND roster_id = $2 ORDER BY row"""


@dataclass(slots=True)
class Upload:
    """An accepted roster on its way through the ledger."""

    id: uuid.UUID
    base_id: uuid.UUID
    sender: Principal
    dry_run: bool
    sheet: sheets.Sheet
    groups: list[sheets.Group]
    course_ids: dict[str, Any]


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_text).decode()


def _text(value: object) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


async def accept(engine: AsyncEngine, sender: Principal, data: bytes, filename: str | None, dry_run: bool,
                 limits: sheets.Limits) -> tuple[Upload, dict[str, Any]]:
    """Read the file (in a thread: a large workbook takes seconds), or refuse it; store the roster."""
    base_id = sender.require_base()
    async with pooled(engine) as conn:
        await intake.require_base_in_standing(conn, sender)
    sheet = await asyncio.to_thread(sheets.read, data, limits)
    groups = sheets.group(sheet)
    code = sheet.index("course_code")
    assert code is not None
    codes = sorted({text for _, cells in sheet.rows if (text := cells[code]) is not None})
    upload_id = uuid.uuid4()
    async with intake.transaction(engine) as conn:
        course_ids = {r["code"]: r["id"] for r in await conn.fetch(_COURSE_CODES, base_id, codes)}
        created = await conn.fetchval(_CREATE, base_id, upload_id, sender.id, (filename or "")[:255] or None,
                                      sheet.format, dry_run, _json(sheet.headers), len(sheet.rows), len(groups))
    upload = Upload(upload_id, base_id, sender, dry_run, sheet, groups, course_ids)
    return upload, {"id": upload_id, "status": "processing", "dry_run": dry_run, "format": sheet.format,
                    "rows_total": len(sheet.rows), "records_total": len(groups), "rows_done": 0,
                    "created_at": created}


def row_status(outcome: intake.Outcome) -> str:
    match outcome:
        case intake.Credited(result):
            return result.status  # credited, partial or not_credited
        case intake.Replayed():
            return "replayed"
    return "refused"


async def process(engine: AsyncEngine, upload: Upload, keys: PiiKeys, slots: asyncio.Semaphore) -> None:
    """Push (or rehearse) every record of the upload, part by part, writing each part's answers as it goes."""
    groups = upload.groups
    done_status = "done"
    beat = asyncio.create_task(_heartbeat(engine, upload))
    try:
        parts = intake.parts([(normalise_id_number(g.person), g.external_id) for g in groups], PART)

        async def run(part: list[int]) -> None:
            async with slots:
                await _part(engine, upload, keys, [groups[i] for i in part])

        await asyncio.gather(*(run(p) for p in parts))
    except asyncio.CancelledError:
        done_status = "interrupted"
        raise
    except Exception:
        log.exception("roster upload %s stopped", upload.id)
        done_status = "interrupted"
    finally:
        beat.cancel()
        with contextlib.suppress(Exception):
            async with pooled(engine) as conn:
                await conn.execute(_FINISH, upload.base_id, upload.id, done_status)


async def _heartbeat(engine: AsyncEngine, upload: Upload) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT.total_seconds())
        with contextlib.suppress(Exception):
            async with pooled(engine) as conn:
                await conn.execute(_BEAT, upload.base_id, upload.id)


async def _part(engine: AsyncEngine, upload: Upload, keys: PiiKeys, groups: Sequence[sheets.Group]) -> None:
    sheet = upload.sheet
    answers: dict[int, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {}
    valid: list[tuple[int, schemas.RecordIn]] = []
    for n, grp in enumerate(groups):
        try:
            valid.append((n, sheets.record(sheet, grp, upload.course_ids)))
        except Problem as exc:
            answers[n] = ("refused", None, sheets.annotate(exc.body(), sheet, grp))
    if valid:
        senders = [upload.sender] * len(valid)
        records = [r for _, r in valid]
        outcomes: list[intake.Outcome] = []
        for attempt in range(POOL_ATTEMPTS):
            try:
                outcomes = await (intake.rehearse(engine, senders, records, keys) if upload.dry_run
                                  else intake.push(engine, senders, records, keys))
                break
            except PoolTimeout:  # the service is overloaded: nothing of the part was written; wait, try again
                if attempt + 1 < POOL_ATTEMPTS:
                    await asyncio.sleep(2 ** attempt)
                    continue
                outcomes = [intake.Refused(Unavailable(
                    "every database connection stayed busy; nothing of these rows was written: upload the file "
                    "again (what was written replays)", rule="database-busy"))] * len(records)
            except Exception:  # nothing of the part was written (a push is one transaction, or one per record)
                log.exception("roster upload %s: a part failed", upload.id)
                outcomes = [intake.Refused(Problem(
                    "an unexpected error stopped these rows; nothing of them was written: upload the file again",
                    rule="internal-error"))] * len(records)
                break
        for (n, _), outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, intake.Credited | intake.Replayed):
                answers[n] = (row_status(outcome), outcome.result.json(), None)
            elif isinstance(outcome, intake.Refused):
                answers[n] = ("refused", None, sheets.annotate(outcome.problem.body(), sheet, groups[n]))
            else:  # Failed is only returned for concurrent single pushes
                raise outcome.error
    rows = []
    for n, grp in enumerate(groups):
        status, result, problem = answers[n]
        result_text, problem_text = (None if result is None else _json(result)), (
            None if problem is None else _json(problem))
        for i in grp.rows:
            number, cells = sheet.rows[i]
            rows.append((upload.base_id, upload.id, number, grp.external_id or None, status,
                         _json(sheets.stored_cells(sheet, cells)), result_text, problem_text))
    async with intake.transaction(engine) as conn:
        await conn.copy_records_to_table("roster_rows", schema_name="hours_ledger", records=rows, columns=(
            "base_id", "roster_id", "row", "external_id", "status", "cells", "result", "problem"))
        await conn.execute(_PROGRESS, upload.base_id, upload.id, len(rows))


# ---- reading ----------------------------------------------------------------------------------------

async def _roster(conn: Any, sender: Principal, roster_id: uuid.UUID) -> Any:
    base_id = sender.require_base()
    row = await conn.fetchrow(_ROSTER, base_id, roster_id, STALE)
    if row is None:  # another base's upload is not found either
        raise NotFound("no roster upload of this base has that id", rule="not-found")
    return row


def _decode(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def view(engine: AsyncEngine, sender: Principal, roster_id: uuid.UUID, after_row: int, limit: int,
               status: str | None) -> dict[str, Any]:
    async with pooled(engine) as conn:
        roster = await _roster(conn, sender, roster_id)
        counts = {s: 0 for s in STATUSES} | {r["status"]: r["n"] for r in await conn.fetch(
            _COUNTS, sender.base_id, roster_id)}
        rows = await conn.fetch(_ROWS, sender.base_id, roster_id, after_row, status, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "id": roster["id"], "status": roster["status"], "dry_run": roster["dry_run"], "format": roster["format"],
        "filename": roster["filename"], "rows_total": roster["rows_total"], "records_total": roster["records_total"],
        "rows_done": roster["rows_done"], "counts": counts, "created_at": roster["created_at"],
        "finished_at": roster["finished_at"],
        "rows": [{"row": r["row"], "external_id": r["external_id"], "status": r["status"],
                  "result": _decode(r["result"]), "problem": _decode(r["problem"])} for r in rows],
        "next_after_row": (rows[-1]["row"] if rows else after_row) if more else None,
    }


async def answered_sheet(engine: AsyncEngine, sender: Principal, roster_id: uuid.UUID) -> tuple[str | None, bytes]:
    """The uploaded sheet with each row's answer (`sheets.RESULT_COLUMNS`); 409 while the upload is running."""
    async with pooled(engine) as conn:
        roster = await _roster(conn, sender, roster_id)
        if roster["status"] == "processing":
            raise Conflict(f"the upload is still being answered ({roster['rows_done']} of {roster['rows_total']} "
                           "rows): GET /v1/rosters/{id} follows it", rule="roster-not-finished",
                           headers={"Retry-After": "5"})
        rows = await conn.fetch(_ALL_ROWS, sender.base_id, roster_id)
    headers = _decode(roster["headers"])

    def sheet_rows() -> Iterator[tuple[list[str | None], list[Any]]]:
        for r in rows:
            result, problem = _decode(r["result"]), _decode(r["problem"])
            yield (_decode(r["cells"]), [
                r["status"], None if result is None else result["credited_hours"],
                None if result is None else result["record_id"],
                None if problem is None else problem["type"].rsplit("/", 1)[-1],
                None if problem is None else problem["detail"],
                None if problem is None else problem.get("column")])

    data = await asyncio.to_thread(sheets.answered_xlsx, headers, sheet_rows())
    return roster["filename"], data


def check_status_filter(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status is one of {', '.join(STATUSES)}", rule="validation", field="status")
    return status
