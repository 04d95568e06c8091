"""The proof for people: a one-page PDF, certified (PAdES, DocMDP: no changes allowed) with the stamping body's
certificate.

Every glyph on the page comes from a font embedded in the file: a subset, per PDF, of WenQuanYi Micro Hei
(Apache-2.0; `assets/body-font.ttf`, cut to GBK's characters by tools/make_body_font.py), so poppler, MuPDF,
PDFium and Acrobat draw the same page (the standard CID font STSong-Light it replaced is not embedded, and
poppler-based viewers drew boxes). The seal is an image (see seal.py); the credential is embedded as an attached
file so the PDF and the credential travel together.

The signature is a certification signature with DocMDP permission 1: any later revision (a page appended, "90"
drawn over page 1, a form filled) breaks the document's certification in every conforming validator, and
`POST /v1/verifications/pdf` reports it.
"""

from __future__ import annotations

import importlib.resources
import io
import itertools
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab import rl_config
from reportlab.graphics.barcode import qrencoder
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from .keys import StampKeys
from .seal import seal_png

__all__ = ["CREATOR", "PdfLine", "PdfProof", "certify", "render_and_sign"]

FONT = "XueshiBody"
CREATOR = "福建省专业技术人员继续教育学时登记系统（Xueshi）"


def _register_font() -> None:
    path = importlib.resources.files(__package__) / "assets" / "body-font.ttf"
    with importlib.resources.as_file(path) as real:
        pdfmetrics.registerFont(TTFont(FONT, str(real)))


_register_font()
# Streams are written binary (compressed), not ASCII85-armoured: reportlab's pure-Python ASCII85 encoder took 28 of
# a page's 41 ms, and a signed PDF is a binary file anyway.
rl_config.useA85 = 0


@dataclass(frozen=True)
class PdfLine:
    label: str
    hours: int
    allotment: int | None


@dataclass(frozen=True)
class PdfRecord:
    course: str
    base: str
    period: str
    hours: int
    rule: str | None = None  # why a record earned no 学时 (the rule that cut it), for 未计学时


@dataclass(frozen=True)
class PdfProof:
    proof_id: str
    issuer_name: str
    name: str
    masked_id: str
    year: int
    scope_label: str
    credited_hours: int
    lines: tuple[PdfLine, ...]
    records: tuple[PdfRecord, ...]
    issued_on: str
    verify_url: str
    title: str = "专业技术人员继续教育学时证明"


def _page(p: PdfProof) -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, pageCompression=1, initialFontName=FONT, initialFontSize=10)
    c.setTitle(p.title)
    c.setAuthor(p.issuer_name)
    c.setSubject(f"{p.name} {p.year}年度{p.scope_label} 认定 {p.credited_hours} 学时（证明编号 {p.proof_id}）")
    c.setCreator(CREATOR)
    c.setKeywords(["继续教育", "学时证明", "验印", p.proof_id])
    width, height = A4
    c.setFont(FONT, 22)
    c.drawCentredString(width / 2, height - 80, "专业技术人员继续教育学时证明")
    c.setFont(FONT, 11)
    y = height - 125
    for label, value in (("姓名", p.name), ("证件号码", p.masked_id), ("年度", str(p.year)),
                         ("科目", p.scope_label), ("认定学时", f"{p.credited_hours} 学时"), ("证明编号", p.proof_id)):
        c.drawString(70, y, f"{label}：{value}")
        y -= 20
    y -= 8
    c.setFont(FONT, 12)
    c.drawString(70, y, "学时明细")
    y -= 18
    c.setFont(FONT, 10)
    for line in p.lines:
        suffix = f" / {line.allotment}" if line.allotment is not None else ""
        c.drawString(84, y, f"{line.label}")
        c.drawRightString(width - 80, y, f"{line.hours}{suffix} 学时")
        y -= 16
    y -= 8
    credited = [r for r in p.records if r.hours > 0]
    uncredited = [r for r in p.records if r.hours == 0]
    c.setFont(FONT, 12)
    c.drawString(70, y, f"所含学习记录（{len(credited)} 条）")
    y -= 18
    c.setFont(FONT, 9)
    room = 18 if not uncredited else 13
    for r in credited[:room]:
        c.drawString(84, y, f"{r.period}  {r.course[:28]}  （{r.base[:16]}）")
        c.drawRightString(width - 80, y, f"{r.hours} 学时")
        y -= 14
    if len(credited) > room:
        c.drawString(84, y, f"…… 其余 {len(credited) - room} 条见所附电子证明（credential.json）")
        y -= 14
    if uncredited:
        # Records the rules credited nothing: listed apart, each with the rule, never among the credited ones.
        y -= 6
        c.setFont(FONT, 12)
        c.drawString(70, y, f"未计学时（{len(uncredited)} 条）")
        y -= 18
        c.setFont(FONT, 9)
        for r in uncredited[:4]:
            c.drawString(84, y, f"{r.period}  {r.course[:24]}  （{r.base[:12]}）")
            c.drawRightString(width - 80, y, f"未计学时：{r.rule or '未满足认定条件'}")
            y -= 14
        if len(uncredited) > 4:
            c.drawString(84, y, f"…… 其余 {len(uncredited) - 4} 条见所附电子证明（credential.json）")
    # Seal, over the issuer's name and date, as on a paper proof.
    c.setFont(FONT, 11)
    c.drawRightString(width - 80, 190, p.issuer_name)
    c.drawRightString(width - 80, 172, p.issued_on)
    c.drawImage(ImageReader(io.BytesIO(seal_png(p.issuer_name))), width - 230, 120, 130, 130, mask="auto")
    # QR code to the public verification page: encoded once, its dark runs filled as one path.
    _draw_qr(c, p.verify_url, 70, 110, 110)
    c.setFont(FONT, 8)
    c.drawString(70, 98, "扫码或访问以下地址核验本证明：")
    c.drawString(70, 86, p.verify_url)
    c.drawString(70, 66, "本证明经电子签章（PAdES），附带 W3C 可验证凭证；任何改动都会使签章失效。")
    c.showPage()
    c.save()
    return out.getvalue()


def _draw_qr(c: canvas.Canvas, text: str, x: float, y: float, size: float, border: int = 4) -> None:
    """A QR code (error correction M, as reportlab's widget draws it) of `text`, `size` points square."""
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(text)
    code.make()
    count = code.getModuleCount()
    box = size / (count + 2 * border)
    path = c.beginPath()
    for r, row in enumerate(code.modules):
        column = 0
        for dark, run in itertools.groupby(bool(v) for v in row):
            length = len(list(run))
            if dark:
                path.rect(x + (column + border) * box, y + size - (r + border + 1) * box, length * box, box)
            column += length
    c.setFillColorRGB(0, 0, 0)
    c.drawPath(path, stroke=0, fill=1)


def _signer(stamp: StampKeys, ca_cert_pem: str) -> signers.SimpleSigner:
    key_der = stamp.pdf_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
    cert = asn1_x509.Certificate.load(stamp.cert.public_bytes(serialization.Encoding.DER))
    ca = asn1_x509.Certificate.load(
        x509.load_pem_x509_certificate(ca_cert_pem.encode()).public_bytes(serialization.Encoding.DER))
    return signers.SimpleSigner(signing_cert=cert, signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                cert_registry=SimpleCertificateStore.from_certs([ca]))


def render_and_sign(p: PdfProof, credential_json: bytes, stamp: StampKeys, ca_cert_pem: str) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(_page(p)))
    embed_file(writer, FileSpec(
        file_spec_string="credential.json", file_name="credential.json",
        embedded_data=EmbeddedFileObject.from_file_data(
            writer, data=credential_json, mime_type="application/vc+ld+json",
            params=EmbeddedFileParams(embed_size=True)),
        description="W3C Verifiable Credential (OpenBadgeCredential) of this proof"))
    return certify(writer, stamp, ca_cert_pem, "学时验印")


def certify(writer: IncrementalPdfFileWriter, stamp: StampKeys, ca_cert_pem: str, reason: str) -> bytes:
    """A certification signature (the document's first, with DocMDP P=1): no change after it is permitted."""
    meta = signers.PdfSignatureMetadata(field_name="XueshiStamp", subfilter=fields.SigSeedSubFilter.PADES,
                                        md_algorithm="sha256", reason=reason, name=stamp.name, certify=True,
                                        docmdp_permissions=MDPPerm.NO_CHANGES)
    out = io.BytesIO()
    signers.sign_pdf(writer, meta, signer=_signer(stamp, ca_cert_pem), output=out)
    return out.getvalue()
