"""Base classes of every request and response model."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from stdnum.cn import uscc as stdnum_uscc
from stdnum.exceptions import ValidationError as StdnumError

__all__ = ["FieldErrorDoc", "PrincipalOut", "ProblemDocument", "StrictModel", "Uscc"]


@functools.lru_cache(maxsize=65_536)
def _checked_uscc(value: str) -> tuple[str | None, str | None]:
    """(the code, None) or (None, why not). Units repeat across a batch: the check digit is computed once per
    code (a raised exception would not be cached, so the outcome is returned)."""
    try:
        return stdnum_uscc.validate(value), None
    except StdnumError as exc:
        return None, str(exc)


def _uscc(value: str) -> str:
    code, reason = _checked_uscc(value)
    if code is None:
        raise PydanticCustomError(
            "uscc-check-digit", "not a valid unified social credit code (统一社会信用代码): {reason}",
            {"reason": reason})
    return code


# 统一社会信用代码 (GB 32100), check digit verified by python-stdnum.
Uscc = Annotated[str, Field(min_length=18, max_length=18), AfterValidator(_uscc)]


class StrictModel(BaseModel):
    """Request bodies: an unknown field is an error, not something silently ignored; no text holds NUL."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000; refuse it here, naming the field, rather than at the database.
        # Runs for every field of every request: kept to plain type checks (no generator, no list).
        if type(value) is str:
            if "\x00" in value:
                raise PydanticCustomError("nul-character", "text may not contain the NUL character (U+0000)")
        elif type(value) is list:
            for item in value:
                if type(item) is str and "\x00" in item:
                    raise PydanticCustomError("nul-character", "text may not contain the NUL character (U+0000)")
        return value


class FieldErrorDoc(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `operations_lead.phone`.")
    rule: str = Field(description="The rule it breaks (stable slug).")
    detail: str


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`/problems/<rule>`: stable per rule.", examples=["/problems/validation"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = Field(default=None, description="The first offending field, when one is to blame.")
    errors: list[FieldErrorDoc] | None = None

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)


class PrincipalOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(description="`staff` or `base`.")
    name: str
    role: str | None = None
    region: str | None = None
    authority: str | None = None
    base_id: uuid.UUID | None = None
