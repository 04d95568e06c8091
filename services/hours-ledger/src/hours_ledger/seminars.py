"""Seminar attendance becomes 学时: each trainee's daily sign-in/sign-out is a record of the seminar's course,
under every rule of the ledger (12 学时 a day across all bases, 45 minutes each, parallel study, window).
National seminars credit only trainees who passed the completion assessment (结业考核).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys
from xueshi_shared.problems import Conflict, Forbidden, InvalidInput, NotFound, Problem, field_errors

from . import schemas, service
from .models import PersonKey, SeminarTrainee

_SEMINAR = sa.text("""SELECT id, kind, organizer_base_id, course_id, status FROM catalog.published_seminars
                      WHERE id = :id""")


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
    results = []
    for index, raw in enumerate(raw_trainees):
        try:
            trainee = schemas.SeminarTraineeIn.model_validate(raw)
        except ValidationError as exc:
            errors = field_errors(exc.errors(), prefix=("trainees", index))
            problem = InvalidInput(errors[0]["detail"], field=errors[0]["field"], errors=errors, rule="validation")
            results.append({"index": index, "status": 422, "problem": problem.body()})
            continue
        try:
            async with sessions() as db, db.begin():
                results.append({"index": index, **await _one(db, principal, keys, seminar, trainee, now)})
        except Problem as exc:
            results.append({"index": index, "status": exc.status, "problem": exc.body()})
    return results


async def _one(db, principal: Principal, keys: PiiKeys, seminar: Any, trainee: schemas.SeminarTraineeIn,
               now: dt.datetime) -> dict[str, Any]:
    if seminar.kind == "national" and trainee.assessment_passed is None:
        raise InvalidInput("national seminars record the completion assessment of every trainee",
                           rule="seminar-assessment", field="assessment_passed")
    record = schemas.RecordIn(
        external_id=f"seminar-{seminar.id}-{keys.lookup_hash(trainee.id_number).hex()[:24]}",
        course_id=seminar.course_id, id_type=trainee.id_type, id_number=trainee.id_number, name=trainee.name,
        unit=trainee.unit, sittings=[schemas.SittingIn(started_at=d.started_at, ended_at=d.ended_at)
                                     for d in trainee.days])
    if seminar.kind == "national" and trainee.assessment_passed is False:
        # Attendance is kept on the roster; nothing is credited.
        person = await service.lock_person(db, keys, record.id_type, record.id_number, record.name)
        await _roster(db, seminar.id, person["id"], trainee, None)
        refusal = InvalidInput("national seminars credit only trainees who passed the completion assessment",
                               rule="seminar-assessment", field="assessment_passed")
        return {"status": refusal.status, "problem": refusal.body()}  # returned, not raised: the roster stays
    status, result = await service.push_record(db, principal, record, keys, now)
    person_id = await db.scalar(
        sa.select(PersonKey.person_id).where(PersonKey.id_hash == keys.lookup_hash(trainee.id_number)))
    await _roster(db, seminar.id, person_id, trainee, result["record_id"])
    return {"status": status, "result": result}


async def _roster(db, seminar_id: uuid.UUID, person_id: int, trainee: schemas.SeminarTraineeIn,
                  record_id: uuid.UUID | None) -> None:
    values = {"seminar_id": seminar_id, "person_id": person_id, "title_level": trainee.title_level,
              "assessment_passed": trainee.assessment_passed, "record_id": record_id}
    stmt = pg_insert(SeminarTrainee).values(values)
    await db.execute(stmt.on_conflict_do_update(
        index_elements=["seminar_id", "person_id"],
        set_={"title_level": stmt.excluded.title_level, "assessment_passed": stmt.excluded.assessment_passed,
              "record_id": sa.func.coalesce(stmt.excluded.record_id, SeminarTrainee.record_id)}))
