"""Routes of the verification service: stamping (staff), published documents and verification (public)."""

from __future__ import annotations

import html
import uuid
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from xueshi_shared.browser import page_policy
from xueshi_shared.problems import Gone, InvalidInput
from xueshi_shared.schemas import ProblemDocument
from xueshi_shared.timekeeping import now
from xueshi_shared.web import CurrentPrincipal, DbSession, OrjsonRoute, PublicClient, limit_client

from . import reports, schemas, service

router = APIRouter(route_class=OrjsonRoute)
BodyCode = Annotated[str, Path(pattern=r"^(35[0-9]{4}|A[0-9]{2})$")]
_problems = {409: {"model": ProblemDocument, "description": "Conflicts with the current state"}}


def _urls(request: Request) -> service.Urls:
    return request.app.state.urls


@router.post("/v1/proofs", status_code=201, response_model=schemas.ProofCreated, tags=["proofs"],
             responses=_problems, summary="Stamp (验印) a person's credited hours for a year and scope")
async def issue_proof(body: schemas.ProofIn, request: Request, principal: CurrentPrincipal, session: DbSession) -> dict:
    result = await service.issue_proof(session, principal, request.app.state.pii_keys, request.app.state.stamp_secret,
                                       _urls(request), id_number=body.id_number, year=body.year, scope=body.scope,
                                       field=body.field)
    request.state.audit_target = result.pop("audit")
    return result


@router.post("/v1/people/proofs", response_model=schemas.PeopleProofsOut, tags=["proofs"],
             summary="A person's proofs, by year and scope, with their standing (staff; the ID number in the body)")
async def people_proofs(body: schemas.PeopleProofsIn, request: Request, principal: CurrentPrincipal,
                        session: DbSession) -> dict:
    return {"proofs": await service.people_proofs(session, principal, request.app.state.pii_keys, _urls(request),
                                                  body.id_number, body.year)}


@router.get("/v1/proofs/awaiting-restamp", response_model=schemas.AwaitingOut, tags=["proofs"],
            summary="Proofs of the caller's body superseded because their records changed, not yet stamped again")
async def awaiting_restamp(request: Request, principal: CurrentPrincipal, session: DbSession,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
    return {"proofs": await service.awaiting_restamp(session, principal, _urls(request), limit)}


@router.get("/v1/proofs/{proof_id}", tags=["proofs"], summary="The signed credential (public)",
            response_class=Response, responses={200: {"content": {"application/vc+ld+json": {}}}})
async def get_proof(proof_id: uuid.UUID, session: DbSession, _: None = PublicClient) -> Response:
    proof = await service.published_proof(session, proof_id)
    return Response(orjson.dumps(proof.credential), media_type="application/vc+ld+json")


@router.get("/v1/proofs/{proof_id}/pdf", tags=["proofs"],
            summary="The signed PDF (public); 410 with the reason once the proof is revoked or superseded",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}},
                                                410: {"model": ProblemDocument,
                                                      "description": "Revoked or superseded"}})
async def get_pdf(proof_id: uuid.UUID, request: Request, session: DbSession, _: None = PublicClient) -> Response:
    proof = await service.refresh(session, await service.published_proof(session, proof_id))
    if proof.standing != "valid":
        # Not the signed file: a copy downloaded now would look valid offline. The reason, the date, the newer proof.
        at = (proof.revoked_at or proof.superseded_at).astimezone(service.BEIJING)
        if proof.standing == "revoked":
            raise Gone(f"this proof was revoked on {at:%Y-%m-%d %H:%M} (Beijing time): {proof.revocation_reason}",
                       rule="proof-revoked")
        newer = f"; the current proof is {_urls(request).pdf(proof.superseded_by)}" if proof.superseded_by else \
            "; the stamping body will stamp the person's hours again"
        raise Gone(f"this proof was superseded on {at:%Y-%m-%d %H:%M} (Beijing time): "
                   f"{proof.supersession_reason}{newer}", rule="proof-superseded")
    return Response(proof.pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="xueshi-{proof_id}.pdf"'})


@router.post("/v1/proofs/{proof_id}/revocation", response_model=schemas.RevocationOut, tags=["proofs"],
             responses=_problems, summary="Revoke a proof (staff of the stamping body), with a reason")
async def revoke_proof(proof_id: uuid.UUID, body: schemas.RevocationIn, request: Request,
                       principal: CurrentPrincipal, session: DbSession) -> dict:
    proof = await service.revoke_proof(session, principal, proof_id, body.reason)
    request.state.audit_target = {"proof": str(proof.id), "body": proof.body, "year": proof.year,
                                  "scope": proof.scope, "reason": body.reason}
    return {"proof_id": proof.id, "revoked": True, "reason": proof.revocation_reason}


@router.post("/v1/verifications", response_model=schemas.VerificationOut, tags=["verification"],
             summary="Verify a credential: proof, issuer key, status, validity, optionally the holder (public)")
async def verify(body: schemas.VerificationIn, request: Request, session: DbSession, _: None = PublicClient) -> dict:
    holder = None
    if body.id_number is not None:
        settings = request.app.state.settings
        limit_client(request, request.app.state.holder_limiter, "holder confirmations")
        holder = service.HolderQuestion(request.app.state.pii_keys.lookup_hash(body.id_number),
                                        request.client.host if request.client else None,
                                        getattr(request.state, "request_id", None),
                                        settings.holder_failures_per_proof_per_day)
    return await service.verify_credential(session, _urls(request), body.credential, holder, now())


@router.post("/v1/verifications/pdf", response_model=schemas.PdfVerificationOut, tags=["verification"],
             summary="Verify a proof PDF (the file as the body): signature, certification, nothing appended, the "
                     "embedded credential, the proof's standing (public)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
async def verify_pdf(request: Request, session: DbSession, _: None = PublicClient) -> dict:
    return await service.verify_pdf(session, _urls(request), request.app.state.stamp_secret, await request.body())


@router.post("/v1/verifications/batch", response_model=schemas.BulkVerificationOut, tags=["verification"],
             summary="Verify up to 1,000 credentials in one call (public)")
async def verify_many(body: schemas.BulkVerificationIn, request: Request, session: DbSession,
                      _: None = PublicClient) -> dict:
    moment = now()
    results = []
    for credential in body.credentials:
        try:
            results.append(await service.verify_credential(session, _urls(request), credential, None, moment))
        except InvalidInput as exc:  # one too complex to verify fails alone
            results.append({"verified": False, "revoked": False, "issuer": None, "credits": None,
                            "checks": [{"check": "proof", "ok": False, "detail": exc.detail}]})
    return {"results": results}


@router.get("/issuers/{body}/did.json", tags=["published"], summary="did:web document of a stamping body",
            response_class=Response, responses={200: {"content": {"application/did+json": {}}}})
async def did_document(body: BodyCode, request: Request, session: DbSession, _: None = PublicClient) -> Response:
    doc = await service.did_document(session, _urls(request), body)
    return Response(orjson.dumps(doc), media_type="application/did+json")


@router.get("/v1/status-lists/{body}/{list_no}", tags=["published"],
            summary="A signed BitstringStatusListCredential", response_class=Response,
            responses={200: {"content": {"application/vc+ld+json": {}}}})
async def status_list(body: BodyCode, list_no: Annotated[int, Path(ge=1, le=1_000_000)], request: Request,
                      session: DbSession, _: None = PublicClient) -> Response:
    doc = await service.status_list_document(session, request.app.state.stamp_secret, _urls(request), body, list_no)
    return Response(orjson.dumps(doc), media_type="application/vc+ld+json",
                    headers={"Cache-Control": "max-age=60"})


@router.get("/v1/trust/ca.pem", tags=["published"], summary="The CA certificate that certifies every stamp's PDF key",
            response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
async def ca_certificate(request: Request, session: DbSession, _: None = PublicClient) -> Response:
    return Response(await service.ca_pem(session, request.app.state.stamp_secret), media_type="application/x-pem-file")


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · 学时证明核验</title>
<style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;
background:#f4f5f7;color:#1d2129}}
main{{max-width:34rem;margin:0 auto;padding:1.2rem}}
.badge{{display:block;padding:1rem;border-radius:.6rem;font-size:1.3rem;font-weight:600;text-align:center;color:#fff}}
.valid{{background:#0a7f3f}} .revoked{{background:#b42318}} .unknown{{background:#6b7280}}
.en{{display:block;font-size:.85rem;font-weight:400;opacity:.9}}
dl{{background:#fff;border-radius:.6rem;padding:1rem;display:grid;grid-template-columns:auto 1fr;gap:.5rem 1rem}}
dt{{color:#6b7280}} dd{{margin:0;font-weight:500}}
table{{width:100%;background:#fff;border-radius:.6rem;border-collapse:collapse}}
td{{padding:.5rem 1rem;border-top:1px solid #eee}} td:last-child{{text-align:right;white-space:nowrap}}
p.note{{font-size:.8rem;color:#6b7280}}
</style></head>
<body><main>
<h1 style="font-size:1.2rem">专业技术人员继续教育学时证明核验</h1>
{content}
<p class="note">本页由发证机关的登记系统生成。电子证明（W3C 可验证凭证）与 PDF 签章可离线独立核验；
仅凭网址不能证明真伪，请以签名核验结果为准。<br>This page is served by the issuing registry.
The credential and the PDF signature can be verified offline with standard tools.</p>
</main></body></html>"""


# The page runs no script; its styles are inline.
_PAGE_POLICY = {"Content-Security-Policy": page_policy(style="'unsafe-inline'")}


@router.get("/verify/{proof_id}", response_class=HTMLResponse, tags=["verification"],
            summary="Public verification page (the QR code's target)")
async def verify_page(proof_id: str, request: Request, session: DbSession, _: None = PublicClient) -> HTMLResponse:
    proof = None
    try:
        proof = await session.get(service.Proof, uuid.UUID(proof_id))
    except ValueError:
        proof = None
    if proof is not None and service.has_hashed_identifier(proof.credential):
        content = ('<p class="badge unknown">已停止公开<span class="en">Withdrawn</span></p>'
                   "<p>该证明的格式可能泄露证件号码，已停止公开，请联系验印机关重新验印。</p>")
        return HTMLResponse(_PAGE.format(title="已停止公开", content=content), status_code=410, headers=_PAGE_POLICY)
    if proof is None:
        content = ('<p class="badge unknown">未找到该证明<span class="en">Unknown proof</span></p>'
                   "<p>系统中没有此编号的学时证明。请核对二维码或编号；伪造的“证书查询”网站可能冒用本页面样式。</p>")
        return HTMLResponse(_PAGE.format(title="未找到", content=content), status_code=404, headers=_PAGE_POLICY)
    proof = await service.refresh(session, proof)
    v = service.public_view(proof)
    e = html.escape
    if v["revoked"]:
        badge = ('<p class="badge revoked">已撤销<span class="en">Revoked</span></p>'
                 f"<p>撤销原因：{e(v['revocation_reason'] or '')}<br>撤销时间：{e(v['status_since'] or '')}</p>")
    elif v["superseded"]:
        newer = (f'<br>现行证明：<a href="{e(_urls(request).verify_page(v["superseded_by"]))}">{e(v["superseded_by"])}</a>'
                 if v["superseded_by"] else "<br>验印机关将重新验印该人员的学时。")
        badge = ('<p class="badge revoked">已失效（已被取代）<span class="en">Superseded</span></p>'
                 f"<p>失效时间：{e(v['status_since'] or '')}<br>原因："
                 f"{'已签发同一人员、年度和科目的新证明' if v['superseded_by'] else '所含学习记录已被更正'}{newer}</p>")
    else:
        badge = '<p class="badge valid">有效<span class="en">Valid</span></p>'
    rows = "".join(f"<tr><td>{e(name)}</td><td>{e(value)} 学时</td></tr>" for name, value in v["lines"])
    content = (f"{badge}<dl><dt>姓名</dt><dd>{e(v['name'])}</dd><dt>证件号码</dt><dd>{e(v['masked_id'])}</dd>"
               f"<dt>年度</dt><dd>{v['year']}</dd><dt>认定学时</dt><dd>{e(str(v['credits']))} 学时</dd>"
               f"<dt>验印机关</dt><dd>{e(v['issuer'])}</dd><dt>签发时间</dt><dd>{e(v['issued'])}</dd>"
               f"<dt>证明编号</dt><dd style=\"word-break:break-all\">{e(v['proof_id'])}</dd></dl>"
               f"<h2 style=\"font-size:1rem\">{e(v['title'])}</h2><table>{rows}</table>")
    return HTMLResponse(_PAGE.format(title=e(v["title"]), content=content), headers=_PAGE_POLICY)


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/v1/reports/{year}/annual", tags=["reports"], response_class=Response, responses={
    200: {"content": {_XLSX: {}, "application/pdf": {}},
          "description": "The report of the staff member's scope: XLSX sheets, or a PDF certified with the bureau's stamp"},
    403: {"model": ProblemDocument, "description": "Not staff"},
    409: {"model": ProblemDocument, "description": "The bureau has no stamp yet (PDF)"}},
    summary="The December report (各地区各行业主管部门继续教育开展情况) of the staff member's own scope")
async def annual_report(year: Annotated[int, Path(ge=2000, le=2100)], request: Request, principal: CurrentPrincipal,
                        session: DbSession, format: Annotated[Literal["xlsx", "pdf"], Query()] = "xlsx") -> Response:
    report = await reports.annual(session, principal, year, now())
    request.state.audit_target = {"report": f"{year}/annual", "scope": report.scope_key, "format": format}
    if format == "pdf":
        data, media = await reports.pdf(session, request.app.state.stamp_secret, report), "application/pdf"
    else:
        data, media = reports.xlsx(report), _XLSX
    return Response(data, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="xueshi-annual-{year}.{format}"', "Cache-Control": "no-store"})
