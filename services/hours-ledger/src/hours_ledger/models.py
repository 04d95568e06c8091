"""Tables of the `hours_ledger` schema (owned by this service alone)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

SCHEMA = "hours_ledger"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)
