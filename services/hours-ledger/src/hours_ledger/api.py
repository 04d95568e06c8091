"""Routes of the hours-ledger service."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from xueshi_shared.problems import InvalidInput, Problem, TooManyRequests, field_errors
from xueshi_shared.ratelimit import RateLimiter
from xueshi_shared.schemas import ProblemDocument
from xueshi_shared.timekeeping import now
from xueshi_shared.web import CurrentPrincipal, DbSession, LeanRoute, OrjsonRoute, audit_in_own_transaction, refuse_token

from . import intake, rosters, schemas, seminars, service, sheets
from .pushing import PushingBase
from .xapi import registrations

router = APIRouter(tags=["ledger"], route_class=OrjsonRoute)
# The single push, the hottest route: handled by LeanRoute (web.py) and matched first (app.py's hot_routers).
hot_router = APIRouter(tags=["ledger"], route_class=LeanRoute)
# Records per transaction of the batch endpoint: short enough that concurrent batches over the same people
# rarely wait long on each other's person locks, long enough that each statement carries many records.
BATCH_PART = 50
_problems: dict[int | str, dict[str, Any]] = {
    409: {"model": ProblemDocument, "description": "external_id reused with a different body"}}


@hot_router.post("/v1/records", status_code=201, response_model=schemas.RecordResult, responses={
    200: {"model": schemas.RecordResult, "description": "A repeat of a record already in the ledger"}, **_problems},
    summary="Push one study record (a training base's key)")
async def push_record(body: schemas.RecordIn, request: Request, principal: PushingBase) -> Response:
    # Written together with the other pushes in flight (groupcommit.py), answered after the commit.
    outcome = await request.app.state.pushes.push(principal, request.state.token_digest, body)
    match outcome:
        case intake.Revoked():  # the token was revoked since pushing_base found it live
            request.app.state.known_tokens.forget(request.state.token_digest)
            await refuse_token(request, "unknown or revoked token")
        case intake.Refused(problem):
            raise problem
        case intake.Failed(error):
            raise error
    # Serialised directly, already in RecordResult's shape (as the batch's results; a test holds it there):
    # FastAPI's response model would validate and dump it again (profiled: 4% of a push's service time).
    return Response(orjson.dumps(outcome.result.json(), default=_uuid_text), status_code=outcome.status,
                    media_type="application/json")


@router.get("/v1/records", response_model=schemas.RegistrationOutcome, tags=["xapi"], responses={
    404: {"model": ProblemDocument, "description": "No such registration of this base"}},
    summary="What became of a cmi5 registration (its base's key): its record, sessions, exam and the rules broken")
async def registration_outcome(registration: Annotated[uuid.UUID, Query(description=(
        "A cmi5 registration this base enrolled (PUT /v1/registrations/{registration})."))],
        request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    state = request.app.state
    return await registrations.outcome(state.engine, state.pii_keys, state.cmi5_extensions, principal, registration)


@router.put("/v1/registrations/{registration}", status_code=201, response_model=schemas.RegistrationOut,
            tags=["xapi"], responses={
                200: {"model": schemas.RegistrationOut, "description": "The same enrolment again"},
                409: {"model": ProblemDocument, "description": "The registration is enrolled otherwise"}},
            summary="Enrol a learner in a cmi5 course under a registration id, before the first launch (a base's key)")
async def enrol(registration: uuid.UUID, body: schemas.RegistrationIn, request: Request,
                principal: CurrentPrincipal, response: Response) -> dict[str, Any]:
    state = request.app.state
    status, out = await registrations.enrol(state.engine, state.pii_keys, state.cmi5_extensions, principal,
                                            registration, body)
    response.status_code = status
    return out


@router.post("/v1/records/batch", response_model=schemas.BatchOut, summary=(
    "Push up to 1,000 records; each gets its own result, as if pushed one by one in the order sent"))
async def push_batch(body: schemas.BatchIn, request: Request, principal: CurrentPrincipal,
                     session: DbSession) -> Response:
    await intake.require_base_in_standing(await service.driver(session), principal)
    results: list[dict[str, Any] | None] = [None] * len(body.records)
    valid: list[tuple[int, schemas.RecordIn]] = []
    for index, raw in enumerate(body.records):
        try:
            valid.append((index, schemas.RecordIn.model_validate(raw)))
        except ValidationError as exc:
            results[index] = _invalid(index, exc)
    limit = asyncio.Semaphore(intake.CONCURRENCY)

    async def part(records: list[tuple[int, schemas.RecordIn]]) -> None:
        async with limit:
            # Set-based, a few statements per part (intake.py).
            outcomes = await intake.push(request.app.state.engine, [principal] * len(records),
                                         [r for _, r in records], request.app.state.pii_keys)
            for (index, _), outcome in zip(records, outcomes, strict=True):
                results[index] = intake.batch_item(index, outcome)

    await asyncio.gather(*(part(p) for p in intake.chunks(valid, BATCH_PART)))
    # Serialised directly (orjson) in BatchOut's exact shape: re-validating up to 1,000 results through the
    # response model cost as much as 6% of the endpoint's time. A test holds the shape to BatchOut.
    return Response(orjson.dumps({"results": results}, default=_uuid_text), media_type="application/json")


def _uuid_text(value: object) -> str:
    """asyncpg's own UUID type (records read back for replays), which orjson does not know."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _invalid(index: int, exc: ValidationError) -> dict[str, Any]:
    errors = field_errors(exc.errors())
    problem = InvalidInput(f"{errors[0]['field']}: {errors[0]['detail']}", field=errors[0]["field"],
                           errors=errors, rule="validation")
    return {"index": index, "status": 422, "result": None, "problem": problem.body()}


@router.post("/v1/people/check", response_model=schemas.PersonCheckOut, responses={
    429: {"model": ProblemDocument, "description": "The key's pre-checks a minute are used up"}},
    summary="Identity pre-check (a training base's key): would a record for this person pass the identity rules?")
async def check_person(body: schemas.PersonCheckIn, request: Request, principal: CurrentPrincipal,
                       session: DbSession) -> dict[str, Any]:
    principal.require_base()
    wait = request.app.state.people_check_limiter.check(b"key " + principal.id.bytes)
    if wait:
        raise TooManyRequests("this key has used up its identity pre-checks for now; a whole roster is checked by "
                              "POST /v1/rosters?dry_run=true", retry_after=RateLimiter.retry_after(wait))
    result = await intake.check_person(await service.driver(session), request.app.state.pii_keys, body.id_type,
                                       body.id_number, body.name)
    # Audited (a base's requests are not, otherwise): who asked and what the answer was; never the number.
    request.state.audit_target = {"id_type": body.id_type, "valid": result["valid"],
                                  "name_matches": result["name_matches"]}
    await audit_in_own_transaction(request, principal, "succeeded", 200)
    return result


@router.get("/v1/records/{record_id}", response_model=schemas.RecordView,
            summary="A record's result and whether it was reversed, when and why (a base: its own records; staff: any)")
async def get_record(record_id: uuid.UUID, principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    return await service.get_record(session, principal, record_id)


@router.post("/v1/records/{record_id}/reversal", response_model=schemas.ReversalOut, responses=_problems,
             summary="Reverse a record (staff governing it): a reversing ledger entry with reason and actor")
async def reverse_record(record_id: uuid.UUID, body: schemas.ReversalIn, request: Request,
                         principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    result = await service.reverse_record(session, principal, record_id, body.reason, now())
    request.state.audit_target = {"record": str(record_id), "person": result.pop("person_masked"),
                                  "reason": body.reason, "reversed_hours": result["reversed_hours"]}
    return result


@router.post("/v1/people/transcript", response_model=schemas.Transcript,
             summary="A person's transcript for a year (staff within scope); the ID number in the body")
async def transcript(body: schemas.TranscriptIn, request: Request, principal: CurrentPrincipal,
                     session: DbSession) -> dict[str, Any]:
    return await service.transcript(session, principal, request.app.state.pii_keys, body.id_number, body.year)


@router.get("/v1/people/{id_number}/transcript", response_model=schemas.Transcript, deprecated=True,
            summary="Deprecated: puts the ID number in the URL (and so in every proxy's log); use POST "
                    "/v1/people/transcript")
async def transcript_by_path(
    id_number: Annotated[str, Path(min_length=5, max_length=32)], request: Request, response: Response,
    principal: CurrentPrincipal, session: DbSession, year: Annotated[int, Query(ge=2000, le=2100)],
) -> dict[str, Any]:
    deprecation = {"Deprecation": "true", "Link": '</v1/people/transcript>; rel="successor-version"'}
    response.headers.update(deprecation)
    try:
        return await service.transcript(session, principal, request.app.state.pii_keys, id_number, year)
    except Problem as exc:
        exc.headers = {**exc.headers, **deprecation}
        raise


@router.post("/v1/people/name-corrections", response_model=schemas.NameCorrectionOut, status_code=201,
             summary="Correct the name registered for an ID number (HR staff in scope; the old name is kept)")
async def correct_name(body: schemas.NameCorrectionIn, request: Request, principal: CurrentPrincipal,
                       session: DbSession) -> dict[str, Any]:
    result = await service.correct_name(session, principal, request.app.state.pii_keys, body.id_number, body.name,
                                        body.reason, now())
    request.state.audit_target = {"person": result.pop("person")}
    return result


@router.get("/v1/ledger/integrity", response_model=schemas.IntegrityOut,
            summary="Re-check every person's hash chain (auditor, province_admin)")
async def integrity(principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    return await service.check_integrity(session, principal)


@router.post("/v1/seminars/{seminar_id}/attendance", response_model=schemas.BatchOut, tags=["seminars"],
             summary="The organising base uploads trainees and their daily sign-in/sign-out; each becomes a record")
async def seminar_attendance(seminar_id: uuid.UUID, body: schemas.AttendanceIn, request: Request,
                             principal: CurrentPrincipal) -> dict[str, Any]:
    results = await seminars.upload_attendance(request.app.state.engine, principal, request.app.state.pii_keys,
                                               seminar_id, body.trainees, now())
    return {"results": results}


# ---- rosters: spreadsheets -------------------------------------------------------------------------

def _attachment(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"", "Cache-Control": "no-store"})


@router.get("/v1/rosters/template.xlsx", tags=["rosters"], response_class=Response, responses={
    200: {"content": {sheets.XLSX_MEDIA_TYPE: {}}, "description": "The roster template, and a sheet explaining it"}},
    summary="The roster template as an Excel workbook (one row per sitting; its second sheet explains the columns)")
async def roster_template_xlsx() -> Response:
    return _attachment(sheets.template_xlsx(), sheets.XLSX_MEDIA_TYPE, "xueshi-roster-template.xlsx")


@router.get("/v1/rosters/template.csv", tags=["rosters"], response_class=Response, responses={
    200: {"content": {sheets.CSV_MEDIA_TYPE: {}}, "description": "The roster's header row (UTF-8 with BOM)"}},
    summary="The roster template as CSV (UTF-8; GB18030 is accepted too)")
async def roster_template_csv() -> Response:
    return _attachment(sheets.template_csv(), "text/csv; charset=utf-8", "xueshi-roster-template.csv")


_ROSTER_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {
        "type": "string", "format": "binary",
        "description": "The roster: XLSX, or CSV in UTF-8 or GB18030 (GET /v1/rosters/template.xlsx)"}}}}}}}


@router.post("/v1/rosters", status_code=202, tags=["rosters"], response_model=schemas.RosterAccepted,
             openapi_extra=_ROSTER_FORM, responses={
                 413: {"model": ProblemDocument, "description": "The file is larger than the upload limit"},
                 422: {"model": ProblemDocument, "description": (
                     "Not a roster: not a spreadsheet, unknown or missing headers, empty, too many rows, formulas "
                     "(the problem names the row and the column)")}},
             summary="Upload a roster (a training base's key): each row's record is pushed as the batch pushes it; "
                     "dry_run=true answers the same and writes nothing")
async def upload_roster(request: Request, principal: CurrentPrincipal, response: Response,
                        dry_run: Annotated[bool, Query(description="Answer every row, write nothing")] = False,
                        ) -> dict[str, Any]:
    principal.require_base()  # before the body is read
    settings = request.app.state.settings
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("the form has no file: send the roster as the multipart field `file`",
                               rule="required", field="file")
        data = await upload.read()
        filename = upload.filename
    finally:
        await form.close()
    accepted, answer = await rosters.accept(request.app.state.engine, principal, data, filename, dry_run,
                                            sheets.Limits(max_rows=settings.roster_max_rows))
    del data
    task = asyncio.create_task(rosters.process(request.app.state.engine, accepted, request.app.state.pii_keys,
                                               request.app.state.roster_slots))
    request.app.state.roster_tasks.add(task)
    task.add_done_callback(request.app.state.roster_tasks.discard)
    response.headers["Location"] = f"/v1/rosters/{accepted.id}"
    return answer


@router.get("/v1/rosters/{roster_id}", tags=["rosters"], response_model=schemas.RosterView,
            summary="A roster upload's progress and its rows' answers (the base that uploaded it)")
async def get_roster(
    roster_id: uuid.UUID, request: Request, principal: CurrentPrincipal,
    after_row: Annotated[int, Query(ge=0, description="Rows after this spreadsheet row number")] = 0,
    limit: Annotated[int, Query(ge=0, le=10_000, description="At most this many rows")] = 1000,
    status: Annotated[schemas.RowStatus | None, Query(description="Only rows of this outcome")] = None,
) -> dict[str, Any]:
    return await rosters.view(request.app.state.engine, principal, roster_id, after_row, limit, status)


@router.get("/v1/rosters/{roster_id}/result.xlsx", tags=["rosters"], response_class=Response, responses={
    200: {"content": {sheets.XLSX_MEDIA_TYPE: {}}, "description": "The uploaded sheet with the answers added"},
    409: {"model": ProblemDocument, "description": "The upload is still being answered"}},
    summary="The uploaded sheet (ID numbers masked) with each row's outcome, 学时, record id and problem added")
async def roster_result(roster_id: uuid.UUID, request: Request, principal: CurrentPrincipal) -> Response:
    filename, data = await rosters.answered_sheet(request.app.state.engine, principal, roster_id)
    stem = (filename or "roster").rsplit(".", 1)[0]
    safe = "".join(ch for ch in stem if ch.isascii() and (ch.isalnum() or ch in "-_")) or "roster"
    return _attachment(data, sheets.XLSX_MEDIA_TYPE, f"{safe}-result.xlsx")
