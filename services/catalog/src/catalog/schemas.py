"""Request and response models of the catalog service: the public contract."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, field_validator
from pydantic_core import PydanticCustomError
from xueshi_shared.schemas import StrictModel, Uscc

Category = Literal["public", "professional"]
Level = Literal["national", "provincial", "municipal", "county"]
Mode = Literal["online", "offline", "mixed", "live"]
Year = Annotated[int, Field(ge=2000, le=2100)]
FieldCode = Annotated[str, Field(min_length=1, max_length=16)]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="GB/T 2260 code, e.g. 350100")]
Text = Annotated[str, Field(min_length=1, max_length=200)]


# ---- plans -------------------------------------------------------------------------------------

class TopicIn(StrictModel):
    code: Annotated[str, Field(min_length=1, max_length=8)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    hours: Annotated[int, Field(ge=1, le=200)]
    examples: Annotated[str | None, Field(max_length=500)] = None


class TopicOut(BaseModel):
    code: str
    title: str
    hours: int
    examples: str | None = None


class PlanIn(StrictModel):
    year: Year
    required_hours: Annotated[int, Field(ge=1, le=500)]
    window_start: dt.date
    deadline: dt.date
    max_hours_per_day: Annotated[int, Field(ge=1, le=24)]
    minutes_per_hour: Annotated[int, Field(ge=1, le=120)]
    min_exam_questions: Annotated[int, Field(ge=1, le=1000)]
    identity_failed_share_max: Annotated[decimal.Decimal, Field(ge=0, le=1, max_digits=4, decimal_places=3)] = Field(
        default=decimal.Decimal("0.5"), description=(
            "防假学替学: an online sitting counts nothing when more than this share of its identity checks failed "
            "(0.5: when its failed checks outnumber its passed ones)."))
    other_topics_allowed: bool = Field(default=False, description=(
        "Whether public courses of other topics (`topic: other`) may be offered; they credit only after a person "
        "holds the plan's required 学时 in its topics."))
    topics: Annotated[list[TopicIn], Field(min_length=1, max_length=50)]
    source: Annotated[str | None, Field(max_length=500)] = None


class PlanOut(BaseModel):
    year: int
    required_hours: int
    window_start: dt.date
    deadline: dt.date = Field(description="Last day of the training window, inclusive (Asia/Shanghai).")
    max_hours_per_day: int
    minutes_per_hour: int
    min_exam_questions: int
    identity_failed_share_max: decimal.Decimal = Field(description="A decimal, written as a string: \"0.5\".")
    other_topics_allowed: bool
    timezone: str = "Asia/Shanghai"
    source: str | None = None
    topics: list[TopicOut]


# ---- authorities, fields, delegations, regions --------------------------------------------------

class FieldRef(BaseModel):
    code: str
    name: str


class AuthorityOut(BaseModel):
    code: str
    name: str
    directory_row: int | None = Field(
        description="Row of the directory (闽人社办〔2023〕222号 annex 1); null for accounting.")
    personnel_scope: str
    self_managed: bool
    effective_from: dt.date
    fields: list[FieldRef]


class FieldOut(BaseModel):
    code: str
    name: str
    authority: str = Field(description="The authority that owns the field.")
    stamped_by: str = Field(description="The authority that approves and stamps it today, delegation applied.")


class DelegationIn(StrictModel):
    field: FieldCode
    starts_on: dt.date
    ends_on: dt.date | None = Field(default=None, description="Last day, inclusive; omit for until further notice.")
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class DelegationEndIn(StrictModel):
    ends_on: dt.date = Field(description="The delegation's last day (inclusive).")
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class DelegationOut(BaseModel):
    id: uuid.UUID
    field: str
    authority: str
    delegated_to: str
    starts_on: dt.date
    ends_on: dt.date | None
    reason: str
    end_reason: str | None
    active_today: bool


class RegionOut(BaseModel):
    code: str
    name: str
    governed_by: str = Field(description="The HR bureau's region code (Pingtan governs itself).")


class RegionCodeOut(BaseModel):
    code: str
    name: str
    level: Literal["province", "city", "county"]
    governed_by: str = Field(description="The HR bureau's region code (Pingtan governs itself).")


# ---- training bases -----------------------------------------------------------------------------

class Contact(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=50)]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 \-]{5,19}$", description="Mobile or landline.")]


class BaseIn(StrictModel):
    unit_name: Text
    uscc: Uscc
    legal_representative: Annotated[str, Field(min_length=1, max_length=50)]
    platform_name: Text
    icp_filing: Annotated[str, Field(min_length=4, max_length=64, description="ICP 备案号, e.g. 闽ICP备12345678号")]
    platform_url: HttpUrl
    level: Level
    region: RegionCode
    category: Category
    fields: Annotated[list[FieldCode], Field(max_length=100)] = Field(default_factory=list)
    scope_region: RegionCode
    operations_lead: Contact
    courseware_lead: Contact
    mlps_filing: Annotated[str, Field(min_length=4, max_length=64, description="等保三级备案证明编号")]

    @field_validator("platform_url")
    @classmethod
    def _https_or_http(cls, value: HttpUrl) -> HttpUrl:
        if value.scheme not in ("http", "https"):
            raise PydanticCustomError("url-scheme", "the platform URL must be http or https")
        return value


class DecisionIn(StrictModel):
    decision: Literal["approved", "rejected"] = "approved"
    fields: list[FieldCode] | None = Field(
        default=None, description="Professional bases: the fields decided (default: every pending field you govern).")
    reason: Annotated[str | None, Field(max_length=1000)] = None


class ReasonIn(StrictModel):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class FieldDecisionOut(BaseModel):
    field: str | None
    decision: str | None
    decided_at: dt.datetime | None


class BaseOut(BaseModel):
    id: uuid.UUID
    unit_name: str
    uscc: str
    legal_representative: str
    platform_name: str
    icp_filing: str
    platform_url: str
    level: str
    region: str
    category: str
    fields: list[str]
    approved_fields: list[str]
    scope_region: str
    operations_lead: dict
    courseware_lead: dict
    mlps_filing: str
    status: str
    suspended: bool
    suspension_reason: str | None
    decisions: list[FieldDecisionOut]
    created_at: dt.datetime


class BaseCreated(BaseModel):
    id: uuid.UUID
    status: str


class ApprovalOut(BaseModel):
    id: uuid.UUID
    status: str
    decided: list[FieldDecisionOut]
    api_key: str | None = Field(description=(
        "The base's API key, shown once, on the approval that first admits the base; null when a key was "
        "already issued (rotate it with POST /v1/bases/{id}/api-key)."))


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    api_key: str = Field(description="Shown once; every earlier key of the base stops working.")


class StandingOut(BaseModel):
    id: uuid.UUID
    status: str
    suspended: bool


# ---- courses ------------------------------------------------------------------------------------

XAPI_ACTIVITY_IDS = (
    "The activity ids of the course's cmi5 assignable units (AUs), as its course structure (cmi5.xml) names them: "
    "a base's xAPI statements whose object is one of them are read as cmi5 study of this course (README, the xAPI "
    "door). An id names one course of its base; online, live and mixed courses only; at most 100.")


def _activity_iri(value: str) -> str:
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$", value):
        raise PydanticCustomError("xapi-activity-id", "an activity id is an IRI (https://example.cn/au/1)")
    return value


XapiActivityIds = Annotated[
    list[Annotated[str, Field(min_length=3, max_length=2048), AfterValidator(_activity_iri)]],
    Field(max_length=100)]


class CourseIn(StrictModel):
    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]
    title: Text
    year: Year
    category: Category
    topic: Annotated[str | None, Field(min_length=1, max_length=8)] = Field(default=None, description=(
        "Public subjects: a topic code of the year's plan, or `other` (another topic, with any 学时) when the plan "
        "allows other topics."))
    field: FieldCode | None = None
    hours: Annotated[int, Field(ge=1, le=200)]
    mode: Mode
    exam_questions: Annotated[int, Field(ge=0, le=1000)] = 0
    xapi_activity_ids: XapiActivityIds = Field(default_factory=list, description=XAPI_ACTIVITY_IDS)


class XapiActivitiesIn(StrictModel):
    xapi_activity_ids: XapiActivityIds = Field(description=XAPI_ACTIVITY_IDS)


class ReviewChecksIn(StrictModel):
    wording: bool = Field(description="文字关")
    policy: bool = Field(description="政策关")
    ideology: bool = Field(description="意识形态关")


class ReviewIn(StrictModel):
    decision: Literal["approved", "rejected"]
    reviewers: Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(min_length=1, max_length=20)]
    checks: ReviewChecksIn
    comment: Annotated[str | None, Field(max_length=2000)] = None
    reviewed_on: dt.date | None = Field(default=None, description=(
        "The day of the review meeting (Asia/Shanghai; not in the future, not before the plan's window_start; "
        "default: today). An approved course's sittings count from this day on."))


class ReviewOut(BaseModel):
    decision: str
    reviewers: list[str]
    checks: ReviewChecksIn
    comment: str | None
    reviewed_on: dt.date
    recorded_at: dt.datetime


class CourseOut(BaseModel):
    id: uuid.UUID
    base_id: uuid.UUID
    code: str
    title: str
    year: int
    category: str
    topic: str | None
    field: str | None
    hours: int
    mode: str
    exam_questions: int
    status: str
    submitted_at: dt.datetime
    withdrawn_at: dt.datetime | None
    withdrawal_reason: str | None
    live_from: dt.date | None = Field(description=(
        "The first day its sittings count: the approving review's day (a seminar's course: its first day)."))
    seminar_id: uuid.UUID | None = Field(description="A seminar's attendance course: records come by its upload.")
    review: ReviewOut | None
    xapi_activity_ids: list[str] = Field(default_factory=list, description=XAPI_ACTIVITY_IDS)


class CourseCreated(BaseModel):
    id: uuid.UUID
    status: str


# ---- advanced seminars --------------------------------------------------------------------------

SeminarKind = Literal["national", "provincial_demonstration", "engineering", "provincial_ordinary"]
Headcount = Annotated[int, Field(ge=0, le=100_000)]


class SeminarIn(StrictModel):
    year: Year
    kind: SeminarKind
    title: Text
    organizer: Annotated[str, Field(min_length=1, max_length=200, description=(
        "The organising unit: an approved base's id (its key then uploads attendance) or a unit's name."))]
    fields: Annotated[list[FieldCode], Field(min_length=1, max_length=20)]
    start_date: dt.date
    end_date: dt.date
    location: Text
    trainees: Headcount
    online_trainees: Headcount = 0
    staff: Headcount
    mode: Literal["offline", "mixed"]
    budget_yuan: Annotated[int, Field(ge=0, le=100_000_000)]
    subsidy_yuan: Annotated[int | None, Field(ge=0, le=100_000_000)] = Field(default=None, description=(
        "The fiscal subsidy, what the caps limit (national 10.5万, demonstration and engineering 5万); omitted: a "
        "fiscal project's whole budget. A self-funded budget beyond it is allowed."))
    funding: Literal["fiscal", "self"]
    plan_filed_on: dt.date | None = None


class SeminarChangeIn(StrictModel):
    """Any subset of the project's fields, and the written reason (required once the project is approved). Only
    `subsidy_yuan` and `plan_filed_on` may be set to null."""

    title: Text | None = None
    fields: Annotated[list[FieldCode] | None, Field(min_length=1, max_length=20)] = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    location: Text | None = None
    trainees: Headcount | None = None
    online_trainees: Headcount | None = None
    staff: Headcount | None = None
    mode: Literal["offline", "mixed"] | None = None
    budget_yuan: Annotated[int | None, Field(ge=0, le=100_000_000)] = None
    subsidy_yuan: Annotated[int | None, Field(ge=0, le=100_000_000)] = None
    funding: Literal["fiscal", "self"] | None = None
    plan_filed_on: dt.date | None = None
    reason: Annotated[str | None, Field(min_length=1, max_length=2000)] = None

    @field_validator("title", "fields", "start_date", "end_date", "location", "trainees", "online_trainees", "staff",
                     "mode", "budget_yuan", "funding", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Given only when sent: an explicit null would erase a value the project must have.
        if value is None:
            raise PydanticCustomError("not-nullable", "this field cannot be set to null; leave it out to keep it")
        return value


class SeminarCreated(BaseModel):
    id: uuid.UUID
    warnings: list[str]


class SeminarOut(BaseModel):
    id: uuid.UUID
    year: int
    kind: str
    title: str
    organizer: str
    organizer_base_id: uuid.UUID | None
    fields: list[str]
    start_date: dt.date
    end_date: dt.date
    days: int
    location: str
    trainees: int
    online_trainees: int
    staff: int
    mode: str
    budget_yuan: int
    subsidy_yuan: int | None
    funding: str
    plan_filed_on: dt.date | None
    status: str
    course_id: uuid.UUID | None
    warnings: list[str]


class SeminarChangeOut(BaseModel):
    changed_at: dt.datetime
    changed_by: uuid.UUID
    reason: str | None
    before: dict
    after: dict


class MaterialIn(StrictModel):
    item: Literal["notice", "summary", "settlement", "roster", "sign_in_sheets", "satisfaction_statistics",
                  "outcomes_report", "news", "receipts", "reimbursement"] = Field(description=(
        "Demonstration and engineering projects: the nine closing materials; national fiscal projects: "
        "`reimbursement` (经费报销材料); other projects owe none."))
    submitted_on: dt.date


SurveyLevel = Literal["satisfied", "fairly_satisfied", "dissatisfied"]


class SurveyAnswerIn(StrictModel):
    answers: dict[Literal["topic", "content", "experts", "methods", "organisation", "logistics", "overall"],
                  SurveyLevel]
    comment: Annotated[str | None, Field(max_length=2000)] = None


class SurveyIn(StrictModel):
    responses: Annotated[list[SurveyAnswerIn], Field(min_length=1, max_length=1000)]
