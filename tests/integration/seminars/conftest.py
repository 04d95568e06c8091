from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from xueshi_shared.timekeeping import today


@dataclass(frozen=True)
class SeminarYear:
    """A seminar plan for next year (the 2025 rules, deadline 30 November), so that its seminars have not ended."""

    year: int

    def dates(self, start: str = "09-01", end: str = "09-05", filed: str | None = "07-31") -> dict:
        return {"year": self.year, "start_date": f"{self.year}-{start}", "end_date": f"{self.year}-{end}",
                "plan_filed_on": None if filed is None else f"{self.year}-{filed}"}


@pytest.fixture
async def next_year(engine) -> SeminarYear:
    year = today().year + 1
    async with engine.begin() as conn:
        rules = (await conn.execute(sa.text("SELECT rules FROM catalog.seminar_plans WHERE year = 2025"))).scalar_one()
        await conn.execute(sa.text("""
            INSERT INTO catalog.seminar_plans (year, rules, planned_projects, closing_materials_months, source)
            VALUES (:y, CAST(:rules AS jsonb), '{}', 1, 'test fixture')"""),
                           {"y": year, "rules": json.dumps({**rules, "deadline": dt.date(year, 11, 30).isoformat()})})
    return SeminarYear(year)
