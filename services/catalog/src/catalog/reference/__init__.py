"""Reference data versioned in the repository, loaded by `xueshi db upgrade` (and so by `make run`).

`authorities.json`: the directory of 闽人社办〔2023〕222号 annex 1 (40 rows) plus accounting (省财政厅);
`plans.json`: the public-subject plans published by the province (2026: 闽人社函〔2026〕118号).
The published texts themselves are kept under `sources/` and the tests compare the data with them.

Loading is an idempotent upsert: rows in the files are created or brought up to date; rows created
through the API (another year's plan) are left alone. A field is never deleted by a load, since bases
and courses refer to it; retiring one is a migration.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib.resources
import json
from functools import cache
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ..models import Authority, Field, Plan, SeminarPlan, Topic

__all__ = ["HR_AUTHORITY", "authorities_document", "load", "plans_document", "seminar_plans_document", "source_text"]

# 省人社厅: manages the fields other authorities delegate to it (annex 2).
HR_AUTHORITY = "A12"


def _read(name: str) -> str:
    return (importlib.resources.files(__package__) / name).read_text(encoding="utf-8")


@cache
def authorities_document() -> dict[str, Any]:
    return json.loads(_read("authorities.json"))


@cache
def plans_document() -> dict[str, Any]:
    return json.loads(_read("plans.json"))


@cache
def seminar_plans_document() -> dict[str, Any]:
    return json.loads(_read("seminar_plans.json"))


def source_text(name: str) -> str:
    return _read(f"sources/{name}")


async def load(conn: AsyncConnection) -> None:
    directory = authorities_document()
    effective_from = dt.date.fromisoformat(directory["effective_from"])
    for a in directory["authorities"]:
        values = {
            "code": a["code"], "name": a["name"], "directory_row": a["directory_row"],
            "personnel_scope": a["personnel_scope"], "self_managed": a["self_managed"],
            "effective_from": effective_from,
        }
        stmt = insert(Authority).values(values)
        await conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=values))
        for position, f in enumerate(a["fields"], 1):
            fv = {"code": f["code"], "authority": a["code"], "position": position, "name": f["name"]}
            await conn.execute(insert(Field).values(fv).on_conflict_do_update(index_elements=["code"], set_=fv))

    for p in plans_document()["plans"]:
        values = {
            "year": p["year"], "required_hours": p["required_hours"],
            "window_start": dt.date.fromisoformat(p["window_start"]), "deadline": dt.date.fromisoformat(p["deadline"]),
            "max_hours_per_day": p["max_hours_per_day"], "minutes_per_hour": p["minutes_per_hour"],
            "min_exam_questions": p["min_exam_questions"], "source": p["source"],
            "identity_failed_share_max": decimal.Decimal(p["identity_failed_share_max"]),
            "other_topics_allowed": p["other_topics_allowed"],
        }
        await conn.execute(insert(Plan).values(values).on_conflict_do_update(index_elements=["year"], set_=values))
        for position, t in enumerate(p["topics"], 1):
            tv = {"year": p["year"], "code": t["code"], "position": position, "title": t["title"],
                  "hours": t["hours"], "examples": t.get("examples")}
            await conn.execute(
                insert(Topic).values(tv).on_conflict_do_update(index_elements=["year", "code"], set_=tv))

    for sp in seminar_plans_document()["plans"]:
        values = {"year": sp["year"], "rules": sp["rules"], "planned_projects": sp["planned_projects"],
                  "closing_materials_months": sp["closing_materials_months"], "source": sp["source"]}
        await conn.execute(insert(SeminarPlan).values(values).on_conflict_do_update(index_elements=["year"],
                                                                                    set_=values))
