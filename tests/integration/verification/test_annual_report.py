"""The December report: the statistics of the staff member's scope as the sheets a bureau sends up, and a PDF in
Chinese (fonts embedded) certified with the bureau's stamp, which pdfsig finds valid and trusted."""

from __future__ import annotations

import io
import subprocess

import openpyxl
from hours_ledger import statistics

from tests.integration.verification.test_independent_checks import pdfsig_report
from tests.support.factories import approved_base, approved_course, make_staff, online_sitting, record_body, ric
from tests.support.http import assert_problem
from tests.support.tools import debian_tool


async def _studied(ledger, catalog, fuzhou):
    base = await approved_base(catalog, fuzhou)
    for n, (topic, hours) in enumerate((("1", 7), ("3", 2))):
        course = await approved_course(catalog, base, fuzhou, topic=topic, hours=hours)
        for person in (ric(801), ric(802)):
            day = f"2026-05-0{n + 4}"
            body = record_body(course, person, [online_sitting(f"{day}T08:00:00+08:00", f"{day}T14:00:00+08:00")])
            assert (await ledger.post("/v1/records", json=body, headers=base.headers)).status_code == 201


async def test_the_report_says_what_the_statistics_say_and_is_signed_by_the_bureau(
        ledger, catalog, verification, fuzhou, stamps, tmp_path, engine):
    await _studied(ledger, catalog, fuzhou)
    stats = (await ledger.get("/v1/statistics/2026?group_by=region", headers=fuzhou.headers)).json()
    response = await verification.get("/v1/reports/2026/annual?format=xlsx", headers=fuzhou.headers)
    assert response.status_code == 200, response.text
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    summary = {row[0]: row[1] for row in book["汇总"].values if row and len(row) > 1}
    assert summary["有学时记录人数"] == stats["total"]["people"] == 2
    assert summary["认定学时"] == stats["total"]["credited_hours"] == 18
    assert summary["开展培训的基地数"] == 1
    header = [row[0] for row in book["汇总"].values if row]
    assert "范围：福州市" in header and any(str(h).startswith("数据截至：20") for h in header)
    assert any(str(h).startswith("生成账号：city_admin") for h in header)
    counties = list(book["分地区（县、市、区）"].values)
    assert counties[1][0] == "350102" and counties[1][2] == 2

    pdf = await verification.get("/v1/reports/2026/annual?format=pdf", headers=fuzhou.headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    ca_pem = (await verification.get("/v1/trust/ca.pem")).text
    report = pdfsig_report(path, ca_pem, tmp_path)
    assert "Signature is Valid." in report and "Certificate is Trusted." in report, report
    assert "福州市人力资源和社会保障局" in report
    fonts = subprocess.run([debian_tool("pdffonts", "poppler-utils"), str(path)], capture_output=True,
                           text=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
    text = subprocess.run([debian_tool("pdftotext", "poppler-utils"), "-layout", str(path), "-"], capture_output=True,
                          text=True).stdout
    assert "2026年度各地区各行业主管部门继续教育开展情况" in text and "鼓楼区" in text and "数据截至" in text

    tampered = tmp_path / "tampered.pdf"
    data = bytearray(pdf.content)
    at = data.index(b"/Title")
    data[at + 1] = ord("t")
    tampered.write_bytes(bytes(data))
    assert "Signature is Valid." not in pdfsig_report(tampered, ca_pem, tmp_path)


async def test_each_staff_member_reports_their_own_scope_and_bases_none(
        ledger, catalog, verification, fuzhou, admin, engine, stamps):
    await _studied(ledger, catalog, fuzhou)
    await statistics.fold(engine)  # the report reads the counters as folded (its cut-off says up to when)
    xiamen = await make_staff(engine, "city_admin", region="350200")
    theirs = openpyxl.load_workbook(io.BytesIO((await verification.get(
        "/v1/reports/2026/annual", headers=xiamen.headers)).content))
    assert {r[0]: r[1] for r in theirs["汇总"].values if r and len(r) > 1}["有学时记录人数"] == 0
    province = openpyxl.load_workbook(io.BytesIO((await verification.get(
        "/v1/reports/2026/annual", headers=admin.headers)).content))
    cities = {r[0]: r[2] for r in list(province["分地区（设区市）"].values)[1:]}
    assert cities["350100"] == 2
    reviewer = await make_staff(engine, "authority_reviewer", authority="A20")
    assert (await verification.get("/v1/reports/2026/annual?format=pdf", headers=reviewer.headers)).status_code == 200
    base = await approved_base(catalog, fuzhou)
    assert_problem(await verification.get("/v1/reports/2026/annual", headers=base.headers), 403, "staff-only")
