"""The staff console (/console/) in headless Chromium (Debian's package, driven by Playwright with the system
browser): signing in, the charts drawn, the numbers the API's, the cookie and CSRF rules, a phone's width, and the
screenshots kept under docs/ (written there when XUESHI_UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from hours_ledger.app import create_app as create_ledger
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam import service as iam

from tests.support.factories import (
    approved_base,
    approved_course,
    base_form,
    make_staff,
    online_sitting,
    record_body,
    ric,
    uscc,
)
from tests.support.servers import serving
from tests.support.tools import debian_tool

DOCS = Path(__file__).resolve().parents[2] / "docs"


async def _studied(ledger, catalog, admin):
    base = await approved_base(catalog, admin, base_form(level="provincial", region="350000", scope_region="350000"))
    units = [("福州市第一医院", uscc(4242), "350102"), ("闽侯县医院", uscc(4244), "350121"),
             ("厦门市第一医院", uscc(4247), "350203")]
    for n, (topic, hours) in enumerate((("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7))):
        course = await approved_course(catalog, base, admin, topic=topic, hours=hours)
        for i in range(6 - n):
            day = f"2026-{5 + n:02d}-{4 + i:02d}"
            body = record_body(course, ric(900 + i), [online_sitting(f"{day}T08:00:00+08:00", f"{day}T14:00:00+08:00",
                                                                     passed=0 if i == 5 else 2)],
                               unit=dict(zip(("name", "uscc", "region"), units[i % 3], strict=True)))
            response = await ledger.post("/v1/records", json=body, headers=base.headers)
            assert response.status_code == 201, response.text


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    chromium = debian_tool("chromium", "chromium")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            await launched.close()


def _keep(page_png: bytes, name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(page_png)
    if os.environ.get("XUESHI_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        (DOCS / name).write_bytes(page_png)


async def test_staff_sign_in_and_see_the_year_with_charts_and_the_apis_numbers(
        settings, ledger, catalog, admin, engine, browser, tmp_path):
    await _studied(ledger, catalog, admin)
    fuzhou = await make_staff(engine, "city_admin", region="350100", name="福州市人社局 林工")
    api = (await ledger.get("/v1/statistics/2026?group_by=region", headers=fuzhou.headers)).json()
    async with serving(create_ledger(settings)) as url:
        context = await browser.new_context(viewport={"width": 1100, "height": 900}, locale="zh-CN")
        page = await context.new_page()
        await page.goto(f"{url}/console/")
        assert await page.locator("h2").first.inner_text() == "工作人员登录"
        _keep(await page.screenshot(full_page=True), "console-sign-in.png", tmp_path)
        await page.fill("input[name=token]", "xs_not-a-token")
        await page.click("button[type=submit]")
        assert "令牌无效" in await page.locator(".error").inner_text()
        await page.fill("input[name=token]", fuzhou.token)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{url}/console/2026")
        await page.wait_for_selector("figure svg rect")
        # The charts are drawn: the funnel's bars, the trend's line.
        assert await page.locator("figure[data-chart=bars] svg rect").count() == 4
        assert await page.locator("figure[data-chart=line] svg polyline").count() == 1
        points = await page.locator("figure[data-chart=line] svg polyline").get_attribute("points")
        assert points and len(points.split()) >= 2
        # The numbers are the API's.
        for measure in ("people", "people_public_met", "people_yearly_met", "credited_hours"):
            shown = await page.locator(f"[data-measure={measure}]").inner_text()
            assert int(shown.replace(",", "")) == api["total"][measure], measure
        rows = await page.locator("#regions tbody tr").all_inner_texts()
        assert len(rows) == len(api["groups"]) and all("350" in r for r in rows)
        assert "鼓楼区" in rows[0] and str(api["groups"][0]["people"]) in rows[0]
        assert await page.locator("#quality tbody tr").count() == 1
        _keep(await page.screenshot(full_page=True), "console-overview.png", tmp_path)

        cookies = {c["name"]: c for c in await context.cookies()}
        session = cookies["xs_console"]
        assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
        assert fuzhou.token not in session["value"]
        # A download with the session.
        async with page.expect_download() as info:
            await page.click("a[href$='group_by=region&format=csv']")
        download = await info.value
        text = Path(await download.path()).read_text(encoding="utf-8-sig")
        assert text.splitlines()[1].split(",")[2] == str(api["total"]["people"])

        # On a phone: nothing wider than the screen but the tables, which scroll in their own box.
        phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                          storage_state=await context.storage_state())
        mobile = await phone.new_page()
        await mobile.goto(f"{url}/console/2026")
        await mobile.wait_for_selector("figure svg rect")
        assert await mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        _keep(await mobile.screenshot(full_page=True), "console-phone.png", tmp_path)

        # A revoked token ends its sessions at once.
        async with AsyncSession(engine) as s, s.begin():
            await iam.revoke_staff(s, fuzhou.id, "离职")
        await page.goto(f"{url}/console/2026")
        assert await page.locator("input[name=token]").count() == 1
        await phone.close()
        await context.close()


async def test_the_forms_refuse_other_origins_and_missing_csrf_tokens(settings, engine):
    staff = await make_staff(engine, "auditor")
    async with serving(create_ledger(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        page = await client.get("/console/")
        csrf = page.cookies["xs_csrf"]
        assert f'name="csrf" value="{csrf}"' in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "form-action 'self'" in policy
        no_field = await client.post("/console/sign-in", data={"token": staff.token})
        assert no_field.status_code == 403 and "xs_console" not in no_field.cookies
        elsewhere = await client.post("/console/sign-in", data={"token": staff.token, "csrf": csrf},
                                      headers={"Origin": "https://evil.example"})
        assert elsewhere.status_code == 403 and "xs_console" not in elsewhere.cookies
        wrong = await client.post("/console/sign-in", data={"token": "xs_guess", "csrf": csrf})
        assert wrong.status_code == 401 and "xs_console" not in wrong.cookies
        async with engine.connect() as conn:
            outcomes = (await conn.execute(sa.text("SELECT outcome FROM iam.audit_events"))).scalars().all()
        assert "authentication-failed: console sign-in" in outcomes and "xs_guess" not in str(outcomes)
        signed = await client.post("/console/sign-in", data={"token": staff.token, "csrf": csrf})
        assert signed.status_code == 303 and "xs_console" in signed.cookies
        assert "HttpOnly" in signed.headers["set-cookie"] and "SameSite=strict" in signed.headers["set-cookie"]
        assert (await client.get("/console/2026")).status_code == 200
        # A session cookie changed by one character is no session.
        forged = signed.cookies["xs_console"][:-1] + ("0" if signed.cookies["xs_console"][-1] != "0" else "1")
        client.cookies.set("xs_console", forged, path="/console")
        assert (await client.get("/console/2026")).status_code == 303
        # Without a session, pages and downloads send to the sign-in page.
        async with httpx.AsyncClient(base_url=url) as stranger:
            assert (await stranger.get("/console/2026/export?group_by=region")).status_code == 303
