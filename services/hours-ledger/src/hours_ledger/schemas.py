"""Request and response models of the hours-ledger service: the public contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field
from pydantic_core import PydanticCustomError
from xueshi_shared.regions import is_fujian_code
from xueshi_shared.schemas import StrictModel, Uscc

IdType = Literal["RIC", "passport", "hk_macau_permit", "taiwan_permit"]
Count = Annotated[int, Field(ge=0, le=100_000)]


_EARLIEST, _LATEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _instant(value: dt.datetime) -> dt.datetime:
    if not (_EARLIEST <= value <= _LATEST):
        raise PydanticCustomError("instant-range", "instants must lie between 2000 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_instant)]


def _fujian_code(value: str) -> str:
    if not is_fujian_code(value):
        raise PydanticCustomError("region-code", "not a GB/T 2260 code in force in Fujian (see GET /v1/region-codes)")
    return value


class Unit(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    uscc: Uscc
    region: Annotated[str, Field(pattern=r"^35[0-9]{4}$", description=(
        "The unit's region: a GB/T 2260 code in force in Fujian (350000 for 省直单位, a city, or a county; "
        "GET /v1/region-codes). A municipal or county base pushes only units inside its training scope.")),
        AfterValidator(_fujian_code)]


class IdentityChecks(StrictModel):
    passed: Count
    failed: Count


class SittingIn(StrictModel):
    started_at: Instant = Field(description="ISO 8601 instant with offset, e.g. 2026-05-04T09:00:00+08:00")
    ended_at: Instant
    media_seconds: Annotated[int | None, Field(ge=0, le=86_400 * 10)] = Field(
        default=None, description="Seconds of content actually played (online and live study).")
    identity_checks: IdentityChecks | None = Field(default=None, description="Online and live study.")
    mode: Literal["online", "offline"] | None = Field(default=None, description=(
        "A mixed course's sittings only, and required there: whether the sitting was online (it then needs "
        "media_seconds and identity_checks) or offline."))


class ExamIn(StrictModel):
    questions: Annotated[int, Field(ge=0, le=10_000)]
    correct: Annotated[int, Field(ge=0, le=10_000)]
    passed: bool


class RecordIn(StrictModel):
    external_id: Annotated[str, Field(min_length=1, max_length=128, description="The base's own id: an idempotency key.")]
    course_id: uuid.UUID
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100, description=(
        "The person's name: the registry's name for the ID number (the first record written fixed it; a different "
        "name is `409 name-mismatch`)."))]
    unit: Unit
    sittings: Annotated[list[SittingIn], Field(min_length=1, max_length=200)]
    exam: ExamIn | None = None


class AdjustmentOut(BaseModel):
    rule: str
    minutes: int
    hours: int
    day: dt.date | None
    detail: str


class RecordResult(BaseModel):
    record_id: uuid.UUID
    external_id: str
    credited_hours: int
    counted_minutes: int
    status: Literal["credited", "partial", "not_credited"]
    adjustments: list[AdjustmentOut]


class RecordView(RecordResult):
    """A record as its base (or staff) reads it later: the result, and whether it still stands."""

    reversed: bool = Field(description="Reversed by the staff governing it: it credits nothing any more.")
    reversed_at: dt.datetime | None
    reversal_reason: str | None


class BatchIn(StrictModel):
    records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=1000)]


class BatchItem(BaseModel):
    index: int
    status: int = Field(description="The HTTP status the record would have had on its own (201, 200, 4xx).")
    result: RecordResult | None = None
    problem: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]


class ReversalIn(StrictModel):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class ReversalOut(BaseModel):
    record_id: uuid.UUID
    reversed_hours: int
    reversed_at: dt.datetime


class TopicLine(BaseModel):
    code: str
    title: str
    allotment: int
    credited_hours: int


class FieldLine(BaseModel):
    code: str
    credited_hours: int


class PublicPart(BaseModel):
    required_hours: int
    credited_hours: int = Field(description="学时 of the plan's topics: what the plan's requirement counts.")
    topics: list[TopicLine]
    other_topics_hours: int = Field(description=(
        "学时 of other public topics (`topic: other`), credited only after the plan's topics hold the required "
        "学时; listed apart, never counted toward the requirement, counted in `total_hours`."))


class ProfessionalPart(BaseModel):
    credited_hours: int
    fields: list[FieldLine]


class TranscriptRecord(BaseModel):
    record_id: uuid.UUID
    base_id: uuid.UUID
    external_id: str
    course_id: uuid.UUID
    category: str
    topic: str | None
    field: str | None
    course_hours: int
    credited_hours: int
    counted_minutes: int
    status: str
    unit: dict[str, str]
    first_sitting: dt.datetime
    last_sitting: dt.datetime
    adjustments: list[AdjustmentOut]
    reversed: bool
    reversal_reason: str | None
    reversed_at: dt.datetime | None = None
    base_name: str | None = Field(default=None, description="The training base's registered name.")
    course_title: str | None = Field(default=None, description="The course's title.")
    period_beijing: str | None = Field(default=None, description=(
        "First sitting's start to last sitting's end, Beijing time (YYYY-MM-DD HH:MM – YYYY-MM-DD HH:MM)."))


class NameChangeOut(BaseModel):
    old_name: str
    new_name: str
    reason: str
    changed_at: dt.datetime


class Transcript(BaseModel):
    id_number: str = Field(description="Masked, e.g. 350102********123X.")
    id_type: str
    name: str
    name_history: list[NameChangeOut] = Field(description="Corrections of the registered name, oldest first.")
    year: int
    public: PublicPart
    professional: ProfessionalPart
    total_hours: int
    public_requirement_met: bool
    yearly_requirement_met: bool = Field(description=(
        "人社部令第25号: at least 90 学时 a year, of which professional subjects at least two thirds."))
    records: list[TranscriptRecord]


class TranscriptIn(StrictModel):
    id_number: Annotated[str, Field(min_length=5, max_length=32, description="In the body, never in a URL.")]
    year: Annotated[int, Field(ge=2000, le=2100)]


PersonName = Annotated[str, Field(min_length=1, max_length=100)]


class PersonCheckIn(StrictModel):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32, description="In the body, never in a URL.")]
    name: PersonName


class PersonCheckOut(BaseModel):
    valid: bool = Field(description="A record for this person would pass the identity rules (no problems).")
    problems: list[dict[str, Any]] = Field(description=(
        "The problem documents a record for this person would get for its identity (`id-number`, "
        "`id-type-mismatch`, `name-mismatch`), as `/v1/records` answers them; never the registry's name."))
    name_matches: bool | None = Field(description=(
        "Whether the name is the registry's name for the ID number; null when the registry has never credited "
        "anyone under the number (the first record will fix the name) or the number is not valid."))


class NameCorrectionIn(StrictModel):
    id_number: Annotated[str, Field(min_length=5, max_length=32, description="In the body, never in a URL.")]
    name: PersonName = Field(description="The person's correct name, as on the ID document.")
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class NameCorrectionOut(BaseModel):
    id_number: str = Field(description="Masked.")
    name: str
    previous_name: str
    changed_at: dt.datetime


class IntegrityProblem(BaseModel):
    person: int
    seq: int | None
    problem: str


class IntegrityOut(BaseModel):
    valid: bool
    entries_checked: int
    people_checked: int
    problems: list[IntegrityProblem]


class AttendanceDay(StrictModel):
    started_at: Instant = Field(description="Sign-in.")
    ended_at: Instant = Field(description="Sign-out.")
    identity_checks: IdentityChecks | None = Field(default=None, description=(
        "Online trainees (required for them): the identity checks of the day's online attendance."))
    media_seconds: Annotated[int | None, Field(ge=0, le=86_400 * 10)] = Field(default=None, description=(
        "Online trainees, optional: seconds actually attended online; the day then counts at most these."))


class SeminarTraineeIn(StrictModel):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title_level: Literal["senior", "deputy_senior", "intermediate", "junior", "none"] = Field(
        description="职称级别: 正高, 副高, 中级, 初级, none.")
    unit: Unit
    online: bool = Field(description=(
        "Whether the trainee attended online (mixed seminars only; at most the plan's share of the roster, 50%)."))
    days: Annotated[list[AttendanceDay], Field(min_length=1, max_length=31)]
    assessment_passed: bool | None = Field(default=None, description="National seminars: the completion assessment.")


class AttendanceIn(StrictModel):
    trainees: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=1000)]


RowStatus = Literal["credited", "partial", "not_credited", "replayed", "refused"]


class RosterCounts(BaseModel):
    """Rows by outcome (a record's rows share its outcome)."""

    credited: int
    partial: int
    not_credited: int
    replayed: int
    refused: int


class RosterAccepted(BaseModel):
    id: uuid.UUID
    status: Literal["processing"]
    dry_run: bool = Field(description="A dry run writes nothing to the ledger: it answers what the upload would.")
    format: Literal["xlsx", "csv"]
    rows_total: int = Field(description="Rows of the sheet (one per sitting; blank rows are skipped).")
    records_total: int = Field(description="Records: rows sharing an external_id are one record.")
    rows_done: int
    created_at: dt.datetime


class RosterRowOut(BaseModel):
    row: int = Field(description="The row's number in the spreadsheet (the header is row 1).")
    external_id: str | None
    status: RowStatus = Field(description=(
        "The outcome of the row's record: credited, partial or not_credited (written; as `result.status`), "
        "replayed (already in the ledger: nothing new), refused (nothing written: `problem`)."))
    result: RecordResult | None = Field(description="As POST /v1/records answers it (written or replayed).")
    problem: dict[str, Any] | None = Field(description=(
        "As POST /v1/records answers it, with `row` and `column` (the header as written) of the field it names."))


class RosterView(BaseModel):
    id: uuid.UUID
    status: Literal["processing", "done", "interrupted"] = Field(description=(
        "interrupted: the process answering it stopped (a restart); the rows answered stay, and uploading the "
        "file again is safe (what was written replays)."))
    dry_run: bool
    format: Literal["xlsx", "csv"]
    filename: str | None
    rows_total: int
    records_total: int
    rows_done: int
    counts: RosterCounts
    created_at: dt.datetime
    finished_at: dt.datetime | None
    rows: list[RosterRowOut] = Field(description="Answered rows in sheet order, after `after_row`, at most `limit`.")
    next_after_row: int | None = Field(description="Pass as `after_row` for the next rows; null: no more.")


# ---- cmi5 registrations (the xAPI door) ----------------------------------------------------------------

class RegistrationIn(StrictModel):
    """A base enrols a learner in a course under a cmi5 registration, before the first launch: who the xAPI agent
    is, as a record names the person. The ID number stays in the ledger, encrypted; statements never carry it."""

    course_id: uuid.UUID = Field(description="A course of this base with `xapi_activity_ids` (its AUs).")
    actor: dict[str, Any] = Field(description=(
        "The learner as the statements' actor names them: an xAPI Agent with an `account` (cmi5 §9.2), e.g. "
        '{"objectType": "Agent", "account": {"homePage": "https://lms.example.cn", "name": "u-1001"}}.'))
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    unit: Unit


class RegistrationOut(BaseModel):
    registration: uuid.UUID
    course_id: uuid.UUID
    actor: dict[str, Any]
    id_type: str
    id_number: str = Field(description="Masked, e.g. 350102********123X.")
    name: str
    unit: dict[str, str]
    created_at: dt.datetime


class Cmi5Unit(BaseModel):
    au: str
    move_on: str = Field(description="From the AU's LMS.LaunchData document, else its launched statement, else "
                                     "CompletedAndPassed.")
    completed: bool
    passed: bool
    waived: bool
    satisfied: bool


class Cmi5Session(BaseModel):
    au: str
    session_id: str
    launch_mode: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    ended_by: Literal["terminated", "abandoned"] | None
    media_seconds: int | None
    identity_checks: IdentityChecks | None
    waived: bool
    sitting: bool = Field(description="Whether it was pushed as a sitting (ended, initialized, launched Normal).")
    statements: list[str] = Field(description="The ids of the statements read for it.")


class Cmi5Violation(BaseModel):
    statement_id: str
    rule: str = Field(description="cmi5-<section>-<rule> (README, the xAPI door): the statement is kept, not credited.")
    detail: str


class RegistrationOutcome(BaseModel):
    """What became of a cmi5 registration: `pending` (why: `pending_reason`), `recorded` (the record: the same
    answer as any door's), or `refused` (the problem the ledger answered: the record was not written)."""

    registration: uuid.UUID
    course_id: uuid.UUID
    external_id: str = Field(description="The record's external id: cmi5:<registration>.")
    state: Literal["pending", "recorded", "refused"]
    pending_reason: str | None
    record: RecordView | None
    problem: dict[str, Any] | None
    units: list[Cmi5Unit]
    sessions: list[Cmi5Session]
    exam: ExamIn | None
    violations: list[Cmi5Violation]
    statements: list[str] = Field(description=(
        "Every statement of the registration about the course's AUs, in the order stored "
        "(GET /xapi/statements?registration=… gives them)."))


# ---- statistics ---------------------------------------------------------------------------------------

class CutOut(BaseModel):
    records: int = Field(description="Records an adjustment of the rule touched")
    minutes: int = Field(description="Minutes the rule cut")


class StatisticsMeasures(BaseModel):
    people: int = Field(description="People with at least one record here that is not reversed")
    people_credited: int = Field(description="Of those, people with a record here that credits at least one 学时")
    people_public_met: int = Field(description="Of those, people whose transcript says public_requirement_met")
    people_yearly_met: int = Field(description="Of those, people whose transcript says yearly_requirement_met "
                                               "(90 学时, professional at least two thirds)")
    records: int
    credited_hours: int
    public_hours: int = Field(description="Credited 学时 of the plan's public-subject topics")
    other_topic_hours: int = Field(description="Credited 学时 of other public-subject topics")
    professional_hours: int
    reported_minutes: int = Field(description="Wall time of the records' sittings, as reported")
    counted_minutes: int
    cuts: dict[str, CutOut] = Field(description="Per rule: the records it touched and the minutes it cut")


class StatisticsGroupOut(StatisticsMeasures):
    key: str = Field(description="The group: a GB/T 2260 code, a USCC, an authority, field or topic code, a "
                                 "base's id, or an ISO week (2026-W48)")
    name: str | None = Field(description="What people read: the region's, unit's, base's, field's, authority's or "
                                         "topic's name; a week's Monday")


class StatisticsScopeOut(BaseModel):
    kind: Literal["province", "city", "county", "authority", "field", "topic", "base"]
    code: str | None


class StatisticsOut(BaseModel):
    year: int
    group_by: str
    dimension: Literal["city", "county", "unit", "authority", "field", "topic", "base", "week"]
    scope: StatisticsScopeOut
    as_of: dt.datetime | None = Field(description="Every change committed before this instant is counted")
    required_hours: int | None = Field(description="The year's public-subject requirement (its plan)")
    total: StatisticsMeasures = Field(description="The whole scope (people counted once)")
    total_groups: int
    groups: list[StatisticsGroupOut]


class QualityRuleOut(BaseModel):
    minutes: int
    records: int
    share: float = Field(description="Minutes the rule cut / the base's reported minutes")
    province_median: float | None = Field(description="The median share across the province's bases with minutes")


class QualityBaseOut(BaseModel):
    base_id: str
    name: str | None
    records: int
    reported_minutes: int
    counted_minutes: int
    rules: dict[str, QualityRuleOut]


class BaseQualityOut(BaseModel):
    year: int
    scope: StatisticsScopeOut
    as_of: dt.datetime | None
    rules: list[str]
    province_bases: int
    bases: list[QualityBaseOut]
