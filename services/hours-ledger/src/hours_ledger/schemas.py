"""Request and response models of the hours-ledger service: the public contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field
from pydantic_core import PydanticCustomError
from xueshi_shared.schemas import StrictModel, Uscc

IdType = Literal["RIC", "passport", "hk_macau_permit", "taiwan_permit"]
Count = Annotated[int, Field(ge=0, le=100_000)]


_EARLIEST, _LATEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def _instant(value: dt.datetime) -> dt.datetime:
    if not (_EARLIEST <= value <= _LATEST):
        raise PydanticCustomError("instant-range", "instants must lie between 2000 and 2100")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_instant)]


class Unit(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    uscc: Uscc
    region: Annotated[str, Field(pattern=r"^35[0-9]{4}$", description="The unit's Fujian region code (GB/T 2260).")]


class IdentityChecks(StrictModel):
    passed: Count
    failed: Count


class SittingIn(StrictModel):
    started_at: Instant = Field(description="ISO 8601 instant with offset, e.g. 2026-05-04T09:00:00+08:00")
    ended_at: Instant
    media_seconds: Annotated[int | None, Field(ge=0, le=86_400 * 10)] = Field(
        default=None, description="Seconds of content actually played (online and live study).")
    identity_checks: IdentityChecks | None = Field(default=None, description="Online and live study.")


class ExamIn(StrictModel):
    questions: Annotated[int, Field(ge=0, le=10_000)]
    correct: Annotated[int, Field(ge=0, le=10_000)]
    passed: bool


class RecordIn(StrictModel):
    external_id: Annotated[str, Field(min_length=1, max_length=128, description="The base's own id: an idempotency key.")]
    course_id: uuid.UUID
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
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
    credited_hours: int
    topics: list[TopicLine]


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


class Transcript(BaseModel):
    id_number: str = Field(description="Masked, e.g. 350102********123X.")
    id_type: str
    name: str
    year: int
    public: PublicPart
    professional: ProfessionalPart
    total_hours: int
    public_requirement_met: bool
    yearly_requirement_met: bool = Field(description=(
        "人社部令第25号: at least 90 学时 a year, of which professional subjects at least two thirds."))
    records: list[TranscriptRecord]


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


class SeminarTraineeIn(StrictModel):
    id_type: IdType
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title_level: Literal["senior", "deputy_senior", "intermediate", "junior", "none"] = Field(
        description="职称级别: 正高, 副高, 中级, 初级, none.")
    unit: Unit
    days: Annotated[list[AttendanceDay], Field(min_length=1, max_length=31)]
    assessment_passed: bool | None = Field(default=None, description="National seminars: the completion assessment.")


class AttendanceIn(StrictModel):
    trainees: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=1000)]
