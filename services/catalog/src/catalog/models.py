"""Tables of the `catalog` schema (owned by this service alone)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase

SCHEMA = "catalog"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)
