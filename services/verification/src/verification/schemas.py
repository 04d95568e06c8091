"""Request and response models of the verification service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from xueshi_shared.schemas import StrictModel


class ProofIn(StrictModel):
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    year: Annotated[int, Field(ge=2000, le=2100)]
    scope: Literal["public", "professional"]
    field: Annotated[str | None, Field(min_length=1, max_length=16, description="For a professional proof.")] = None


class ProofCreated(BaseModel):
    proof_id: uuid.UUID
    credential: dict[str, Any] = Field(description="The signed OpenBadgeCredential (VC 2.0, eddsa-rdfc-2022).")
    pdf_url: str
    verify_url: str


class RevocationIn(StrictModel):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class RevocationOut(BaseModel):
    proof_id: uuid.UUID
    revoked: bool
    reason: str


class VerificationIn(StrictModel):
    credential: Any = Field(description="The credential as received (JSON object).")
    id_number: Annotated[str | None, Field(min_length=5, max_length=32, description=(
        "Optional: confirms online that this ID number is the holder's, against the registry's record of the proof "
        "(match or no match; rate-limited per client and per proof; audited; the number is never stored or "
        "echoed). Nothing in a credential lets anyone check it offline."))] = None


class Check(BaseModel):
    check: str = Field(description="issuer, proof, validity, status, holder (or format)")
    ok: bool
    detail: str


class Issuer(BaseModel):
    id: Any
    name: Any = None


class VerificationOut(BaseModel):
    verified: bool
    revoked: bool
    issuer: Issuer | None
    credits: Any = Field(description="creditsEarned: the stamped 学时.")
    checks: list[Check]


class BulkVerificationIn(StrictModel):
    credentials: Annotated[list[Any], Field(min_length=1, max_length=1000)]


class BulkVerificationOut(BaseModel):
    results: list[VerificationOut]
