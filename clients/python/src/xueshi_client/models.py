"""The hours ledger's request and response bodies, as pydantic models.

They mirror the components of the ledger's OpenAPI document (openapi/hours-ledger.json in the Xueshi
repository); a test there holds each model's fields, required fields and enumerations equal to the document.
Responses are read leniently (a field the server adds later is ignored), requests strictly (a misspelt field
is an error here, before anything is sent).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

IdType = Literal["RIC", "passport", "hk_macau_permit", "taiwan_permit"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---- requests ------------------------------------------------------------------------------------

class Unit(_Request):
    name: str = Field(min_length=1, max_length=200)
    uscc: str = Field(description="The unit's 18-character unified social credit code.")
    region: str = Field(pattern=r"^35[0-9]{4}$", description="GB/T 2260 code in force in Fujian.")


class IdentityChecks(_Request):
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class SittingIn(_Request):
    started_at: dt.datetime
    ended_at: dt.datetime
    media_seconds: int | None = Field(default=None, ge=0)
    identity_checks: IdentityChecks | None = None
    mode: Literal["online", "offline"] | None = None


class ExamIn(_Request):
    questions: int = Field(ge=0)
    correct: int = Field(ge=0)
    passed: bool


class RecordIn(_Request):
    """One study record. `external_id` is the base's own id and the idempotency key: the client retries with it,
    and the ledger answers a repeat with the first result."""

    external_id: str = Field(min_length=1, max_length=128)
    course_id: uuid.UUID
    id_type: IdType
    id_number: str = Field(min_length=5, max_length=32)
    name: str = Field(min_length=1, max_length=100)
    unit: Unit
    sittings: list[SittingIn] = Field(min_length=1, max_length=200)
    exam: ExamIn | None = None


class PersonCheckIn(_Request):
    id_type: IdType
    id_number: str = Field(min_length=5, max_length=32)
    name: str = Field(min_length=1, max_length=100)


# ---- responses ------------------------------------------------------------------------------------

class AdjustmentOut(_Response):
    rule: str
    minutes: int
    hours: int
    day: dt.date | None
    detail: str


class RecordResult(_Response):
    record_id: uuid.UUID
    external_id: str
    credited_hours: int
    counted_minutes: int
    status: Literal["credited", "partial", "not_credited"]
    adjustments: list[AdjustmentOut]


class RecordView(RecordResult):
    """A record read later: its result, and whether staff reversed it (when, why)."""

    reversed: bool
    reversed_at: dt.datetime | None
    reversal_reason: str | None


class BatchItem(_Response):
    index: int
    status: int
    result: RecordResult | None = None
    problem: dict[str, Any] | None = None


class PersonCheckOut(_Response):
    valid: bool
    problems: list[dict[str, Any]]
    name_matches: bool | None


RowStatus = Literal["credited", "partial", "not_credited", "replayed", "refused"]


class RosterCounts(_Response):
    credited: int
    partial: int
    not_credited: int
    replayed: int
    refused: int


class RosterAccepted(_Response):
    id: uuid.UUID
    status: Literal["processing"]
    dry_run: bool
    format: Literal["xlsx", "csv"]
    rows_total: int
    records_total: int
    rows_done: int
    created_at: dt.datetime


class RosterRowOut(_Response):
    row: int
    external_id: str | None
    status: RowStatus
    result: RecordResult | None
    problem: dict[str, Any] | None


class RosterView(_Response):
    id: uuid.UUID
    status: Literal["processing", "done", "interrupted"]
    dry_run: bool
    format: Literal["xlsx", "csv"]
    filename: str | None
    rows_total: int
    records_total: int
    rows_done: int
    counts: RosterCounts
    created_at: dt.datetime
    finished_at: dt.datetime | None
    rows: list[RosterRowOut]
    next_after_row: int | None


# ---- what the client answers ------------------------------------------------------------------------

class Pushed(_Response):
    """A record's answer: its result, and whether the ledger already held it (a repeat: nothing new)."""

    result: RecordResult
    replayed: bool


# The client's model of each component of openapi/hours-ledger.json it mirrors (the drift test reads this).
COMPONENTS: dict[str, type[BaseModel]] = {
    "Unit": Unit, "IdentityChecks": IdentityChecks, "SittingIn": SittingIn, "ExamIn": ExamIn, "RecordIn": RecordIn,
    "PersonCheckIn": PersonCheckIn, "AdjustmentOut": AdjustmentOut, "RecordResult": RecordResult,
    "RecordView": RecordView, "BatchItem": BatchItem, "PersonCheckOut": PersonCheckOut, "RosterCounts": RosterCounts,
    "RosterAccepted": RosterAccepted, "RosterRowOut": RosterRowOut, "RosterView": RosterView,
}
