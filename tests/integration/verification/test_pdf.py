"""The proof PDF as people and archives meet it: every font embedded, the same page in poppler, MuPDF and
PDFium, its metadata, records that earned nothing listed apart, and every kind of change after signing caught
(by `POST /v1/verifications/pdf`, pyHanko's validator with its DocMDP check, and pdfsig).

poppler-utils and mupdf-tools are installed by the tests (tests/support/tools.py); PDFium is pypdfium2's.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.support.factories import approved_base, approved_course, online_sitting, record_body
from tests.support.http import assert_problem
from tests.support.tools import debian_tool

TITLE = "专业技术人员继续教育学时证明"


async def stamped(verification, staff, person) -> tuple[dict, bytes]:
    response = await verification.post("/v1/proofs", json={"id_number": person, "year": 2026, "scope": "public"},
                                       headers=staff.headers)
    assert response.status_code == 201, response.text
    proof = response.json()
    pdf = (await verification.get(f"/v1/proofs/{proof['proof_id']}/pdf"))
    assert pdf.status_code == 200
    return proof, pdf.content


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


# ---- what every viewer shows ------------------------------------------------------------------

async def test_every_font_is_embedded_and_the_text_is_the_text(verification, fuzhou, studied, tmp_path):
    _, pdf = await stamped(verification, fuzhou, studied)
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    fonts = _run(debian_tool("pdffonts", "poppler-utils"), str(path)).splitlines()[2:]
    assert fonts, "the page uses fonts"
    for line in fonts:
        columns = line.split()
        emb = columns[-5]  # name type [type2] encoding emb sub uni object ID
        assert emb == "yes", f"a font is not embedded: {line}"
    text = _run(debian_tool("pdftotext", "poppler-utils"), "-layout", str(path), "-")
    assert TITLE in text and "陈小明" in text and "学时明细" in text, text


DPI = 144


def _render(kind: str, path: Path, tmp_path: Path) -> Image.Image:
    out = tmp_path / f"{kind}.png"
    if kind == "poppler":
        _run(debian_tool("pdftoppm", "poppler-utils"), "-r", str(DPI), "-png", "-singlefile", str(path),
             str(out.with_suffix("")))
    elif kind == "mupdf":
        _run(debian_tool("mutool", "mupdf-tools"), "draw", "-q", "-r", str(DPI), "-o", str(out), str(path), "1")
    else:
        import pypdfium2

        document = pypdfium2.PdfDocument(str(path))
        document[0].render(scale=DPI / 72).to_pil().save(out)
        document.close()
    return Image.open(out).convert("L")


def _profile(image: Image.Image) -> list[int]:
    """Dark pixels per column: the shape of a line of text, which a row of boxes or blanks does not have."""
    width, height = image.size
    pixels = image.load()
    return [sum(1 for y in range(height) if pixels[x, y] < 128) for x in range(width)]


def _correlation(a: list[int], b: list[int]) -> float:
    n = len(a)
    mean_a, mean_b = sum(a) / n, sum(b) / n
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b, strict=True))
    var_a = sum((x - mean_a) ** 2 for x in a) ** 0.5
    var_b = sum((y - mean_b) ** 2 for y in b) ** 0.5
    return cov / (var_a * var_b) if var_a and var_b else 0.0


def _reference_title(size: tuple[int, int]) -> Image.Image:
    """The title drawn by FreeType (Pillow) from the font the registry ships: what every engine must show."""
    from importlib.resources import as_file, files

    from PIL import ImageDraw, ImageFont

    with as_file(files("verification") / "assets" / "body-font.ttf") as font_path:
        font = ImageFont.truetype(str(font_path), round(22 * DPI / 72))
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).text((size[0] / 2, size[1] / 2), TITLE, font=font, fill=0, anchor="mm")
    return image


def _trimmed(image: Image.Image) -> Image.Image:
    box = Image.eval(image, lambda v: 255 - v).getbbox()
    return image.crop(box) if box else image


async def test_poppler_mupdf_and_pdfium_draw_the_same_title(verification, fuzhou, studied, tmp_path):
    _, pdf = await stamped(verification, fuzhou, studied)
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    # The title line: 22 pt, centred, its baseline 80 pt below the top of an A4 page (595 x 842 pt).
    scale = DPI / 72
    box = tuple(round(v * scale) for v in (40, 52, 555, 88))
    reference = _trimmed(_reference_title((box[2] - box[0], box[3] - box[1])))
    for kind in ("poppler", "mupdf", "pdfium"):
        title = _trimmed(_render(kind, path, tmp_path).crop(box))
        # Same extent as the reference (boxes or a substituted font would be wider or narrower), same shape.
        assert abs(title.width - reference.width) <= 0.04 * reference.width, (kind, title.size, reference.size)
        correlation = _correlation(_profile(title.resize(reference.size)), _profile(reference))
        print(f"{kind}: title {title.size}, reference {reference.size}, profile correlation {correlation:.3f}")
        assert correlation > 0.8, f"{kind} draws the title unlike the embedded font ({correlation:.3f})"


async def test_metadata_names_the_registry_and_the_issuer(verification, fuzhou, studied, tmp_path):
    proof, pdf = await stamped(verification, fuzhou, studied)
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    info = dict(line.split(":", 1) for line in _run(debian_tool("pdfinfo", "poppler-utils"), str(path)).splitlines()
                if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    assert info["Title"] == "2026年度专业技术人员继续教育公需科目学时证明"
    assert info["Author"] == "福州市人力资源和社会保障局"
    assert info["Creator"].startswith("福建省专业技术人员继续教育学时登记系统")
    assert proof["proof_id"] in info["Subject"] and "认定 9 学时" in info["Subject"]


async def test_a_record_that_earned_nothing_is_listed_apart_with_its_rule(ledger, catalog, verification, fuzhou,
                                                                         studied, tmp_path):
    base = await approved_base(catalog, fuzhou)
    course = await approved_course(catalog, base, fuzhou, topic="1", hours=7)
    failed = record_body(course, studied, [online_sitting("2026-06-01T08:00:00+08:00", "2026-06-01T14:00:00+08:00")],
                         exam={"questions": 10, "correct": 3, "passed": False})
    written = await ledger.post("/v1/records", json=failed, headers=base.headers)
    assert written.status_code == 201 and written.json()["credited_hours"] == 0, written.text
    proof, pdf = await stamped(verification, fuzhou, studied)
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    text = _run(debian_tool("pdftotext", "poppler-utils"), "-layout", str(path), "-")
    credited, _, apart = text.partition("未计学时（1 条）")
    assert apart, text
    assert "所含学习记录（2 条）" in credited
    assert "考试未通过" in apart
    narratives = {e["narrative"] for e in proof["credential"]["evidence"]}
    assert "未计学时：考试未通过" in narratives


# ---- changes after signing -------------------------------------------------------------------

def _draw_over(pdf: bytes, text: bytes = b"90") -> bytes:
    """An incremental update that draws `text` in large type over page 1 (what a forger does to the 学时)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    font = generic.DictionaryObject({generic.NameObject("/Type"): generic.NameObject("/Font"),
                                     generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
                                     generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica")})
    resources = generic.DictionaryObject({generic.NameObject("/Font"): generic.DictionaryObject(
        {generic.NameObject("/FX"): writer.add_object(font)})})
    stream = writer.add_object(generic.StreamObject(stream_data=b"BT /FX 40 Tf 330 640 Td (" + text + b") Tj ET"))
    writer.add_stream_to_page(0, stream, resources=resources)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _append_page(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = generic.DictionaryObject({generic.NameObject("/Type"): generic.NameObject("/Page"),
                                     generic.NameObject("/MediaBox"): generic.ArrayObject(
                                         [generic.NumberObject(n) for n in (0, 0, 595, 842)]),
                                     generic.NameObject("/Contents"): writer.add_object(
                                         generic.StreamObject(stream_data=b""))})
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _swap_credential(pdf: bytes, credential: dict) -> bytes:
    """An incremental update that replaces the embedded credential.json with another one."""
    from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    embed_file(writer, FileSpec(file_spec_string="credential.json", file_name="credential.json",
                                embedded_data=EmbeddedFileObject.from_file_data(
                                    writer, data=json.dumps(credential).encode(), mime_type="application/json",
                                    params=EmbeddedFileParams(embed_size=True))))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _flip_byte(pdf: bytes) -> bytes:
    index = pdf.index(b"/Title")
    return pdf[:index + 1] + bytes([pdf[index + 1] ^ 0x01]) + pdf[index + 2:]


async def _pyhanko_verdict(pdf: bytes, ca_pem: str) -> dict:
    """pyHanko's own validator, as an archive would run it (with the DocMDP check)."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    _, _, der = pem.unarmor(ca_pem.encode())
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    signature = reader.embedded_signatures[0]
    status = await async_validate_pdf_signature(signature, ValidationContext(trust_roots=[asn1_x509.Certificate.load(der)]))
    return {"intact": status.intact, "valid": status.valid, "trusted": status.trusted,
            "docmdp_ok": status.docmdp_ok, "coverage": status.coverage.name, "certified": signature.docmdp_level
            is not None and signature.docmdp_level.value == 1}


async def _post_pdf(verification, pdf: bytes) -> dict:
    response = await verification.post("/v1/verifications/pdf", content=pdf,
                                       headers={"Content-Type": "application/pdf"})
    assert response.status_code == 200, response.text
    return response.json()


def _checks(result: dict) -> dict:
    return {c["check"]: c["ok"] for c in result["checks"]}


async def test_the_issued_pdf_is_certified_and_verifies(verification, fuzhou, studied):
    proof, pdf = await stamped(verification, fuzhou, studied)
    result = await _post_pdf(verification, pdf)
    assert result["verified"] is True, json.dumps(result, ensure_ascii=False)
    assert result["proof_id"] == proof["proof_id"] and result["credits"] == 9 and result["status"] == "valid"
    assert _checks(result) == {"signature": True, "certification": True, "whole-file": True, "credential": True,
                               "status": True}
    ca_pem = (await verification.get("/v1/trust/ca.pem")).text
    verdict = await _pyhanko_verdict(pdf, ca_pem)
    assert verdict == {"intact": True, "valid": True, "trusted": True, "docmdp_ok": True, "coverage": "ENTIRE_FILE",
                       "certified": True}


@pytest.mark.parametrize("kind", ["draw-90", "append-page", "swap-credential", "flip-byte"])
async def test_every_change_after_signing_is_caught(verification, fuzhou, studied, tmp_path, kind):
    proof, pdf = await stamped(verification, fuzhou, studied)
    forged_credential = {**proof["credential"], "credentialSubject": {
        **proof["credential"]["credentialSubject"], "creditsEarned": 90}}
    changed = {"draw-90": _draw_over, "append-page": _append_page, "flip-byte": _flip_byte,
               "swap-credential": lambda p: _swap_credential(p, forged_credential)}[kind](pdf)
    result = await _post_pdf(verification, changed)
    checks = _checks(result)
    assert result["verified"] is False and result["credits"] is None, result
    if kind == "flip-byte":
        assert checks["signature"] is False
    else:
        # The signed revision is still intact: what catches it is that something was appended after it.
        assert checks["whole-file"] is False, result
    if kind == "swap-credential":
        assert checks["credential"] is False
    ca_pem = (await verification.get("/v1/trust/ca.pem")).text
    verdict = await _pyhanko_verdict(changed, ca_pem)
    assert not (verdict["intact"] and verdict["docmdp_ok"] and verdict["coverage"] == "ENTIRE_FILE"), verdict

    # pdfsig: never "total document signed" once anything was changed (it exits 0 either way: its text is the verdict).
    from tests.integration.verification.test_independent_checks import pdfsig_report

    path = tmp_path / "changed.pdf"
    path.write_bytes(changed)
    report = pdfsig_report(path, ca_pem, tmp_path)
    assert "Total document signed" not in report or "Signature is Valid." not in report, report


async def test_a_pdf_signed_by_anyone_else_or_no_pdf_at_all_is_refused(verification):
    assert_problem(await verification.post("/v1/verifications/pdf", content=b"hello",
                                           headers={"Content-Type": "application/pdf"}), 422, "not-a-pdf")
    garbage = await _post_pdf(verification, b"%PDF-1.7\n" + b"\x00" * 500)
    assert garbage["verified"] is False and _checks(garbage) == {"format": False, "credential": False}
    # A PDF of someone else (here: the page without its signature, as reportlab draws it) is not the registry's.
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    c = canvas.Canvas(out)
    c.drawString(100, 700, "90")
    c.save()
    unsigned = await _post_pdf(verification, out.getvalue())
    assert unsigned["verified"] is False and _checks(unsigned)["signature"] is False


async def test_the_qr_code_reads_back_as_the_verification_page(verification, fuzhou, studied, tmp_path):
    proof, pdf = await stamped(verification, fuzhou, studied)
    path = tmp_path / "proof.pdf"
    path.write_bytes(pdf)
    _run(debian_tool("pdftoppm", "poppler-utils"), "-r", "150", "-png", "-singlefile", str(path),
         str(tmp_path / "page"))
    zbarimg = debian_tool("zbarimg", "zbar-tools")
    decoded = subprocess.run([zbarimg, "-q", "--raw", str(tmp_path / "page.png")], capture_output=True, text=True,
                             timeout=60).stdout.strip()
    assert decoded == proof["verify_url"]
