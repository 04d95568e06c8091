"""Routes of the statistics (statistics.py): by region, unit, authority, field, base, topic and week, and the
bases' quality; JSON, CSV or XLSX."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query, Request, Response
from xueshi_shared.exports import csv_document, safe_cell
from xueshi_shared.schemas import ProblemDocument
from xueshi_shared.web import CurrentPrincipal, OrjsonRoute

from . import schemas, statistics
from .domain.statistics import MEASURES, QUALITY_RULES
from .sheets import XLSX_MEDIA_TYPE

router = APIRouter(tags=["statistics"], route_class=OrjsonRoute)

Year = Annotated[int, Path(ge=2000, le=2100)]
Format = Literal["json", "csv", "xlsx"]
LABELS = {
    "key": "代码", "name": "名称", "people": "有学时记录人数", "people_credited": "获得学时人数",
    "people_public_met": "公需科目达标人数", "people_yearly_met": "年度学时达标人数", "records": "记录数",
    "credited_hours": "认定学时", "public_hours": "公需科目学时", "other_topic_hours": "其它主题学时",
    "professional_hours": "专业科目学时", "reported_minutes": "申报分钟", "counted_minutes": "计入分钟",
}
_FORMATS: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}},
                  "description": "format=csv or xlsx: the same rows as a spreadsheet"},
            403: {"model": ProblemDocument, "description": "Not staff, or a filter outside the staff member's scope"},
            422: {"model": ProblemDocument, "description": "An unknown group, filter value or filter combination"}}


async def _read(engine: Any, principal: Any, year: int, filters: dict[str, str | None],
                work: Any) -> tuple[statistics.Scope, statistics.Names, Any, Any]:
    """Fold what is queued (statistics.REQUEST_ROUNDS), then read in one snapshot."""
    principal.require_staff()
    await statistics.catch_up(engine)
    async with engine.connect() as c:
        conn = await statistics.raw(c)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            labels = await statistics.names(conn, year)
            scope = statistics.scope_of(principal, filters, labels.owners, {*labels.topics, "other"})
            result = await work(conn, scope, labels)
            as_of = await statistics.folded_through(conn)
    return scope, labels, result, as_of


def _sheet(columns: list[str], rows: list[dict[str, Any]], fmt: str, name: str) -> Response:
    disposition = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"', "Cache-Control": "no-store"}
    if fmt == "csv":
        return Response(csv_document(columns, rows).encode(), media_type="text/csv; charset=utf-8", headers=disposition)
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "statistics"
    sheet.append([f"{LABELS.get(c, c)}" for c in columns])
    sheet.append(columns)
    for cell in (*sheet[1], *sheet[2]):
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([safe_cell(row.get(c)) for c in columns])
    sheet.freeze_panes = "C3"
    out = io.BytesIO()
    book.save(out)
    return Response(out.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=disposition)


def _flat(group: dict[str, Any], rules: list[str]) -> dict[str, Any]:
    row = {k: v for k, v in group.items() if k != "cuts"}
    for rule in rules:
        cut = group["cuts"].get(rule, {})
        row[f"{rule}:records"] = cut.get("records", 0)
        row[f"{rule}:minutes"] = cut.get("minutes", 0)
    return row


@router.get("/v1/statistics/{year}", response_model=schemas.StatisticsOut, responses=_FORMATS,
            summary="A year's statistics in the staff member's scope, by region, unit, authority, field, base, topic "
                    "or week (counters kept as records are written)")
async def get_statistics(
    year: Year, request: Request, principal: CurrentPrincipal,
    group_by: Annotated[Literal["region", "unit", "authority", "field", "base", "topic", "week"], Query(
        description="What the groups are. region: by city (or by county within a city or county scope)")] = "region",
    level: Annotated[Literal["city", "county"] | None, Query(description="group_by=region: city or county")] = None,
    region: Annotated[str | None, Query(description="A city or county (GB/T 2260)", max_length=6)] = None,
    authority: Annotated[str | None, Query(max_length=16)] = None,
    field: Annotated[str | None, Query(max_length=16)] = None,
    topic: Annotated[str | None, Query(max_length=16)] = None,
    base: Annotated[str | None, Query(max_length=36)] = None,
    format: Annotated[Format, Query(description="json, or a spreadsheet: csv, xlsx")] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    filters = {"region": region, "authority": authority, "field": field, "topic": topic, "base": base}
    return await statistics_answer(request.app.state.engine, principal, year, group_by, level, filters, format,
                                   limit, offset)


async def statistics_answer(engine: Any, principal: Any, year: int, group_by: str, level: str | None,
                            filters: dict[str, str | None], format: str, limit: int = 1000, offset: int = 0) -> Any:
    dim: dict[str, str] = {}

    async def work(conn: asyncpg.Connection, scope: statistics.Scope, labels: statistics.Names) -> Any:
        dim["name"] = statistics.dimension(group_by, level, scope)
        return await statistics.read(conn, year, scope, dim["name"], labels)

    scope, labels, result, as_of = await _read(engine, principal, year, filters, work)
    groups = result["groups"]
    if format != "json":
        rules = sorted({r for g in [result["total"], *groups] for r in g["cuts"]} | set(QUALITY_RULES))
        columns = ["key", "name", *MEASURES, *(f"{r}:{m}" for r in rules for m in ("records", "minutes"))]
        rows = [_flat({"key": "total", "name": "合计", **result["total"]}, rules), *(_flat(g, rules) for g in groups)]
        return _sheet(columns, rows, format, f"xueshi-statistics-{year}-{dim['name']}")
    return {"year": year, "group_by": group_by, "dimension": dim["name"],
            "scope": {"kind": scope.kind, "code": scope.code}, "as_of": as_of,
            "required_hours": labels.required_hours, "total": result["total"], "total_groups": len(groups),
            "groups": groups[offset:offset + limit]}


async def export_statistics(engine: Any, principal: Any, year: int, group_by: str, format: str) -> Any:
    """The console's downloads: the staff member's own scope."""
    return await statistics_answer(engine, principal, year, group_by, None, {}, format)


@router.get("/v1/statistics/{year}/base-quality", response_model=schemas.BaseQualityOut, responses=_FORMATS,
            summary="Each base's share of its minutes cut by parallel study, proxy study (identity), the daily limit, "
                    "media shortfall and repeated courses, beside the province's median")
async def base_quality(
    year: Year, request: Request, principal: CurrentPrincipal,
    region: Annotated[str | None, Query(max_length=6)] = None,
    authority: Annotated[str | None, Query(max_length=16)] = None,
    field: Annotated[str | None, Query(max_length=16)] = None,
    topic: Annotated[str | None, Query(max_length=16)] = None,
    format: Annotated[Format, Query()] = "json",
) -> Any:
    filters = {"region": region, "authority": authority, "field": field, "topic": topic}
    return await quality_answer(request.app.state.engine, principal, year, filters, format)


async def export_base_quality(engine: Any, principal: Any, year: int, format: str) -> Any:
    return await quality_answer(engine, principal, year, {}, format)


async def quality_answer(engine: Any, principal: Any, year: int, filters: dict[str, str | None], format: str) -> Any:
    async def work(conn: asyncpg.Connection, scope: statistics.Scope, labels: statistics.Names) -> Any:
        mine = await statistics.read(conn, year, scope, "base", labels)
        province = mine if scope.key == "" else await statistics.read(
            conn, year, statistics.Scope("", "province", None), "base", labels)
        return statistics.quality(mine["groups"], province["groups"])

    scope, _, result, as_of = await _read(engine, principal, year, filters, work)
    if format != "json":
        columns = ["base_id", "name", "records", "reported_minutes", "counted_minutes",
                   *(f"{r}:{m}" for r in QUALITY_RULES for m in ("minutes", "share", "province_median"))]
        rows = [{**{k: b[k] for k in columns[:5]},
                 **{f"{r}:{m}": b["rules"][r][m] for r in QUALITY_RULES for m in ("minutes", "share", "province_median")}}
                for b in result["bases"]]
        return _sheet(columns, rows, format, f"xueshi-base-quality-{year}")
    return {"year": year, "scope": {"kind": scope.kind, "code": scope.code}, "as_of": as_of, **result}
