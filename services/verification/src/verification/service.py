"""Stamping proofs, revoking them, verifying credentials. Load, decide, persist; never commits."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
import uuid
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import orjson
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from sqlalchemy.ext.asyncio import AsyncSession
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.service import record_audit
from xueshi_shared.pii import PiiKeys
from xueshi_shared.problems import Conflict, Forbidden, Gone, InvalidInput, NotFound, TooManyRequests
from xueshi_shared.regions import PROVINCE

from . import checking, jsonld
from .domain import integrity
from .domain.credential import (
    Evidence,
    Line,
    ProofFacts,
    build_credential,
    has_hashed_identifier,
    public_mask,
    rule_label,
    status_list_credential,
)
from .domain.encoding import (
    MIN_STATUS_BITS,
    encode_multikey,
    encode_status_list,
    set_status_bit,
    status_bit,
)
from .keys import HR_AUTHORITY, body_for_authority, body_names, current_stamp, ensure_ca, load_stamp, signing_stamp
from .models import HolderCheck, Proof, Stamp, StatusList, Sweep
from .pdf import PdfLine, PdfProof, PdfRecord, render_and_sign

__all__ = ["Urls", "issue_proof", "revoke_proof", "verify_credential"]


def _xsd(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Urls:
    """Where the public reaches this service; fixes the did:web identifiers and every published URL."""

    base: str

    @property
    def did_prefix(self) -> str:
        parts = urlsplit(self.base)
        host = quote(parts.netloc, safe="")
        path = [p for p in parts.path.split("/") if p]
        return ":".join(["did:web", host, *path])

    def did(self, body: str) -> str:
        return f"{self.did_prefix}:issuers:{body}"

    def did_document_url(self, body: str) -> str:
        return f"{self.base}/issuers/{body}/did.json"

    def status_list(self, body: str, list_no: int) -> str:
        return f"{self.base}/v1/status-lists/{body}/{list_no}"

    def proof(self, proof_id: uuid.UUID | str) -> str:
        return f"{self.base}/v1/proofs/{proof_id}"

    def pdf(self, proof_id: uuid.UUID | str) -> str:
        return f"{self.base}/v1/proofs/{proof_id}/pdf"

    def verify_page(self, proof_id: uuid.UUID | str) -> str:
        return f"{self.base}/verify/{proof_id}"

    def body_of(self, did: str) -> str | None:
        prefix = f"{self.did_prefix}:issuers:"
        return did[len(prefix):] if did.startswith(prefix) and ":" not in did[len(prefix):] else None


# ---- canonicalization, off the event loop ---------------------------------------------------------

# Signing this registry's own documents (bounded: jsonld.Limits) runs in threads, at most this many at once per
# process. Credentials that anyone sends are checked in worker processes (checking.py).
CANONICAL_WORKERS = 2
_workers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def off_loop(fn: Any, *args: Any) -> Any:
    gate = _workers.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(CANONICAL_WORKERS))
    async with gate:
        return await asyncio.to_thread(fn, *args)


# ---- stamping -----------------------------------------------------------------------------------

async def _stamping_body(db: AsyncSession, principal: Principal, scope: str, field: str | None,
                         regions: list[str]) -> tuple[str, str | None]:
    """The body whose stamp the caller applies, or 403. Returns (body, field authority)."""
    principal.require_staff("province_admin", "city_admin", "authority_reviewer")
    actor = Actor(principal.role, principal.region, principal.authority)
    if scope == "public":
        if principal.role == "province_admin":
            return PROVINCE, None
        if principal.role == "city_admin" and any(governs_public_scope(actor, r) for r in regions):
            return str(principal.region), None
        raise Forbidden("public-subject proofs are stamped by the HR bureau of the person's unit, or the province",
                        rule="out-of-scope")
    stamped_by = await db.scalar(sa.text("SELECT stamped_by FROM catalog.published_fields WHERE code = :c"),
                                 {"c": field})
    if stamped_by is None:
        raise InvalidInput(f"unknown field {field!r}", rule="field-unknown", field="field")
    if not governs_field(actor, stamped_by, HR_AUTHORITY):
        raise Forbidden(f"field {field} is stamped by authority {stamped_by}", rule="out-of-scope")
    return body_for_authority(stamped_by), stamped_by


async def _allocate_status(db: AsyncSession, body: str) -> tuple[int, int]:
    row = await db.scalar(sa.select(StatusList).where(StatusList.body == body)
                          .order_by(StatusList.list_no.desc()).limit(1).with_for_update())
    if row is None or row.next_index >= MIN_STATUS_BITS:
        list_no = 1 if row is None else row.list_no + 1
        row = StatusList(body=body, list_no=list_no, bits=bytes(MIN_STATUS_BITS // 8), next_index=0)
        db.add(row)
        await db.flush()
        row = await db.scalar(sa.select(StatusList).where(StatusList.body == body, StatusList.list_no == list_no)
                              .with_for_update())
    # A random slot, not the next one: the index must not reveal how many proofs a body issued.
    taken = set((await db.scalars(sa.select(Proof.status_index).where(
        Proof.body == body, Proof.status_list_no == row.list_no))).all())
    while True:
        index = secrets.randbelow(MIN_STATUS_BITS)
        if index not in taken:
            break
    row.next_index += 1
    return row.list_no, index


# A public course of a topic outside the plan's (the ledger's rules.OTHER_TOPIC).
OTHER_TOPIC = "other"


async def issue_proof(db: AsyncSession, principal: Principal, keys: PiiKeys, secret: bytes, urls: Urls, *,
                      id_number: str, year: int, scope: str, field: str | None) -> dict[str, Any]:
    if scope == "professional" and not field:
        raise InvalidInput("a professional proof names its field", rule="required", field="field")
    if scope == "public" and field:
        raise InvalidInput("a public-subject proof names no field", rule="field-not-allowed", field="field")
    person_hash = keys.lookup_hash(id_number)
    query = sa.text("""
        SELECT r.id, r.id_masked, r.person_name, r.topic, r.field, r.credited_hours, r.unit_region,
               r.first_sitting, r.last_sitting, r.adjustments, c.title AS course_title, b.unit_name AS base_name
        FROM hours_ledger.published_records r
        LEFT JOIN catalog.published_courses c ON c.id = r.course_id
        LEFT JOIN catalog.published_bases b ON b.id = r.base_id
        WHERE r.person_hash = :h AND r.year = :y AND r.category = :cat AND NOT r.reversed
          AND (CAST(:f AS text) IS NULL OR r.field = CAST(:f AS text))
        ORDER BY r.first_sitting""")
    records = (await db.execute(query, {"h": person_hash, "y": year, "cat": scope,
                                        "f": field if scope == "professional" else None})).all()
    body, _ = await _stamping_body(db, principal, scope, field, [r.unit_region for r in records])
    credited = sum(r.credited_hours for r in records)
    if not records or credited == 0:
        raise InvalidInput("the ledger holds no credited 学时 for this person, year and scope", rule="nothing-to-stamp",
                           field="id_number")

    stamp, ca_cert = await signing_stamp(db, body, secret)

    if scope == "public":
        topics = (await db.execute(sa.text(
            "SELECT code, title, hours FROM catalog.published_topics WHERE year = :y ORDER BY code"),
            {"y": year})).all()
        plan_hours = await db.scalar(sa.text("SELECT required_hours FROM catalog.published_plans WHERE year = :y"),
                                     {"y": year})
        per_topic: dict[str, int] = {}
        for r in records:
            per_topic[r.topic] = per_topic.get(r.topic, 0) + r.credited_hours
        lines = tuple(Line(t.code, t.title, per_topic.get(t.code, 0), t.hours) for t in topics)
        if per_topic.get(OTHER_TOPIC):  # other topics (after the plan's 学时), listed apart and without allotment
            lines += (Line(OTHER_TOPIC, "其它主题", per_topic[OTHER_TOPIC]),)
        available = int(plan_hours or credited)
        title = f"{year}年度专业技术人员继续教育公需科目学时证明"
        scope_label = "公需科目"
    else:
        field_name = await db.scalar(sa.text("SELECT name FROM catalog.published_fields WHERE code = :c"),
                                     {"c": field})
        lines = (Line(str(field), str(field_name), credited),)
        available = credited
        title = f"{year}年度专业技术人员继续教育专业科目（{field_name}）学时证明"
        scope_label = f"专业科目：{field_name}"

    proof_id = uuid.uuid4()
    # One stamping of a person, year and scope at a time: the newer proof supersedes every older one.
    await db.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 16))"),
                     {"k": f"proof:{person_hash.hex()}:{year}:{scope}:{field or ''}"})
    list_no, index = await _allocate_status(db, body)
    now = dt.datetime.now(dt.UTC)
    person_name, masked = records[0].person_name, public_mask(records[0].id_masked)
    evidence = tuple(Evidence(str(r.id), r.course_title or "", r.credited_hours, r.base_name or "",
                              f"{r.first_sitting.astimezone(BEIJING):%Y-%m-%d}",
                              None if r.credited_hours else _cut_by(r.adjustments))
                     for r in records)
    facts = ProofFacts(
        proof_url=urls.proof(proof_id), issuer_did=urls.did(body), issuer_name=stamp.name, year=year, scope=scope,
        field=field, title=title, name=person_name, masked_id=masked,
        credited_hours=credited, available_hours=available, lines=lines, evidence=evidence, issued_at=_xsd(now),
        status_list_url=urls.status_list(body, list_no), status_index=index)
    credential = build_credential(facts)
    # Refuse to sign anything whose JSON-LD expansion would drop a term: unsigned data could be forged.
    jsonld.check_fully_defined(credential)
    signed = await off_loop(integrity.sign, credential, stamp.signing,
                                     f"{urls.did(body)}#key-{stamp.version}", _xsd(now), jsonld.canonicalize)
    pdf = await asyncio.to_thread(render_and_sign, PdfProof(
        proof_id=str(proof_id), issuer_name=stamp.name, name=person_name, masked_id=masked, year=year,
        scope_label=scope_label, credited_hours=credited,
        lines=tuple(PdfLine(f"{ln.code}. {ln.name}" if scope == "public" and ln.code != OTHER_TOPIC else ln.name,
                            ln.hours, ln.allotment)
                    for ln in lines),
        records=tuple(PdfRecord(e.course, e.base, e.period, e.hours, e.rule) for e in evidence),
        issued_on=f"{now.astimezone(BEIJING):%Y年%m月%d日}",
        verify_url=urls.verify_page(proof_id), title=title),
        orjson.dumps(signed, option=orjson.OPT_INDENT_2), stamp, ca_cert)
    older = (await db.scalars(sa.select(Proof).where(
        Proof.person_hash == person_hash, Proof.year == year, Proof.scope == scope,
        Proof.field.is_(None) if field is None else Proof.field == field,
        Proof.revoked_at.is_(None), Proof.superseded_at.is_(None)).with_for_update())).all()
    db.add(Proof(id=proof_id, body=body, stamp_version=stamp.version, person_hash=person_hash, year=year,
                 scope=scope, field=field, credited_hours=credited, record_ids=[str(r.id) for r in records],
                 credential=signed, pdf=pdf, status_list_no=list_no, status_index=index, created_by=principal.id))
    await db.flush()
    for old in older:
        await supersede(db, old, now, "a newer proof of the same person, year and scope was stamped", proof_id)
    return {"proof_id": proof_id, "credential": signed, "pdf_url": urls.pdf(proof_id),
            "verify_url": urls.verify_page(proof_id), "supersedes": [o.id for o in older],
            "audit": {"proof": str(proof_id), "person": masked, "year": year, "scope": scope, "field": field,
                      "body": body, "credited_hours": credited, "supersedes": [str(o.id) for o in older]}}


BEIJING = dt.timezone(dt.timedelta(hours=8))


def _cut_by(adjustments: Any) -> str:
    """The label of the rules that cut a record to nothing, the largest cut first."""
    cuts = [a for a in adjustments or [] if isinstance(a, dict)]
    decisive = [a for a in cuts if int(a.get("hours") or 0) > 0] or cuts  # the rules that took whole 学时
    decisive.sort(key=lambda a: (-int(a.get("hours") or 0), -int(a.get("minutes") or 0)))
    return rule_label([str(a.get("rule")) for a in decisive])


# ---- superseded proofs ----------------------------------------------------------------------------

async def _set_status_bit(db: AsyncSession, proof: Proof) -> None:
    status = await db.scalar(sa.select(StatusList).where(
        StatusList.body == proof.body, StatusList.list_no == proof.status_list_no).with_for_update())
    assert status is not None
    bits = bytearray(status.bits)
    set_status_bit(bits, proof.status_index)
    status.bits, status.updated_at = bytes(bits), sa.func.now()


async def supersede(db: AsyncSession, proof: Proof, at: dt.datetime, reason: str,
                    by: uuid.UUID | None = None) -> None:
    """The proof no longer stands: its status bit is set (the one list every verifier reads), and the registry
    keeps when, why and, for a newer proof, which one. A revoked or already superseded proof is left as it is."""
    if proof.revoked_at is not None or proof.superseded_at is not None:
        return
    await _set_status_bit(db, proof)
    proof.superseded_at, proof.superseded_by, proof.supersession_reason = at, by, reason
    await record_audit(db, service="verification", action="supersede proof", outcome="superseded", status=200,
                       principal=None, target={"proof": str(proof.id), "year": proof.year, "scope": proof.scope,
                                               "body": proof.body, "superseded_by": str(by) if by else None,
                                               "reason": reason})
    await db.flush()


_PROOF_RECORDS_NOW = sa.text("""
    SELECT count(*) FILTER (WHERE r.reversed) AS n, min(r.reversed_at) AS at,
           string_agg(coalesce(r.reversal_reason, ''), '；') FILTER (WHERE r.reversed) AS why,
           min(r.person_name) AS name
    FROM hours_ledger.published_records r
    WHERE r.person_hash = :h AND r.year = :y AND r.id = ANY(CAST(:ids AS uuid[]))""")


def _stamped_name(proof: Proof) -> str | None:
    subject = proof.credential.get("credentialSubject", {})
    return next((i.get("identityHash") for i in subject.get("identifier", []) if i.get("identityType") == "name"),
                None)


async def refresh(db: AsyncSession, proof: Proof) -> Proof:
    """The proof's standing now: superseded at once if one of its records has been reversed, or the person's name
    corrected, since it was stamped (the sweep does the same for every proof, so the status list follows within
    `supersede_seconds`)."""
    if proof.revoked_at is None and proof.superseded_at is None:
        row = (await db.execute(_PROOF_RECORDS_NOW, {"h": proof.person_hash, "y": proof.year,
                                                     "ids": list(proof.record_ids)})).one()
        renamed = row.name is not None and row.name != _stamped_name(proof)
        if row.n or renamed:
            proof = await db.scalar(sa.select(Proof).where(Proof.id == proof.id).with_for_update()) or proof
            if row.n:
                await supersede(db, proof, row.at, f"{row.n} of its records were reversed: {row.why}".rstrip(": "))
            else:
                await supersede(db, proof, dt.datetime.now(dt.UTC), "the person's registered name was corrected")
    return proof


# Reversals are read again this far back on each sweep: a transaction that reversed a record stamps it with its
# start time, and may commit later than a sweep that already read past that time.
SWEEP_OVERLAP = dt.timedelta(minutes=10)


async def sweep_reversals(db: AsyncSession) -> int:
    """Supersede every proof that covers a record reversed, or names a person renamed, since the last sweep.
    Returns how many."""
    mark = await db.get(Sweep, 1, with_for_update=True)
    if mark is None:
        db.add(mark := Sweep(id=1, swept_to=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
        await db.flush()
        mark = await db.get(Sweep, 1, with_for_update=True)
    assert mark is not None
    now = dt.datetime.now(dt.UTC)
    reversed_ids = [str(r) for r in (await db.scalars(sa.text(
        "SELECT DISTINCT record_id FROM hours_ledger.entries WHERE kind = 'reversal' AND recorded_at > :since"),
        {"since": mark.swept_to - SWEEP_OVERLAP})).all()]
    renamed = (await db.scalars(sa.text(
        "SELECT DISTINCT p.id_hash FROM hours_ledger.entries e JOIN hours_ledger.people p ON p.id = e.person_id "
        "WHERE e.kind = 'rename' AND e.recorded_at > :since"), {"since": mark.swept_to - SWEEP_OVERLAP})).all()
    count = 0
    for person_hash in renamed:
        for proof in (await db.scalars(sa.select(Proof).where(
                Proof.person_hash == person_hash, Proof.revoked_at.is_(None), Proof.superseded_at.is_(None))
                .with_for_update())).all():
            await refresh(db, proof)
            count += proof.superseded_at is not None
    for record_id in reversed_ids:
        covering = (await db.scalars(sa.select(Proof).where(
            Proof.record_ids.op("@>")(sa.func.jsonb_build_array(record_id)),
            Proof.revoked_at.is_(None), Proof.superseded_at.is_(None)).with_for_update())).all()
        for proof in covering:
            before = proof.superseded_at
            await refresh(db, proof)
            count += proof.superseded_at is not None and before is None
    mark.swept_to = now
    await db.flush()
    return count


async def sweep_forever(sessions: Any, seconds: float) -> None:
    """The service's background sweep (every `seconds`; XUESHI_SUPERSEDE_SECONDS)."""
    import logging

    log = logging.getLogger("xueshi.verification.sweep")
    while True:
        try:
            async with sessions() as db, db.begin():
                count = await sweep_reversals(db)
            if count:
                log.info("superseded proofs after reversals", extra={"count": count})
        except asyncio.CancelledError:
            raise
        except Exception:  # the next sweep tries again; reads refresh each proof they show meanwhile
            log.exception("sweep failed")
        await asyncio.sleep(seconds)


def _scope_filter(principal: Principal) -> Any:
    """Which proofs a staff member may list: the ones their body stamped (all, for the province and auditors)."""
    if principal.role in ("province_admin", "auditor"):
        return sa.true()
    if principal.role == "city_admin" and principal.region:
        return Proof.body == principal.region
    if principal.role == "authority_reviewer" and principal.authority:
        return Proof.body == body_for_authority(principal.authority)
    return sa.false()


def proof_summary(urls: Urls, proof: Proof) -> dict[str, Any]:
    return {"proof_id": proof.id, "year": proof.year, "scope": proof.scope, "field": proof.field,
            "body": proof.body, "issuer": proof.credential.get("issuer", {}).get("name"),
            "credited_hours": proof.credited_hours, "status": proof.standing, "issued_at": proof.created_at,
            "revoked_at": proof.revoked_at, "revocation_reason": proof.revocation_reason,
            "superseded_at": proof.superseded_at, "superseded_by": proof.superseded_by,
            "supersession_reason": proof.supersession_reason,
            "pdf_url": urls.pdf(proof.id), "verify_url": urls.verify_page(proof.id)}


async def people_proofs(db: AsyncSession, principal: Principal, keys: PiiKeys, urls: Urls, id_number: str,
                        year: int | None) -> list[dict[str, Any]]:
    """A person's proofs that the staff member's body stamped (every body's for the province and auditors), newest
    first by year and scope. A person with none, or none in scope, gets the same empty list."""
    principal.require_staff("province_admin", "city_admin", "authority_reviewer", "auditor")
    query = sa.select(Proof).where(Proof.person_hash == keys.lookup_hash(id_number), _scope_filter(principal))
    if year is not None:
        query = query.where(Proof.year == year)
    proofs = (await db.scalars(query.order_by(Proof.year.desc(), Proof.scope, Proof.field,
                                              Proof.created_at.desc()))).all()
    return [proof_summary(urls, await refresh(db, p)) for p in proofs]


async def awaiting_restamp(db: AsyncSession, principal: Principal, urls: Urls, limit: int) -> list[dict[str, Any]]:
    """The stamping body's proofs superseded because their records changed, with no newer proof yet: the people
    to stamp again."""
    principal.require_staff("province_admin", "city_admin", "authority_reviewer", "auditor")
    await sweep_reversals(db)
    proofs = (await db.scalars(sa.select(Proof).where(
        _scope_filter(principal), Proof.superseded_at.is_not(None), Proof.superseded_by.is_(None),
        Proof.revoked_at.is_(None)).order_by(Proof.superseded_at).limit(limit))).all()
    out = []
    for proof in proofs:
        # Stamped again since? A newer proof of the same person, year and scope ends the wait.
        newer = await db.scalar(sa.select(sa.func.count()).select_from(Proof).where(
            Proof.person_hash == proof.person_hash, Proof.year == proof.year, Proof.scope == proof.scope,
            Proof.field.is_(None) if proof.field is None else Proof.field == proof.field,
            Proof.created_at > proof.created_at))
        if not newer:
            subject = proof.credential["credentialSubject"]
            ids = {i["identityType"]: i["identityHash"] for i in subject["identifier"]}
            out.append({**proof_summary(urls, proof), "name": ids.get("name"), "masked_id": ids.get("identifier")})
    return out


async def get_proof(db: AsyncSession, proof_id: uuid.UUID) -> Proof:
    proof = await db.get(Proof, proof_id)
    if proof is None:
        raise NotFound("no such proof", rule="proof-not-found")
    return proof


async def published_proof(db: AsyncSession, proof_id: uuid.UUID) -> Proof:
    """A proof as the public may fetch it. Proofs stamped before holder confirmation moved online carry a salted
    hash of the ID number beside a mask that shows its region: they are withheld (410), to be stamped again."""
    proof = await get_proof(db, proof_id)
    if has_hashed_identifier(proof.credential):
        raise Gone("this proof was stamped in a form that exposed the ID number to guessing; it is no longer "
                   "published: the stamping body stamps it again", rule="proof-withdrawn")
    return proof


async def revoke_proof(db: AsyncSession, principal: Principal, proof_id: uuid.UUID, reason: str) -> Proof:
    principal.require_staff("province_admin", "city_admin", "authority_reviewer")
    proof = await db.scalar(sa.select(Proof).where(Proof.id == proof_id).with_for_update())
    if proof is None:
        raise NotFound("no such proof", rule="proof-not-found")
    allowed = {
        "province_admin": proof.body == PROVINCE,
        "city_admin": proof.body == principal.region,
        "authority_reviewer": principal.authority is not None and proof.body == body_for_authority(principal.authority),
    }.get(principal.role or "", False)
    if not allowed:
        raise Forbidden("only staff of the body that stamped a proof may revoke it", rule="out-of-scope")
    if proof.revoked_at is not None:
        raise Conflict("the proof is already revoked", rule="already-revoked")
    if proof.superseded_at is None:  # a superseded proof's bit is already set
        await _set_status_bit(db, proof)
    proof.revoked_at, proof.revoked_by, proof.revocation_reason = sa.func.now(), principal.id, reason
    await db.flush()
    await db.refresh(proof)
    return proof


# ---- published documents ------------------------------------------------------------------------

async def did_document(db: AsyncSession, urls: Urls, body: str) -> dict[str, Any]:
    stamps = (await db.scalars(sa.select(Stamp).where(Stamp.body == body).order_by(Stamp.version))).all()
    if not stamps:
        raise NotFound(f"no stamping body {body}", rule="issuer-not-found")
    did = urls.did(body)
    methods = [{"id": f"{did}#key-{s.version}", "type": "Multikey", "controller": did,
                "publicKeyMultibase": encode_multikey(s.ed25519_public)} for s in stamps]
    return {"@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"], "id": did,
            "alsoKnownAs": [stamps[-1].name], "verificationMethod": methods,
            "assertionMethod": [m["id"] for m in methods]}


async def status_list_document(db: AsyncSession, secret: bytes, urls: Urls, body: str, list_no: int) -> dict[str, Any]:
    row = await db.get(StatusList, (body, list_no))
    if row is None:
        raise NotFound("no such status list", rule="status-list-not-found")
    stamp_row = await current_stamp(db, body)
    assert stamp_row is not None
    stamp = load_stamp(stamp_row, secret)
    url = urls.status_list(body, list_no)
    doc = status_list_credential(url, urls.did(body), encode_status_list(row.bits), _xsd(row.updated_at))
    return await off_loop(integrity.sign, doc, stamp.signing, f"{urls.did(body)}#key-{stamp.version}",
                                   _xsd(row.updated_at), jsonld.canonicalize)


async def ca_pem(db: AsyncSession, secret: bytes) -> str:
    return (await ensure_ca(db, secret)).cert.public_bytes(serialization.Encoding.PEM).decode()


async def ensure_stamps(db: AsyncSession, secret: bytes) -> list[str]:
    """Create the first stamp of every body that has none (what `make run` does on a fresh install)."""
    from .keys import create_stamp

    created = []
    for body, name in (await body_names(db)).items():
        if await db.scalar(sa.select(Stamp.id).where(Stamp.body == body).limit(1)) is None:
            await create_stamp(db, secret, body, name)
            created.append(body)
    return created


# ---- verification -------------------------------------------------------------------------------

def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "detail": detail}


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class HolderQuestion:
    """An online confirmation of the holder: the ID number asked about (kept only as its keyed hash), who asks."""

    id_hash: bytes
    client: str | None
    request_id: str | None
    failures_per_day: int


async def _holder(db: AsyncSession, urls: Urls, credential: dict[str, Any], question: HolderQuestion,
                  now: dt.datetime) -> dict[str, Any]:
    """Whether the ID number asked about is the proof's holder, checked against the registry's own record of the
    proof (the credential carries nothing to check it with offline). Each answer is recorded and audited; failed
    ones count against the proof's daily budget, whatever the address they come from."""
    proof_url = str(credential.get("id", ""))
    proof = None
    if proof_url.startswith(urls.proof("")):
        try:
            # Locked: one proof's confirmations are counted one at a time, so that no burst outruns its budget.
            proof = await db.get(Proof, uuid.UUID(proof_url[len(urls.proof("")):]), with_for_update=True)
        except ValueError:
            proof = None
    if proof is None:
        return _check("holder", False, "not a proof of this registry: its holder cannot be confirmed")
    failures = await db.scalar(sa.select(sa.func.count()).select_from(HolderCheck).where(
        HolderCheck.proof_id == proof.id, HolderCheck.matched.is_(False),
        HolderCheck.checked_at > now - dt.timedelta(days=1)))
    if failures >= question.failures_per_day:
        raise TooManyRequests("this proof's holder was asked about too often with a wrong ID number today; try "
                              "again tomorrow", retry_after="3600", rule="holder-check-limit")
    matched = hmac.compare_digest(bytes(proof.person_hash), question.id_hash)
    db.add(HolderCheck(proof_id=proof.id, matched=matched, client_address=question.client, checked_at=now))
    await record_audit(db, service="verification", action="POST /v1/verifications (holder)",
                       outcome="match" if matched else "no-match", status=200, principal=None,
                       target={"proof": str(proof.id)}, client_address=question.client,
                       request_id=question.request_id)
    return _check("holder", matched, "the ID number is the holder's" if matched
                  else "the ID number is not the holder's")


async def verify_credential(db: AsyncSession, urls: Urls, credential: Any, holder: HolderQuestion | None,
                            now: dt.datetime) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    if not isinstance(credential, dict):
        checks.append(_check("format", False, "a credential is a JSON object"))
        return {"verified": False, "revoked": False, "issuer": None, "credits": None, "checks": checks}

    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    issuer_name = issuer.get("name") if isinstance(issuer, dict) else None
    body = urls.body_of(str(issuer_id or ""))
    proof = credential.get("proof") if isinstance(credential.get("proof"), dict) else {}
    method = str(proof.get("verificationMethod", ""))
    stamp: Stamp | None = None
    if body is not None and method.startswith(f"{issuer_id}#key-"):
        try:
            version = int(method.rsplit("#key-", 1)[1])
        except ValueError:
            version = -1
        stamp = await db.scalar(sa.select(Stamp).where(Stamp.body == body, Stamp.version == version))
    valid_from = _parse_time(credential.get("validFrom"))
    if stamp is None:
        checks.append(_check("issuer", False, "the issuer or its key is not a stamp published by this registry"))
    elif valid_from is None or valid_from < stamp.created_at.replace(microsecond=0) - dt.timedelta(seconds=1):
        checks.append(_check("issuer", False, "the credential claims a date before the issuer's key existed"))
    else:
        checks.append(_check("issuer", True, f"{stamp.name} ({issuer_id}), key version {stamp.version}"))

    if stamp is not None:
        try:
            jsonld.check_shape(credential)
            outcome, ok, detail = await checking.check_signature(credential, stamp.ed25519_public)
        except jsonld.TooComplex as exc:
            outcome, ok, detail = "too-complex", False, str(exc)
        if outcome == "too-complex":
            raise InvalidInput(f"the credential is too complex to verify: {detail}", rule="credential-too-complex",
                               field="credential")
        if outcome == "undefined":
            detail = f"the credential holds data its signature cannot cover: {detail}"
        elif outcome == "invalid":  # malformed JSON-LD of any kind is a failed proof, not a 500
            detail = f"the credential is not valid JSON-LD: {detail}"
        checks.append(_check("proof", ok, detail))
    else:
        checks.append(_check("proof", False, "no trusted key to check the signature with"))

    valid_until = _parse_time(credential.get("validUntil")) if credential.get("validUntil") else None
    if valid_from is None:
        checks.append(_check("validity", False, "validFrom is missing or not a date-time with offset"))
    elif now < valid_from:
        checks.append(_check("validity", False, "not valid yet"))
    elif valid_until is not None and now > valid_until:
        checks.append(_check("validity", False, "expired"))
    else:
        checks.append(_check("validity", True, f"valid from {valid_from.isoformat()}"))

    revoked = False
    standing: dict[str, Any] = {"status": None, "status_since": None, "superseded_by": None, "status_reason": None}
    # The registry's own record of the proof, brought up to date first (a record it covers may have been reversed
    # a moment ago): it tells why a set status bit is set.
    record = await _registry_proof(db, urls, credential)
    if record is not None:
        record = await refresh(db, record)
        standing = {"status": record.standing, "status_since": record.revoked_at or record.superseded_at,
                    "superseded_by": record.superseded_by,
                    "status_reason": record.revocation_reason or record.supersession_reason}
    entry = credential.get("credentialStatus") if isinstance(credential.get("credentialStatus"), dict) else None
    if entry is None or body is None:
        checks.append(_check("status", False, "no status entry of this registry"))
    else:
        list_url = str(entry.get("statusListCredential", ""))
        prefix = urls.status_list(body, 0)[:-1]
        try:
            list_no, index = int(list_url[len(prefix):]), int(entry.get("statusListIndex", -1))
        except ValueError:
            list_no, index = -1, -1
        row = await db.get(StatusList, (body, list_no)) if list_url.startswith(prefix) else None
        if row is None or not 0 <= index < len(row.bits) * 8:
            checks.append(_check("status", False, "the status list entry does not exist"))
        else:
            revoked = status_bit(row.bits, index)
            if revoked and standing["status"] == "superseded":
                since = standing["status_since"].astimezone(BEIJING)
                newer = f"by proof {standing['superseded_by']}" if standing["superseded_by"] else \
                    "because its records changed"
                checks.append(_check("status", False, f"superseded {newer} on {since:%Y-%m-%d %H:%M} (Beijing time)"))
                revoked = False
            else:
                checks.append(_check("status", not revoked, "revoked by the issuer" if revoked else "not revoked"))

    if holder is not None:
        checks.append(await _holder(db, urls, credential, holder, now))

    subject = credential.get("credentialSubject") if isinstance(credential.get("credentialSubject"), dict) else {}
    verified = all(c["ok"] for c in checks)
    signed = next((c["ok"] for c in checks if c["check"] == "proof"), False)
    if standing["status"] is None and entry is not None and body is not None:
        standing["status"] = "revoked" if revoked else None
    return {"verified": verified, "revoked": revoked,
            "issuer": {"id": issuer_id, "name": issuer_name} if issuer_id else None,
            # The 学时 are the registry's only when its signature holds: a failed credential's claim is not echoed.
            "credits": subject.get("creditsEarned") if signed and checks[0]["ok"] else None,
            "claimed_credits": None if signed and checks[0]["ok"] else subject.get("creditsEarned"),
            **standing, "checks": checks}


async def _registry_proof(db: AsyncSession, urls: Urls, credential: dict[str, Any]) -> Proof | None:
    proof_url = str(credential.get("id", ""))
    if not proof_url.startswith(urls.proof("")):
        return None
    try:
        return await db.get(Proof, uuid.UUID(proof_url[len(urls.proof("")):]))
    except ValueError:
        return None


def public_view(proof: Proof) -> dict[str, Any]:
    """What the public page may show: never the unmasked ID number (it is not even stored)."""
    subject = proof.credential["credentialSubject"]
    ids = {i["identityType"]: i for i in subject["identifier"]}
    return {
        "proof_id": str(proof.id), "title": proof.credential["name"], "issuer": proof.credential["issuer"]["name"],
        "name": ids["name"]["identityHash"], "masked_id": ids["identifier"]["identityHash"],
        "year": proof.year, "credits": subject["creditsEarned"], "revoked": proof.revoked_at is not None,
        "revocation_reason": proof.revocation_reason, "superseded": proof.standing == "superseded",
        "superseded_by": str(proof.superseded_by) if proof.superseded_by else None,
        "status_since": f"{(proof.revoked_at or proof.superseded_at).astimezone(BEIJING):%Y-%m-%d %H:%M}（北京时间）"
        if proof.standing != "valid" else None,
        "issued": f"{proof.created_at.astimezone(dt.timezone(dt.timedelta(hours=8))):%Y-%m-%d %H:%M}（北京时间）",
        "lines": [(d["name"], r["value"]) for d, r in zip(subject["achievement"]["resultDescription"],
                                                          subject["result"], strict=False)],
    }



# ---- PDF verification ------------------------------------------------------------------------------

MAX_PDF_BYTES = 4 * 1024 * 1024


async def verify_pdf(db: AsyncSession, urls: Urls, secret: bytes, pdf: bytes) -> dict[str, Any]:
    """What a proof PDF someone holds is worth: its signature (valid, trusted by the deployment CA, a
    certification that permits no change), whether it covers the whole file or something was appended, whether
    the embedded credential is the registry's proof, and that proof's standing."""
    if len(pdf) > MAX_PDF_BYTES:
        raise InvalidInput(f"a proof PDF is at most {MAX_PDF_BYTES // 1024 // 1024} MB", rule="too-large", field="body")
    if not pdf.startswith(b"%PDF-"):
        raise InvalidInput("the body is not a PDF (it must start with %PDF-)", rule="not-a-pdf", field="body")
    ca = await ensure_ca(db, secret)
    seen = await checking.check_pdf(pdf, ca.cert.public_bytes(serialization.Encoding.DER))
    checks = []
    if not seen["readable"]:
        checks.append(_check("format", False, f"the PDF cannot be read: {seen['error']}"))
    elif seen["signatures"] == 0:
        checks.append(_check("signature", False, "the PDF carries no signature"))
    else:
        signature_ok = seen["intact"] and seen["valid"] and seen["trusted"]
        checks.append(_check("signature", signature_ok,
                             f"signed by {seen['signer']}, certified by this registry's CA" if signature_ok else
                             "the signature does not match the content" if not seen["intact"] else
                             "the signer's certificate is not certified by this registry's CA" if not seen["trusted"]
                             else "the signature is not valid"))
        checks.append(_check("certification", seen["certified"],
                             "a certification signature that permits no change (DocMDP 1)" if seen["certified"] else
                             "not a certification signature permitting no change: not a proof of this registry"))
        whole = seen["whole_file"] and not seen["appended"]
        checks.append(_check("whole-file", whole, "the signature covers the whole file" if whole else
                             f"content was added after signing ({seen['revisions']} revisions; the change is "
                             f"{seen['modification'] or 'unknown'}): what the file shows now is not what was signed"))
    credential = seen.get("credential")
    proof = await _registry_proof(db, urls, credential) if isinstance(credential, dict) else None
    if proof is None:
        checks.append(_check("credential", False, "the PDF carries no credential of this registry"))
    elif proof.credential != credential or has_hashed_identifier(proof.credential):
        checks.append(_check("credential", False, "the embedded credential is not the registry's proof"))
    else:
        checks.append(_check("credential", True, f"the embedded credential is the registry's proof {proof.id}"))
    standing: dict[str, Any] = {"status": None, "status_since": None, "superseded_by": None, "status_reason": None}
    if proof is not None:
        proof = await refresh(db, proof)
        standing = {"status": proof.standing, "status_since": proof.revoked_at or proof.superseded_at,
                    "superseded_by": proof.superseded_by,
                    "status_reason": proof.revocation_reason or proof.supersession_reason}
        label = {"valid": "stands", "revoked": "was revoked by the issuer", "superseded": "was superseded"}
        checks.append(_check("status", proof.standing == "valid", f"the proof {label[proof.standing]}"))
    verified = all(c["ok"] for c in checks)
    return {"verified": verified, "proof_id": proof.id if proof is not None else None,
            "credits": proof.credited_hours if proof is not None and verified else None, **standing, "checks": checks}
