"""Request and response models of the verification service."""

from __future__ import annotations

import datetime as dt
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
    supersedes: list[uuid.UUID] = Field(default_factory=list, description=(
        "Earlier proofs of the same person, year and scope that this one superseded."))


Standing = Literal["valid", "revoked", "superseded"]


class ProofSummary(BaseModel):
    proof_id: uuid.UUID
    year: int
    scope: Literal["public", "professional"]
    field: str | None
    body: str = Field(description="The stamping body (region or authority code).")
    issuer: str | None = Field(description="The stamping body's full name.")
    credited_hours: int
    status: Standing
    issued_at: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    superseded_at: dt.datetime | None
    superseded_by: uuid.UUID | None = Field(description="The newer proof, when one replaced it; null when the "
                                                        "proof was superseded because its records changed.")
    supersession_reason: str | None
    pdf_url: str
    verify_url: str


class PeopleProofsIn(StrictModel):
    id_number: Annotated[str, Field(min_length=5, max_length=32)]
    year: Annotated[int | None, Field(ge=2000, le=2100)] = None


class PeopleProofsOut(BaseModel):
    proofs: list[ProofSummary] = Field(description=(
        "Newest year first, then by scope and field, newest proof first. Only proofs of the caller's body (all, "
        "for province_admin and auditor); a person with none in scope gets an empty list."))


class AwaitingProof(ProofSummary):
    name: str | None
    masked_id: str | None = Field(description="The last four characters of the ID number.")


class AwaitingOut(BaseModel):
    proofs: list[AwaitingProof]


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
    check: str = Field(description="issuer, proof, validity, status, holder (or format); for PDFs see "
                                   "PdfVerificationOut")
    ok: bool
    detail: str


class Issuer(BaseModel):
    id: Any
    name: Any = None


class VerificationOut(BaseModel):
    verified: bool
    revoked: bool
    issuer: Issuer | None
    credits: Any = Field(description="creditsEarned: the stamped 学时, when the registry's signature holds (else null).")
    claimed_credits: Any = Field(default=None, description=(
        "What a credential whose issuer or signature failed claims as creditsEarned: not the registry's word."))
    status: Standing | None = Field(default=None, description="The proof's standing in the registry (null for a "
                                                              "credential the registry did not issue).")
    status_since: dt.datetime | None = None
    superseded_by: uuid.UUID | None = None
    status_reason: str | None = None
    checks: list[Check]


class PdfVerificationOut(BaseModel):
    verified: bool = Field(description="Every check passed: the PDF is the registry's proof, unchanged, and stands.")
    proof_id: uuid.UUID | None
    credits: int | None = Field(description="The proof's credited 学时, when verified.")
    status: Standing | None
    status_since: dt.datetime | None
    superseded_by: uuid.UUID | None
    status_reason: str | None
    checks: list[Check] = Field(description=(
        "signature (valid, and certified by the deployment CA), certification (DocMDP: no changes permitted), "
        "whole-file (nothing appended after signing), credential (the embedded credential is the registry's "
        "proof), status (the proof stands); or format, for a file that cannot be read."))


class BulkVerificationIn(StrictModel):
    credentials: Annotated[list[Any], Field(min_length=1, max_length=1000)]


class BulkVerificationOut(BaseModel):
    results: list[VerificationOut]
