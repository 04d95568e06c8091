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

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine
from xueshi_shared.database import pooled
from xueshi_shared.iam.principal import Principal
from xueshi_shared.pii import PiiKeys, normalise_id_number
from xueshi_shared.problems import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    Problem,
    Unavailable,
    field_errors,
)

from . import intake, schemas
from .domain.seminars import online_share_problem

_SEMINAR = """SELECT id, kind, organizer_base_id, course_id, status, mode, online_percent_max
              FROM catalog.published_seminars WHERE id = $1"""

# The roster as it stands: its trainees, and how many attended online.
_ROSTER = """SELECT count(*) AS trainees, count(*) FILTER (WHERE online) AS online
             FROM hours_ledger.seminar_trainees WHERE seminar_id = $1"""

# Trainees onto the roster (again: an upload sent again updates them; a record, once there, stays).
_ENROL = """
    INSERT INTO hours_ledger.seminar_trainees AS t (seminar_id, person_id, title_level, online, assessment_passed,
                                                    record_id)
    SELECT $1, u.pid, u.title_level, u.online, u.passed, u.record_id
    FROM unnest($2::bigint[], $3::text[], $4::bool[], $5::bool[], $6::uuid[]) AS u(pid, title_level, online, passed,
                                                                                  record_id)
    ON CONFLICT (seminar_id, person_id) DO UPDATE SET
      title_level = EXCLUDED.title_level, online = EXCLUDED.online, assessment_passed = EXCLUDED.assessment_passed,
      record_id = coalesce(EXCLUDED.record_id, t.record_id)"""


async def upload_attendance(engine: AsyncEngine, principal: Principal, keys: PiiKeys, seminar_id: uuid.UUID,
                            raw_trainees: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Each trainee's outcome (`schemas.BatchItem`), in order. The trainees become records of the seminar's course,
    pushed through the ledger's one intake (intake.push_within) in the upload's own transaction."""
    async with pooled(engine) as conn:
        base_id = await intake.require_base_in_standing(conn, principal)
        seminar = await conn.fetchrow(_SEMINAR, seminar_id)
    if seminar is None:
        raise NotFound("no such seminar", rule="seminar-not-found")
    if seminar["organizer_base_id"] != base_id:
        raise Forbidden("only the organising base uploads a seminar's attendance", rule="other-base")
    if seminar["status"] != "approved" or seminar["course_id"] is None:
        raise Conflict(f"the seminar is {seminar['status']}; attendance is taken for approved seminars",
                       rule="seminar-not-approved")
    outcomes: list[intake.Outcome | None] = [None] * len(raw_trainees)
    trainees: dict[int, schemas.SeminarTraineeIn] = {}
    for index, raw in enumerate(raw_trainees):
        try:
            trainees[index] = schemas.SeminarTraineeIn.model_validate(raw)
        except ValidationError as exc:
            errors = field_errors(exc.errors(), prefix=("trainees", index))
            outcomes[index] = intake.Refused(InvalidInput(errors[0]["detail"], field=errors[0]["field"],
                                                          errors=errors, rule="validation"))
    national = seminar["kind"] == "national"
    credited: dict[int, schemas.RecordIn] = {}   # trainees whose attendance becomes a record
    kept: dict[int, schemas.RecordIn] = {}       # trainees kept on the roster without a record (failed assessment)
    for index, trainee in trainees.items():
        assessment = f"trainees.{index}.assessment_passed"
        if national and trainee.assessment_passed is None:
            outcomes[index] = intake.Refused(InvalidInput(
                "national seminars record the completion assessment of every trainee", rule="seminar-assessment",
                field=assessment))
            continue
        record = _record(seminar, keys, trainee)
        if national and trainee.assessment_passed is False:
            try:
                intake.check_id_number(record.id_type, record.id_number)
            except Problem as exc:
                outcomes[index] = intake.Refused(_as_trainee(index, exc))
                continue
            kept[index] = record  # attendance is kept on the roster; nothing is credited
            outcomes[index] = intake.Refused(InvalidInput(
                "national seminars credit only trainees who passed the completion assessment",
                rule="seminar-assessment", field=assessment))
        else:
            credited[index] = record
    # One transaction: the online share checked on the roster as it stands at the end (nothing is kept when it
    # breaks), and one upload of a seminar at a time (two uploads could each keep to the share that together they
    # break). A refused trainee leaves the others.
    try:
        async with intake.transaction(engine) as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                               f"seminar-roster {seminar['id']}")
            order = list(credited)
            pushed = await intake.push_within(conn, engine.url, [principal] * len(order),
                                              [credited[i] for i in order], keys, now, seminar=True)
            for index, outcome in zip(order, pushed, strict=True):
                outcomes[index] = intake.Refused(_as_trainee(index, outcome.problem)) \
                    if isinstance(outcome, intake.Refused) else outcome
            # One roster row per person: a trainee sent twice in the upload is enrolled as the later line says.
            by_person = {_hash(keys, r): (i, r) for i, r in sorted(
                [(i, r) for i, r in credited.items() if isinstance(outcomes[i], intake.Credited | intake.Replayed)]
                + list(kept.items()), key=lambda item: item[0])}
            enrolled = list(by_person.values())
            ids = await intake.person_ids(conn, keys, {h: r for h, (_, r) in by_person.items()})  # kept: created
            await conn.execute(
                _ENROL, seminar["id"], [ids[_hash(keys, r)] for _, r in enrolled],
                [trainees[i].title_level for i, _ in enrolled], [trainees[i].online for i, _ in enrolled],
                [trainees[i].assessment_passed for i, _ in enrolled],
                [_record_id(outcomes[i]) for i, _ in enrolled])
            roster = await conn.fetchrow(_ROSTER, seminar["id"])
            assert roster is not None  # an aggregate: always one row
            problem = online_share_problem(seminar["mode"], seminar["online_percent_max"], roster["trainees"],
                                           roster["online"])
            if problem:
                raise InvalidInput(problem, rule="seminar-online-share", field="trainees")
    except intake.FALLBACK:
        # A concurrent push of the same trainees changed what the upload was decided on. Nothing of the upload was
        # kept, and sending it again is safe (its records are then replays).
        raise Unavailable("the upload met a concurrent push of the same trainees; nothing was kept: send it again",
                          retry_after="1") from None
    return [intake.batch_item(i, o) for i, o in enumerate(outcomes)]  # type: ignore[arg-type]


def _hash(keys: PiiKeys, record: schemas.RecordIn) -> bytes:
    return keys.lookup_hash(normalise_id_number(record.id_number))


def _record_id(outcome: intake.Outcome | None) -> uuid.UUID | None:
    return outcome.result.record_id if isinstance(outcome, intake.Credited | intake.Replayed) else None


def _record(seminar: Any, keys: PiiKeys, trainee: schemas.SeminarTraineeIn) -> schemas.RecordIn:
    """The trainee's attendance as a record of the seminar's course: a day is a sitting, online for online
    trainees of a mixed seminar."""
    mode = ("online" if trainee.online else "offline") if seminar["mode"] == "mixed" else None
    return schemas.RecordIn(
        external_id=f"seminar-{seminar['id']}-{keys.lookup_hash(trainee.id_number).hex()[:24]}",
        course_id=seminar["course_id"], id_type=trainee.id_type, id_number=trainee.id_number, name=trainee.name,
        unit=trainee.unit, sittings=[
            schemas.SittingIn(started_at=d.started_at, ended_at=d.ended_at, mode=mode,
                              media_seconds=d.media_seconds if trainee.online else None,
                              identity_checks=d.identity_checks if trainee.online else None)
            for d in trainee.days])


def _as_trainee(index: int, problem: Problem) -> Problem:
    """A record's problem, its fields named as the trainee's."""
    problem.errors = [FieldError(_trainee_field(index, e["field"]), e["rule"], e["detail"]) for e in problem.errors]
    problem.field = None if problem.field is None else _trainee_field(index, problem.field)
    return problem


def _trainee_field(index: int, field: str) -> str:
    """A record's field as the trainee's: sittings.2.identity_checks -> trainees.0.days.2.identity_checks."""
    if field.startswith("sittings."):
        field = "days." + field.removeprefix("sittings.")
    return f"trainees.{index}.{field}"
