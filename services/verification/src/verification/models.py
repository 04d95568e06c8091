"""Tables of the `verification` schema (owned by this service alone)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

SCHEMA = "verification"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)
