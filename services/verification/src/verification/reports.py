"""The December report (榕人社培〔2026〕23号 item 三: 2026年各地区各行业主管部门继续教育开展情况), for the staff
member's own scope: `GET /v1/reports/{year}/annual?format=xlsx|pdf`.

Its numbers are the ledger's statistics counters (hours-ledger statistics.py, read through the view
`hours_ledger.published_statistics`), so the report says exactly what `GET /v1/statistics/{year}` says for the
same scope, with the counters' cut-off (`folded_through`: every change committed before it is counted). Sheets:
by region (a province: by city; a city: by county; an authority: by city), by field, and the summary (people,
学时, requirement met, bases active, seminars held). The PDF is in Chinese with its font embedded and is certified
(PAdES, DocMDP: no changes) with the stamp of the bureau that sends it up, as proofs are: 省人社厅 for the
province's staff, the city's bureau for a city administrator, the authority for its reviewer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.principal import Principal
from xueshi_shared.problems import Forbidden
from xueshi_shared.regions import CODES, PROVINCE

from .keys import body_for_authority, body_names, signing_stamp
from .pdf import CREATOR, FONT, certify
from .seal import seal_png

__all__ = ["Report", "annual", "pdf", "xlsx"]

COLUMNS = (("people", "有学时记录人数"), ("people_public_met", "公需科目达标人数"),
           ("people_yearly_met", "年度学时达标人数"), ("credited_hours", "认定学时"),
           ("public_hours", "公需科目学时"), ("professional_hours", "专业科目学时"), ("records", "记录数"))
BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Report:
    year: int
    scope_key: str
    scope_label: str
    body: str
    body_name: str
    account: str
    generated_at: dt.datetime
    cut_off: dt.datetime | None
    summary: dict[str, int]
    sheets: tuple[tuple[str, str, list[dict[str, Any]]], ...]  # (title, the key's label, rows)

    @property
    def cut_off_text(self) -> str:
        return "尚无数据" if self.cut_off is None else f"{self.cut_off.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}（北京时间）"


def _scope(principal: Principal) -> tuple[str, str, str, str, str]:
    """(counters' scope, kind, code, stamping body, region dimension) of the staff member's own scope."""
    principal.require_staff()
    if principal.role in ("province_admin", "auditor"):
        return "", "province", PROVINCE, PROVINCE, "city"
    if principal.role == "city_admin" and principal.region:
        return f"c:{principal.region}", "city", principal.region, principal.region, "county"
    if principal.role == "authority_reviewer" and principal.authority:
        a = principal.authority
        return f"a:{a}", "authority", a, body_for_authority(a), "city"
    raise Forbidden("your role has no report scope", rule="role-not-allowed")


async def annual(db: AsyncSession, principal: Principal, year: int, now: dt.datetime) -> Report:
    key, kind, code, body, region_dim = _scope(principal)
    rows = (await db.execute(sa.text(
        "SELECT dim, value, people, people_public_met, people_yearly_met, credited_hours, public_hours, "
        "professional_hours, records, folded_through FROM hours_ledger.published_statistics "
        "WHERE year = :y AND scope = :s AND dim IN ('', :r, 'field', 'base') AND (people > 0 OR records > 0)"),
        {"y": year, "s": key, "r": region_dim})).mappings().all()
    cut_off = (await db.execute(sa.text(
        "SELECT folded_through FROM hours_ledger.published_statistics LIMIT 1"))).scalar()
    names = await body_names(db)
    fields = dict((await db.execute(sa.text("SELECT code, name FROM catalog.published_fields"))).all())
    total = next((r for r in rows if r["dim"] == ""), None)
    summary = {c: int(total[c]) if total else 0 for c, _ in COLUMNS}
    summary["bases_active"] = sum(1 for r in rows if r["dim"] == "base" and r["people"] > 0)
    seminars = (await db.execute(sa.text(
        "SELECT s.id, s.course_id FROM catalog.published_seminars s WHERE s.year = :y AND s.status = 'approved' "
        "AND s.end_date <= :today"), {"y": year, "today": now.astimezone(BEIJING).date()})).all()
    summary["seminars_held"] = len(seminars)

    def sheet(dim: str) -> list[dict[str, Any]]:
        out = []
        for r in sorted((r for r in rows if r["dim"] == dim), key=lambda r: r["value"]):
            name = CODES.get(r["value"]) if dim in ("city", "county") else fields.get(r["value"])
            out.append({"key": r["value"], "name": name or r["value"], **{c: int(r[c]) for c, _ in COLUMNS}})
        return out

    label = {"province": "福建省（全省）", "city": f"{CODES.get(code, code)}",
             "authority": names.get(code, code)}[kind]
    region_title = "分地区（设区市）" if region_dim == "city" else "分地区（县、市、区）"
    return Report(year=year, scope_key=key, scope_label=label, body=body, body_name=names.get(body, body),
                  account=principal.name, generated_at=now, cut_off=cut_off, summary=summary,
                  sheets=((region_title, "地区", sheet(region_dim)), ("分行业领域", "专业领域", sheet("field"))))


def _header(report: Report) -> list[list[str]]:
    return [[f"{report.year}年度各地区各行业主管部门继续教育开展情况"], [f"范围：{report.scope_label}"],
            [f"数据截至：{report.cut_off_text}"], [f"生成账号：{report.account}"],
            [f"生成时间：{report.generated_at.astimezone(BEIJING):%Y-%m-%d %H:%M:%S}（北京时间）"]]


def xlsx(report: Report) -> bytes:
    import openpyxl
    from openpyxl.styles import Font
    from xueshi_shared.exports import safe_cell

    book = openpyxl.Workbook()
    first = book.active
    first.title = "汇总"
    for line in _header(report):
        first.append(line)
    first["A1"].font = Font(bold=True, size=14)
    first.append([])
    summary_labels = [*COLUMNS, ("bases_active", "开展培训的基地数"), ("seminars_held", "举办高级研修班数")]
    for c, label in summary_labels:
        first.append([label, report.summary[c]])
    for title, key_label, rows in report.sheets:
        sheet = book.create_sheet(title)
        sheet.append([key_label + "代码", key_label, *(label for _, label in COLUMNS)])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for r in rows:
            sheet.append([safe_cell(r["key"]), safe_cell(r["name"]), *(r[c] for c, _ in COLUMNS)])
        sheet.append(["合计", "", *(sum(r[c] for r in rows) if c in ("credited_hours", "public_hours",
                                                                     "professional_hours", "records") else ""
                                 for c, _ in COLUMNS)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _page(report: Report) -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1, initialFontName=FONT, initialFontSize=10)
    title = f"{report.year}年度各地区各行业主管部门继续教育开展情况"
    c.setTitle(title)
    c.setAuthor(report.body_name)
    c.setCreator(CREATOR)
    width, height = A4
    c.setFont(FONT, 16)
    c.drawCentredString(width / 2, height - 70, title)
    c.setFont(FONT, 10)
    y = height - 100
    for (line,) in _header(report)[1:]:
        c.drawString(60, y, line)
        y -= 15
    y -= 6
    c.setFont(FONT, 11)
    summary = (f"有学时记录 {report.summary['people']} 人，公需科目达标 {report.summary['people_public_met']} 人，"
               f"年度学时达标 {report.summary['people_yearly_met']} 人；认定 {report.summary['credited_hours']} 学时"
               f"（公需 {report.summary['public_hours']}，专业 {report.summary['professional_hours']}）；")
    c.drawString(60, y, summary)
    y -= 15
    c.drawString(60, y, f"开展培训的基地 {report.summary['bases_active']} 个，举办高级研修班 "
                        f"{report.summary['seminars_held']} 期。")
    y -= 24
    widths = (150, 60, 60, 60, 60, 60, 60)
    heads = ("", "人数", "公需达标", "年度达标", "认定学时", "公需学时", "专业学时")
    for sheet_title, _, rows in report.sheets:
        if y < 160:
            c.showPage()
            y = height - 60
        c.setFont(FONT, 12)
        c.drawString(60, y, sheet_title)
        y -= 16
        c.setFont(FONT, 9)
        x = 60
        for w, h in zip(widths, heads, strict=True):
            c.drawString(x, y, h)
            x += w
        y -= 13
        for r in rows:
            if y < 150:
                c.showPage()
                c.setFont(FONT, 9)
                y = height - 60
            x = 60
            values = (f"{r['name']}（{r['key']}）"[:22], *(str(r[k]) for k in (
                "people", "people_public_met", "people_yearly_met", "credited_hours", "public_hours",
                "professional_hours")))
            for w, v in zip(widths, values, strict=True):
                c.drawString(x, y, v)
                x += w
            y -= 12
        if not rows:
            c.drawString(60, y, "（无）")
            y -= 12
        y -= 12
    c.setFont(FONT, 11)
    c.drawRightString(width - 70, 110, report.body_name)
    c.drawRightString(width - 70, 94, f"{report.generated_at.astimezone(BEIJING):%Y年%m月%d日}")
    c.drawImage(ImageReader(io.BytesIO(seal_png(report.body_name, "继续教育统计专用章"))), width - 220, 50, 120, 120,
                mask="auto")
    c.setFont(FONT, 8)
    c.drawString(60, 50, "本报告经电子签章（PAdES）；任何改动都会使签章失效。数据取自学时登记系统统计，口径见系统说明。")
    c.showPage()
    c.save()
    return out.getvalue()


async def pdf(db: AsyncSession, secret: bytes, report: Report) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    stamp, ca_pem = await signing_stamp(db, report.body, secret)

    def sign() -> bytes:  # pyHanko runs its own event loop: in a thread
        return certify(IncrementalPdfFileWriter(io.BytesIO(_page(report))), stamp, ca_pem, "继续教育开展情况报告")

    return await asyncio.to_thread(sign)
