"""Seminar attendance becomes 学时: each trainee's daily sign-in/sign-out is a record of the seminar's course,
under every rule of the ledger (12 学时 a day across all bases, 45 minutes each, parallel study, window).

- The attendance upload is the only door to a seminar's course (a direct push is `seminar-course`): national
  seminars credit only trainees who passed the completion assessment (结业考核), which a base pushing records
  itself could leave out.
- The attendance course needs no exam: the completion assessment is separate.
- Each trainee says whether they attended online. Online days are online sittings: they carry identity checks
  (防假学替学), and count at most the seconds attended when the base reports them. An offline seminar has no
  online trainees, and a mixed seminar's roster holds at most the plan's share of them (线上学员人数不超过总人数的50%):
  checked on the roster as it stands after the upload, uploads of one seminar one at a time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys
from xueshi_shared.problems import Conflict, Forbidden, InvalidInput, NotFound, Problem, Unavailable, field_errors

from . import schemas, service
from .domain.seminars import online_share_problem
from .models import PersonKey, SeminarTrainee

_SEMINAR = sa.text("""SELECT id, kind, organizer_base_id, course_id, status, mode, online_percent_max
                      FROM catalog.published_seminars WHERE id = :id""")

# The roster as it stands: its trainees, and how many attended online.
_ROSTER = sa.text("""SELECT count(*) AS trainees, count(*) FILTER (WHERE online) AS online
                     FROM hours_ledger.seminar_trainees WHERE seminar_id = :id""")


async def upload_attendance(sessions, principal: Principal, keys: PiiKeys, seminar_id: uuid.UUID,
                            raw_trainees: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    async with sessions() as db, db.begin():
        base_id = await service.require_base_in_standing(db, principal)
        seminar = (await db.execute(_SEMINAR, {"id": seminar_id})).first()
    if seminar is None:
        raise NotFound("no such seminar", rule="seminar-not-found")
    if seminar.organizer_base_id != base_id:
        raise Forbidden("only the organising base uploads a seminar's attendance", rule="other-base")
    if seminar.status != "approved" or seminar.course_id is None:
        raise Conflict(f"the seminar is {seminar.status}; attendance is taken for approved seminars",
                       rule="seminar-not-approved")
    results: list[dict[str, Any] | None] = [None] * len(raw_trainees)
    trainees: dict[int, schemas.SeminarTraineeIn] = {}
    for index, raw in enumerate(raw_trainees):
        try:
            trainees[index] = schemas.SeminarTraineeIn.model_validate(raw)
        except ValidationError as exc:
            errors = field_errors(exc.errors(), prefix=("trainees", index))
            problem = InvalidInput(errors[0]["detail"], field=errors[0]["field"], errors=errors, rule="validation")
            results[index] = {"index": index, "status": 422, "problem": problem.body()}
    # One transaction: each trainee in a savepoint of its own (a refused trainee leaves the others), the online
    # share checked on the roster as it stands at the end (nothing is kept when it breaks), and one upload of a
    # seminar at a time (two uploads could each keep to the share that together they break).
    try:
        async with sessions() as db, db.begin():
            await db.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                             {"key": f"seminar-roster {seminar.id}"})
            for index, trainee in trainees.items():
                try:
                    async with db.begin_nested():
                        results[index] = {"index": index,
                                          **await _one(db, principal, keys, seminar, index, trainee, now)}
                except Problem as exc:
                    results[index] = {"index": index, "status": exc.status, "problem": exc.body()}
            roster = (await db.execute(_ROSTER, {"id": seminar.id})).one()
            problem = online_share_problem(seminar.mode, seminar.online_percent_max, roster.trainees, roster.online)
            if problem:
                raise InvalidInput(problem, rule="seminar-online-share", field="trainees")
    except (DBAPIError, asyncpg.DeadlockDetectedError) as exc:
        # The upload locks its trainees one by one; a push locking several of them in another order can deadlock
        # with it. Nothing of the upload was kept, and sending it again is safe (its records are replays).
        if not _deadlock(exc):
            raise
        raise Unavailable("the upload met a concurrent push of the same trainees; nothing was kept: send it again",
                          retry_after="1") from None
    return results  # type: ignore[return-value]


def _deadlock(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, asyncpg.DeadlockDetectedError):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__
    return False


def _record(seminar: Any, keys: PiiKeys, trainee: schemas.SeminarTraineeIn) -> schemas.RecordIn:
    """The trainee's attendance as a record of the seminar's course: a day is a sitting, online for online
    trainees of a mixed seminar."""
    mode = ("online" if trainee.online else "offline") if seminar.mode == "mixed" else None
    return schemas.RecordIn(
        external_id=f"seminar-{seminar.id}-{keys.lookup_hash(trainee.id_number).hex()[:24]}",
        course_id=seminar.course_id, id_type=trainee.id_type, id_number=trainee.id_number, name=trainee.name,
        unit=trainee.unit, sittings=[
            schemas.SittingIn(started_at=d.started_at, ended_at=d.ended_at, mode=mode,
                              media_seconds=d.media_seconds if trainee.online else None,
                              identity_checks=d.identity_checks if trainee.online else None)
            for d in trainee.days])


async def _one(db, principal: Principal, keys: PiiKeys, seminar: Any, index: int, trainee: schemas.SeminarTraineeIn,
               now: dt.datetime) -> dict[str, Any]:
    assessment = f"trainees.{index}.assessment_passed"
    if seminar.kind == "national" and trainee.assessment_passed is None:
        raise InvalidInput("national seminars record the completion assessment of every trainee",
                           rule="seminar-assessment", field=assessment)
    record = _record(seminar, keys, trainee)
    try:
        if seminar.kind == "national" and trainee.assessment_passed is False:
            # Attendance is kept on the roster; nothing is credited.
            service.check_id_number(record.id_type, record.id_number)
            person = await service.lock_person(db, keys, record.id_type, record.id_number, record.name)
            await _roster(db, seminar.id, person["id"], trainee, None)
            refusal = InvalidInput("national seminars credit only trainees who passed the completion assessment",
                                   rule="seminar-assessment", field=assessment)
            return {"status": refusal.status, "problem": refusal.body()}  # returned, not raised: the roster stays
        status, result = await service.push_record(db, principal, record, keys, now, seminar=True)
    except Problem as exc:
        exc.errors = [{**e, "field": _trainee_field(index, e["field"])} for e in exc.errors]
        exc.field = None if exc.field is None else _trainee_field(index, exc.field)
        raise
    person_id = await db.scalar(
        sa.select(PersonKey.person_id).where(PersonKey.id_hash == keys.lookup_hash(trainee.id_number)))
    await _roster(db, seminar.id, person_id, trainee, result["record_id"])
    return {"status": status, "result": result}


def _trainee_field(index: int, field: str) -> str:
    """A record's field as the trainee's: sittings.2.identity_checks -> trainees.0.days.2.identity_checks."""
    if field.startswith("sittings."):
        field = "days." + field.removeprefix("sittings.")
    return f"trainees.{index}.{field}"


async def _roster(db, seminar_id: uuid.UUID, person_id: int, trainee: schemas.SeminarTraineeIn,
                  record_id: uuid.UUID | None) -> None:
    values = {"seminar_id": seminar_id, "person_id": person_id, "title_level": trainee.title_level,
              "online": trainee.online, "assessment_passed": trainee.assessment_passed, "record_id": record_id}
    stmt = pg_insert(SeminarTrainee).values(values)
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["seminar_id", "person_id"],
        set_={"title_level": stmt.excluded.title_level, "online": stmt.excluded.online,
              "assessment_passed": stmt.excluded.assessment_passed,
              "record_id": sa.func.coalesce(stmt.excluded.record_id, SeminarTrainee.record_id)}))
