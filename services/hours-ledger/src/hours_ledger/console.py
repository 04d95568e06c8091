"""Pages for HR staff under /console/: sign in with the staff token, the year's overview (the funnel, the weekly
trend towards the deadline, the table by region and by field, the bases' quality) and downloads.

Server-rendered HTML, Chinese first, usable on a phone; no front-end build step. The charts are drawn by a small
script the service serves itself (console_assets/charts.js) from the numbers in the page; the page's policy allows
only the service's own script and style (no inline script, no other origin).

Sessions: signing in exchanges the staff token for a cookie `xs_console` holding the token's digest and an expiry,
encrypted and authenticated (AES-GCM, a key derived from the deployment's master secret), `HttpOnly`,
`SameSite=Strict`, `Path=/console`, `Secure` over HTTPS, 8 hours. The staff member is looked up again on every
page, so a revoked token ends its sessions at once. The two forms (sign in, sign out) are protected against CSRF by
a double-submitted token (a `SameSite=Strict` cookie `xs_csrf` and the form's hidden field must match) and by the
`Origin` header, which must be this service's when the browser names one.
"""

from __future__ import annotations

import hmac
import html
import importlib.resources
import os
import secrets
import struct
import time
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from xueshi_shared.browser import page_policy
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import authenticate_digest
from xueshi_shared.iam.tokens import digest
from xueshi_shared.problems import NotFound, Problem
from xueshi_shared.timekeeping import now
from xueshi_shared.web import DbSession, audit_in_own_transaction, limit_client

from . import statistics
from .domain.statistics import BEIJING, QUALITY_RULES

router = APIRouter(include_in_schema=False)

SESSION_COOKIE, CSRF_COOKIE = "xs_console", "xs_csrf"
SESSION_SECONDS = 8 * 3600
POLICY = page_policy(script="'self'", style="'self'", form="'self'", extra="; font-src 'self'")
ASSETS = {"charts.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8",
          "body-font.ttf": "font/ttf"}
RULE_NAMES = {"parallel-study": "并行学习", "identity-unverified": "未核验身份", "identity-failed": "身份核验失败",
              "daily-limit": "超每日上限", "media-shortfall": "播放不足", "course-already-credited": "重复学习"}


# ---- sessions -----------------------------------------------------------------------------------------

def seal(key: bytes, token_digest: bytes, expires: int) -> str:
    nonce = os.urandom(12)
    blob = nonce + AESGCM(key).encrypt(nonce, struct.pack(">Q", expires) + token_digest, b"xueshi console")
    return blob.hex()


def unseal(key: bytes, cookie: str | None, at: float) -> bytes | None:
    """The token digest a session cookie holds, or None (absent, forged, changed or expired)."""
    if not cookie:
        return None
    try:
        blob = bytes.fromhex(cookie)
        plain = AESGCM(key).decrypt(blob[:12], blob[12:], b"xueshi console")
    except (ValueError, InvalidTag):
        return None
    (expires,) = struct.unpack(">Q", plain[:8])
    return plain[8:] if expires > at else None


async def _principal(request: Request, session: Any) -> Principal | None:
    token_digest = unseal(request.app.state.console_key, request.cookies.get(SESSION_COOKIE), time.time())
    if token_digest is None:
        return None
    principal = await authenticate_digest(session, token_digest)
    return principal if principal is not None and principal.is_staff else None


def _csrf_ok(request: Request, field: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    origin = request.headers.get("origin")
    # Under `Referrer-Policy: no-referrer` (every answer's) browsers send `Origin: null` with a form: then the token
    # alone decides (its cookie is SameSite=Strict, so another site's page never has it sent along).
    if origin is not None and origin != "null" and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    return bool(cookie) and hmac.compare_digest(cookie, field)


def _page(title: str, body: str, status: int = 200, principal: Principal | None = None, csrf: str | None = None,
          ) -> HTMLResponse:
    signed = ""
    if principal is not None and csrf is not None:
        signed = (f'<form method="post" action="/console/sign-out"><span>{html.escape(principal.name)}</span> '
                  f'<input type="hidden" name="csrf" value="{csrf}"><button type="submit">退出</button></form>')
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · 学时登记</title><link rel="stylesheet" href="/console/assets/console.css"></head>
<body><header><h1>福建省专业技术人员继续教育学时登记 · {html.escape(title)}</h1>{signed}</header>
<main>{body}</main><script src="/console/assets/charts.js" defer></script></body></html>"""
    response = HTMLResponse(page, status_code=status, headers={"Content-Security-Policy": POLICY,
                                                               "Cache-Control": "no-store"})
    return response


def _with_csrf(request: Request, build: Any) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    response: HTMLResponse = build(token)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https")
    return response


def _sign_in_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    def build(csrf: str) -> HTMLResponse:
        problem = f'<p class="error">{html.escape(error)}</p>' if error else ""
        return _page("登录", f"""<section><h2>工作人员登录</h2>{problem}
<form method="post" action="/console/sign-in"><label>工作人员令牌（staff token）
<input type="password" name="token" autocomplete="off" required></label>
<input type="hidden" name="csrf" value="{csrf}"><button type="submit">登录</button></form>
<p class="meta">令牌由省人社厅签发（xueshi staff create）。登录后在本浏览器保持 8 小时。</p></section>""", status)
    return _with_csrf(request, build)


# ---- routes ---------------------------------------------------------------------------------------------

@router.get("/console/assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("no such console asset", rule="not-found")
    # The font is the proofs' (WenQuanYi Micro Hei cut to GBK, Apache-2.0; verification/assets), so that pages
    # read the same on a machine without Chinese fonts.
    folder = (importlib.resources.files("verification") / "assets" if name == "body-font.ttf"
              else importlib.resources.files(__package__) / "console_assets")
    data = (folder / name).read_bytes()
    return Response(data, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=3600"})


@router.get("/console/")
async def home(request: Request, session: DbSession) -> Response:
    if await _principal(request, session) is None:
        return _sign_in_page(request)
    return RedirectResponse(f"/console/{now().year}", status_code=303)


@router.post("/console/sign-in")
async def sign_in(request: Request, session: DbSession, token: Annotated[str, Form(max_length=200)] = "",
                  csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not _csrf_ok(request, csrf):
        return _sign_in_page(request, "页面已过期，请重新登录（CSRF 校验未通过）。", 403)
    token_digest = digest(token.strip())
    principal = await authenticate_digest(session, token_digest)
    if principal is None or not principal.is_staff:
        # As a refused API token: audited, and a client failing too often gets 429 (web.refuse_token).
        limit_client(request, request.app.state.auth_failure_limiter, "failed sign-ins")
        await audit_in_own_transaction(request, None, "authentication-failed: console sign-in", 401)
        return _sign_in_page(request, "令牌无效、已吊销，或不是工作人员令牌。", 401)
    await audit_in_own_transaction(request, principal, "succeeded: console sign-in", 303)
    response = RedirectResponse(f"/console/{now().year}", status_code=303)
    response.set_cookie(SESSION_COOKIE, seal(request.app.state.console_key, token_digest,
                                             int(time.time()) + SESSION_SECONDS),
                        max_age=SESSION_SECONDS, httponly=True, samesite="strict", path="/console",
                        secure=request.url.scheme == "https")
    return response


@router.post("/console/sign-out")
async def sign_out(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not _csrf_ok(request, csrf):
        return _page("退出", "<section><p class='error'>CSRF 校验未通过。</p></section>", 403)
    response = RedirectResponse("/console/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _number(n: int) -> str:
    return f"{n:,}"


def _table(heads: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_number(c) if isinstance(c, int) else str(c))}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _chart(kind: str, label: str, series: list[dict[str, Any]]) -> str:
    data = html.escape(orjson.dumps(series).decode(), quote=True)
    return f'<figure data-chart="{kind}" aria-label="{html.escape(label)}" data-series="{data}"></figure>'


@router.get("/console/{year}")
async def overview(request: Request, session: DbSession, year: Annotated[int, Path(ge=2000, le=2100)]) -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return RedirectResponse("/console/", status_code=303)
    data = await overview_data(request.app.state.engine, principal, year)
    total, scope = data["total"], data["scope"]
    funnel = [{"label": "有学时记录", "value": total["people"]}, {"label": "获得学时", "value": total["people_credited"]},
              {"label": "公需科目达标", "value": total["people_public_met"]},
              {"label": "年度学时达标", "value": total["people_yearly_met"]}]
    running, trend = 0, []
    for g in data["weeks"]:
        running += g["credited_hours"]
        trend.append({"label": g["name"][5:], "value": running})
    region_rows = [(f"{g['name'] or g['key']}（{g['key']}）", g["people"], g["people_public_met"],
                    g["people_yearly_met"], g["public_hours"], g["professional_hours"]) for g in data["regions"]]
    field_rows = [(f"{g['name'] or g['key']}（{g['key']}）", g["people"], g["people_yearly_met"],
                   g["professional_hours"]) for g in data["fields"]]
    quality_rows = [(b["name"] or b["base_id"], b["reported_minutes"],
                     *(f"{b['rules'][r]['share']:.1%}（{b['rules'][r]['province_median'] or 0:.1%}）"
                       for r in QUALITY_RULES))
                    for b in data["quality"]["bases"]]
    q = f"/console/{year}/export"
    downloads = " ".join(
        f'<a class="button" href="{q}?group_by={g}&amp;format={f}">{label} {f.upper()}</a>'
        for g, label in (("region", "分地区"), ("field", "分领域"), ("base", "分基地"), ("week", "分周"))
        for f in ("xlsx", "csv"))
    downloads += f' <a class="button" href="{q}?group_by=quality&amp;format=xlsx">基地质量 XLSX</a>'
    scope_label = {"province": "全省", "city": "本市", "authority": "本行业"}.get(scope.kind, scope.kind)
    as_of = data["as_of"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if data["as_of"] else "尚无"
    cards = "".join(f'<div class="card">{html.escape(d["label"])}<b data-measure="{k}">{_number(total[k])}</b></div>'
                    for d, k in zip(funnel, ("people", "people_credited", "people_public_met", "people_yearly_met"),
                                    strict=True))
    cards += f'<div class="card">认定学时<b data-measure="credited_hours">{_number(total["credited_hours"])}</b></div>'
    body = f"""
<p class="meta">{year} 年度 · 范围：{scope_label}{html.escape(scope.code or "")} · 数据截至 {as_of}（北京时间）
· 公需科目要求 {data["required_hours"] or "—"} 学时，年度 90 学时（专业科目不少于三分之二）</p>
<section><h2>学习进度（漏斗）</h2><div class="cards">{cards}</div>
{_chart("bars", "学习进度漏斗", funnel)}</section>
<section><h2>每周累计认定学时（距截止日期）</h2>{_chart("line", "每周累计认定学时", trend)}</section>
<section id="regions"><h2>分地区</h2>
{_table(("地区", "人数", "公需达标", "年度达标", "公需学时", "专业学时"), region_rows)}</section>
<section id="fields"><h2>分专业领域</h2>{_table(("领域", "人数", "年度达标", "专业学时"), field_rows)}</section>
<section id="quality"><h2>基地质量（被扣分钟占申报分钟；括号内为全省中位数）</h2>
{_table(("基地", "申报分钟", *(RULE_NAMES[r] for r in QUALITY_RULES)), quality_rows)}</section>
<section><h2>下载</h2>{downloads}
<p class="meta">年度报告（XLSX、加盖电子签章的 PDF）：验印服务 GET /v1/reports/{year}/annual。</p></section>"""
    return _with_csrf(request, lambda csrf: _page(f"{year} 年度统计", body, principal=principal, csrf=csrf))


async def overview_data(engine: Any, principal: Principal, year: int) -> dict[str, Any]:
    """The overview's numbers: the API's (statistics.py), for the staff member's own scope."""
    await statistics.catch_up(engine)
    async with engine.connect() as c:
        conn = await statistics.raw(c)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            labels = await statistics.names(conn, year)
            scope = statistics.scope_of(principal, {}, labels.owners, {*labels.topics, "other"})
            weeks = await statistics.read(conn, year, scope, "week", labels)
            regions = await statistics.read(conn, year, scope, statistics.dimension("region", None, scope), labels)
            fields = await statistics.read(conn, year, scope, "field", labels)
            bases = await statistics.read(conn, year, scope, "base", labels)
            province = bases if scope.key == "" else await statistics.read(
                conn, year, statistics.Scope("", "province", None), "base", labels)
            as_of = await statistics.folded_through(conn)
    return {"scope": scope, "total": weeks["total"], "weeks": weeks["groups"], "regions": regions["groups"],
            "fields": fields["groups"], "quality": statistics.quality(bases["groups"], province["groups"]),
            "as_of": as_of, "required_hours": labels.required_hours}


@router.get("/console/{year}/export")
async def export(request: Request, session: DbSession, year: Annotated[int, Path(ge=2000, le=2100)],
                 group_by: Annotated[str, Query(pattern="^(region|field|base|week|topic|unit|authority|quality)$")],
                 format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "xlsx") -> Response:
    principal = await _principal(request, session)
    if principal is None:
        return RedirectResponse("/console/", status_code=303)
    from .statistics_api import export_base_quality, export_statistics

    try:
        if group_by == "quality":
            sheet: Response = await export_base_quality(request.app.state.engine, principal, year, format)
        else:
            sheet = await export_statistics(request.app.state.engine, principal, year, group_by, format)
        return sheet
    except Problem as exc:
        return _page("下载", f"<section><p class='error'>{html.escape(exc.detail or '')}</p></section>", exc.status)
