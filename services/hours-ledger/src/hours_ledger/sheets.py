"""Rosters as spreadsheets (offline and mixed training): reading an uploaded sheet, turning its rows into the
ledger's records, and writing the template and the answered sheet. Pure: bytes in, values out; no database.

A roster has one row per sitting; rows that share `external_id` are the sittings of one record. Its columns
are named in English (the contract) or by their Chinese names (aliases); `COLUMNS` lists both. A file that
cannot be read as a roster at all (not a spreadsheet, unknown or missing headers, no rows, too many rows,
formulas) is refused as a whole, naming the row and the column. A row whose values are wrong refuses its own
record only (`Rows.record`), naming the row and the column, in the vocabulary of `/v1/records`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from pydantic import ValidationError
from xueshi_shared.pii import mask_id_number
from xueshi_shared.problems import FieldError, InvalidInput, Problem, field_errors

from . import schemas

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    alias: str  # the Chinese header, accepted instead of the name
    level: Literal["record", "sitting"]  # record: the same on every row of the record (or left blank after the first)
    required: bool
    description: str
    example: str


COLUMNS: tuple[Column, ...] = (
    Column("external_id", "外部编号", "record", True, "The base's own id of the record (an idempotency key); rows "
           "sharing it are the sittings of one record.", "2026-XX-000001"),
    Column("course_code", "课程编号", "record", True, "The base's own code of the course, as registered in the "
           "catalog.", "C2026-05"),
    Column("id_type", "证件类型", "record", True, "RIC 居民身份证, passport 护照, hk_macau_permit "
           "港澳居民来往内地通行证, taiwan_permit 台湾居民来往大陆通行证.", "RIC"),
    Column("id_number", "证件号码", "record", True, "As text: an ID number stored as a number loses its last "
           "digits in Excel.", "350102199003071234"),
    Column("name", "姓名", "record", True, "As on the ID document.", "陈小明"),
    Column("unit_name", "单位名称", "record", True, "The person's employer.", "福州市第一医院"),
    Column("unit_uscc", "统一社会信用代码", "record", True, "The unit's 18-character unified social credit code.",
           "12350100488100256T"),
    Column("unit_region", "单位所在地区", "record", True, "GB/T 2260 code in force in Fujian (350000 省直单位).",
           "350102"),
    Column("started_at", "开始时间", "sitting", True, "Beijing time YYYY-MM-DD HH:MM, or ISO 8601 with offset.",
           "2026-05-04 09:00"),
    Column("ended_at", "结束时间", "sitting", True, "Beijing time YYYY-MM-DD HH:MM, or ISO 8601 with offset.",
           "2026-05-04 11:30"),
    Column("sitting_mode", "学习方式", "sitting", False, "Mixed courses only, and required there: online 线上 or "
           "offline 线下.", ""),
    Column("media_minutes", "有效播放分钟", "sitting", False, "Online and live study: minutes of content actually "
           "played (whole seconds: 12.5 is 750 seconds).", "150"),
    Column("identity_passed", "人脸核验通过", "sitting", False, "Online and live study: face checks passed.", "3"),
    Column("identity_failed", "人脸核验失败", "sitting", False, "Online and live study: face checks failed (blank: "
           "0 when 人脸核验通过 is given).", "0"),
    Column("exam_questions", "考试题数", "record", False, "Online courses: the exam's number of questions.", "10"),
    Column("exam_correct", "答对题数", "record", False, "Questions answered correctly.", "9"),
    Column("exam_passed", "考试通过", "record", False, "是/否 (or true/false).", "是"),
)
BY_NAME = {c.name: c for c in COLUMNS}
_HEADER = {**{c.name.casefold(): c.name for c in COLUMNS}, **{c.alias: c.name for c in COLUMNS}}
# A record's fields, and the column a field of `schemas.RecordIn` comes from (problems name the column).
_FIELD_COLUMN = {
    "external_id": "external_id", "course_id": "course_code", "course_code": "course_code", "id_type": "id_type",
    "id_number": "id_number", "name": "name", "unit.name": "unit_name", "unit.uscc": "unit_uscc",
    "unit.region": "unit_region", "unit": "unit_name", "exam.questions": "exam_questions",
    "exam.correct": "exam_correct", "exam.passed": "exam_passed", "exam": "exam_questions",
    "started_at": "started_at", "ended_at": "ended_at", "mode": "sitting_mode", "media_seconds": "media_minutes",
    "identity_checks.passed": "identity_passed", "identity_checks.failed": "identity_failed",
    "identity_checks": "identity_passed",
}
RESULT_COLUMNS = ("结果 status", "认定学时 credited_hours", "记录编号 record_id", "规则 rule", "问题 problem",
                  "问题所在列 problem_column")


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int = 200_000
    # An XLSX is a zip: what it unpacks to is bounded too (a small file can unpack to gigabytes).
    max_unpacked_bytes: int = 512 * 1024 * 1024


@dataclass(slots=True)
class Sheet:
    """A roster as read: its format, the headers as written, which column each is, and its rows (spreadsheet
    row number, cells as text or None in header order)."""

    format: Literal["xlsx", "csv"]
    headers: list[str]
    columns: list[str]  # the column names (COLUMNS), in header order
    rows: list[tuple[int, list[str | None]]]
    # Cells whose text cannot be trusted, by (row index, column index): an ID number Excel stored as a number.
    flags: dict[tuple[int, int], CellError] = field(default_factory=dict)

    def index(self, name: str) -> int | None:
        try:
            return self.columns.index(name)
        except ValueError:
            return None


def _refuse(detail: str, rule: str, **where: Any) -> InvalidInput:
    return InvalidInput(detail, rule=rule, field="file", **{k: v for k, v in where.items() if v is not None})


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# ---- reading -------------------------------------------------------------------------------------

def read(data: bytes, limits: Limits = Limits()) -> Sheet:
    """Read an uploaded roster (XLSX, or CSV in UTF-8 or GB18030), or refuse it as a whole (422)."""
    if not data.strip():
        raise _refuse("the file is empty", "roster-empty")
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data, limits)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise _refuse("this is an Excel 97-2003 workbook (.xls); save it as .xlsx (Excel Workbook) or CSV",
                      "roster-not-a-spreadsheet")
    return _read_csv(data, limits)


def _cell_text(value: Any, row: int, column: int, header: str) -> str | None:
    """A cell as text; numbers as written (12, not 12.0); an Excel date-time as Beijing time."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("="):
            raise _formula(row, column, header)
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if value.second else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time | dt.timedelta):
        return str(value)
    raise _formula(row, column, header)  # an array or data-table formula


def _formula(row: int, column: int, header: str) -> InvalidInput:
    return _refuse(f"row {row}, column {header} ({_column_letter(column)}) holds a formula: a roster must hold "
                   "values (copy the sheet and paste it as values)", "roster-formula", row=row, column=header)


def _read_xlsx(data: bytes, limits: Limits) -> Sheet:
    """An XLSX workbook's first sheet. Its values are read by calamine (Rust: 100,000 rows in about a second,
    where openpyxl took 18); its formulas, which calamine reads as their cached values, are found in the
    sheet's XML first (`_formula_cell`)."""
    import python_calamine

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(i.file_size for i in archive.infolist()) > limits.max_unpacked_bytes:
            raise _refuse(f"the workbook unpacks to more than {limits.max_unpacked_bytes} bytes", "roster-too-large")
        sheet_path = _first_sheet(archive)
        formula = _formula_cell(archive, sheet_path)
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not book.sheet_names:
            raise _refuse("the workbook has no worksheet", "roster-empty")
        values = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Problem:
        raise
    except Exception as exc:  # not a zip, not an XLSX workbook, broken XML
        raise _refuse(f"not a readable XLSX workbook ({type(exc).__name__})", "roster-not-a-spreadsheet") from None
    if formula is not None:
        row, letters = formula
        column = _column_index(letters)
        first = next((r for r in values if any(v not in (None, "") for v in r)), [])
        header = str(first[column]).strip() if column < len(first) and first[column] not in (None, "") else letters
        raise _formula(row, column, header)
    return _rows_to_sheet("xlsx", iter(values), limits)


_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def _first_sheet(archive: zipfile.ZipFile) -> str:
    """The part name of the workbook's first sheet (through the package's relationships, as Excel finds it)."""
    from defusedxml import ElementTree

    def target(base: str, value: str) -> str:
        return value.lstrip("/") if value.startswith("/") else f"{base}{value}"

    office = next(r.get("Target", "") for r in ElementTree.fromstring(archive.read("_rels/.rels")).iter(_RELS)
                  if r.get("Type", "").endswith("/officeDocument"))
    workbook = target("", office)
    folder = workbook.rsplit("/", 1)[0] + "/" if "/" in workbook else ""
    rels_name = f"{folder}_rels/{workbook.rsplit('/', 1)[-1]}.rels"
    relations = {r.get("Id"): r.get("Target", "") for r in ElementTree.fromstring(archive.read(rels_name)).iter(_RELS)}
    first = next(ElementTree.fromstring(archive.read(workbook)).iter(_SHEET))
    return target(folder, relations[first.get(_REL_ID)])


_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")
_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\b[^>]*?\br=\"([A-Z]{1,3})([0-9]+)\"")


def _formula_cell(archive: zipfile.ZipFile, sheet_path: str) -> tuple[int, str] | None:
    """The first cell of the sheet holding a formula, as (row, column letters), or None; read in pieces."""
    carry = b""
    with archive.open(sheet_path) as part:
        while chunk := part.read(1 << 20):
            text = carry + chunk
            found = _FORMULA.search(text)
            if found:
                cells = list(_CELL.finditer(text, 0, found.start()))
                if cells:
                    return int(cells[-1].group(2)), cells[-1].group(1).decode()
                return 0, "A"
            carry = text[-8192:]  # a cell's opening tag and its formula may straddle two pieces
    return None


def _column_index(letters: str) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - 64
    return index - 1


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise _refuse("not a spreadsheet: a CSV file holds no NUL bytes (UTF-16 files are not accepted: save as "
                      "CSV UTF-8)", "roster-not-a-spreadsheet")
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _refuse("not a spreadsheet: the file is neither XLSX nor CSV in UTF-8 or GB18030",
                  "roster-not-a-spreadsheet")


def _read_csv(data: bytes, limits: Limits) -> Sheet:
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    # The delimiter that makes the most known headers of the first line (Excel writes ; or tab in some locales).
    delimiter = max(",\t;", key=lambda d: sum(h.strip().casefold() in _HEADER or h.strip() in _HEADER
                                              for h in first_line.split(d)))
    try:
        return _rows_to_sheet("csv", csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), limits)
    except csv.Error as exc:
        raise _refuse(f"not a readable CSV file: {exc}", "roster-not-a-spreadsheet") from None


def _rows_to_sheet(fmt: Literal["xlsx", "csv"], source: Iterator[Sequence[Any]], limits: Limits) -> Sheet:
    number = 0
    header_row: Sequence[Any] | None = None
    for raw in source:
        number += 1
        if any(v is not None and (not isinstance(v, str) or v.strip()) for v in raw):
            header_row = raw
            break
    if header_row is None:
        raise _refuse("the file has no header row and no rows", "roster-empty")
    headers, columns = _headers(header_row, number)
    width = len(headers)
    rows: list[tuple[int, list[str | None]]] = []
    flags: dict[tuple[int, int], CellError] = {}
    id_column = columns.index("id_number")
    for raw in source:
        number += 1
        cells = [_cell_text(raw[i] if i < len(raw) else None, number, i, headers[i] if i < width else "")
                 for i in range(max(width, len(raw)))]
        if not any(cells):
            continue  # blank rows are skipped wherever they are
        extra = next((i for i in range(width, len(cells)) if cells[i] is not None), None)
        if extra is not None:
            raise _refuse(f"row {number} has a value in column {_column_letter(extra)}, which has no header",
                          "roster-headers", row=number, column=_column_letter(extra))
        if len(rows) == limits.max_rows:
            raise _refuse(f"a roster holds at most {limits.max_rows} rows; split the file", "roster-too-many-rows",
                          row=number)
        if id_column < len(raw) and isinstance(raw[id_column], float):
            flags[(len(rows), id_column)] = CellError(
                "roster-id-number-as-number", "the ID number is stored as a number, which keeps only 15 digits: "
                "format the column as text and type the number again")
        rows.append((number, cells[:width]))
    if not rows:
        raise _refuse("the file has a header row but no rows", "roster-empty")
    return Sheet(fmt, headers, columns, rows, flags)


def _headers(raw: Sequence[Any], row: int) -> tuple[list[str], list[str]]:
    texts = [("" if v is None else str(v)).strip().lstrip("\ufeff") for v in raw]
    while texts and not texts[-1]:
        texts.pop()
    columns: list[str] = []
    for i, text in enumerate(texts):
        name = _HEADER.get(text.casefold()) or _HEADER.get(text)
        if name is None:
            raise _refuse(f"row {row}, column {_column_letter(i)}: {text!r} is not a roster column; the columns are "
                          f"{', '.join(c.name for c in COLUMNS)} (or their Chinese names: GET /v1/rosters/template.xlsx)",
                          "roster-headers", row=row, column=text or _column_letter(i))
        if name in columns:
            raise _refuse(f"row {row}, column {_column_letter(i)}: {text!r} repeats the column {name}",
                          "roster-headers", row=row, column=text)
        columns.append(name)
    missing = [c for c in COLUMNS if c.required and c.name not in columns]
    if missing:
        raise _refuse(f"row {row}: the header lacks the required column(s) "
                      f"{', '.join(f'{c.name} ({c.alias})' for c in missing)}", "roster-headers", row=row,
                      column=missing[0].name)
    return texts, columns


# ---- rows -> records -------------------------------------------------------------------------------

_LOCAL_TIME = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_TRUE = {"是", "true", "yes", "y", "1", "通过"}
_FALSE = {"否", "false", "no", "n", "0", "不通过", "未通过"}
_ID_TYPES = {"ric": "RIC", "居民身份证": "RIC", "身份证": "RIC", "passport": "passport", "护照": "passport",
             "hk_macau_permit": "hk_macau_permit", "港澳居民来往内地通行证": "hk_macau_permit",
             "港澳通行证": "hk_macau_permit", "taiwan_permit": "taiwan_permit",
             "台湾居民来往大陆通行证": "taiwan_permit", "台胞证": "taiwan_permit"}
_MODES = {"online": "online", "线上": "online", "在线": "online", "网络": "online", "offline": "offline",
          "线下": "offline", "面授": "offline"}


class CellError(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule, self.detail = rule, detail


def parse_time(text: str) -> dt.datetime:
    match = _LOCAL_TIME.match(text)
    try:
        if match:
            y, mo, d, h, mi, s = match.groups()
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), tzinfo=BEIJING)
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise CellError("roster-time", f"{text!r} is not a time: Beijing time YYYY-MM-DD HH:MM, or ISO 8601 with "
                                       "an offset (2026-05-04T09:00:00+08:00)")
    return value


_LARGEST = Decimal(10) ** 9  # larger numbers are no count of anything a roster holds


def _whole(text: str, scale: int, what: str) -> int:
    """`text` × `scale` as a whole number, bounded, or CellError naming `what` it should be."""
    try:
        number = Decimal(text) * scale
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or abs(number) >= _LARGEST or number != number.to_integral_value():
        raise CellError("roster-number", f"{text!r} is not {what}")
    return int(number)


def parse_int(text: str) -> int:
    return _whole(text, 1, "a whole number")


def parse_minutes(text: str) -> int:
    """Minutes as seconds: 150 -> 9000, 12.5 -> 750; a fraction of a second is refused."""
    return _whole(text, 60, "a number of minutes in whole seconds")


def parse_bool(text: str) -> bool:
    folded = text.casefold()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise CellError("roster-boolean", f"{text!r} is neither 是 nor 否 (true/false)")


def _choice(table: dict[str, str], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = table.get(text.casefold()) or table.get(text)
        if value is None:
            raise CellError("roster-choice", f"{text!r} is not a {what}: one of {', '.join(sorted(set(table.values())))}")
        return value
    return parse


_PARSERS: dict[str, Callable[[str], Any]] = {
    "id_type": _choice(_ID_TYPES, "document type"), "started_at": parse_time, "ended_at": parse_time,
    "sitting_mode": _choice(_MODES, "study mode"), "media_minutes": parse_minutes, "identity_passed": parse_int,
    "identity_failed": parse_int, "exam_questions": parse_int, "exam_correct": parse_int, "exam_passed": parse_bool,
}
_RECORD_COLUMNS = [c.name for c in COLUMNS if c.level == "record"]


@dataclass(slots=True)
class Group:
    """The rows of one record (sharing an external id), in file order."""

    external_id: str
    rows: list[int] = field(default_factory=list)  # indexes into Sheet.rows
    person: str = ""  # the ID number as written (upper case, no spaces): what splits a roster into parts


def group(sheet: Sheet) -> list[Group]:
    """The roster's records, in the order of their first rows; a row without an external id is a record alone
    (refused for it)."""
    ext, idn = sheet.index("external_id"), sheet.index("id_number")
    assert ext is not None and idn is not None
    groups: dict[str, Group] = {}
    out: list[Group] = []
    for i, (_, cells) in enumerate(sheet.rows):
        key = cells[ext]
        if key is None:
            out.append(Group("", [i], (cells[idn] or "").upper()))
            continue
        if key not in groups:
            groups[key] = Group(key, [], re.sub(r"\s", "", cells[idn] or "").upper())
            out.append(groups[key])
        groups[key].rows.append(i)
    return out


@dataclass(frozen=True, slots=True)
class Where:
    row: int  # the spreadsheet's row number
    column: str  # the header as written in the file


def locate(sheet: Sheet, grp: Group, field_path: str) -> Where:
    """The row and column a field of the record (`sittings.2.started_at`, `unit.uscc`) came from."""
    parts = field_path.split(".")
    row_index = grp.rows[0]
    if parts and parts[0] == "sittings" and len(parts) > 1 and parts[1].isdigit():
        n = int(parts[1])
        row_index = grp.rows[n] if n < len(grp.rows) else grp.rows[-1]
        parts = parts[2:]
    name = _FIELD_COLUMN.get(".".join(parts)) or _FIELD_COLUMN.get(".".join(parts[:1])) or "external_id"
    index = sheet.index(name)
    return Where(sheet.rows[row_index][0], sheet.headers[index] if index is not None else BY_NAME[name].name)


def annotate(problem: dict[str, Any], sheet: Sheet, grp: Group) -> dict[str, Any]:
    """A problem document of the record, with the row and the column of the field it names (each error too)."""
    body = dict(problem)
    if body.get("field") and "row" not in body:
        where = locate(sheet, grp, body["field"])
        body["row"], body["column"] = where.row, where.column
    if body.get("errors"):
        errors = []
        for err in body["errors"]:
            if "row" in err:
                errors.append(err)
                continue
            where = locate(sheet, grp, err.get("field", ""))
            errors.append({**err, "row": where.row, "column": where.column})
        body["errors"] = errors
    return body


def record(sheet: Sheet, grp: Group, course_ids: dict[str, Any]) -> schemas.RecordIn:
    """The record a group of rows stands for, or InvalidInput naming its field (`annotate` adds the row and
    column). `course_ids`: the base's course codes and their ids."""
    errors: list[FieldError] = []

    def value(i: int, name: str) -> Any:
        index = sheet.index(name)
        text = None if index is None else sheet.rows[i][1][index]
        if text is None:
            return None
        flag = sheet.flags.get((i, index)) if sheet.flags and index is not None else None
        if flag is not None:
            errors.append(FieldError(_record_field(name, grp.rows.index(i)), flag.rule, flag.detail))
            return None
        parse = _PARSERS.get(name)
        if parse is None:
            return text
        try:
            return parse(text)
        except CellError as exc:
            errors.append(FieldError(_record_field(name, grp.rows.index(i)), exc.rule, exc.detail))
            return None

    first = grp.rows[0]
    fields = {name: value(first, name) for name in _RECORD_COLUMNS}
    for column in COLUMNS:
        name = _record_field(column.name, 0)
        if column.level == "record" and column.required and fields[column.name] is None \
                and not any(e["field"] == name for e in errors):
            errors.append(FieldError(name, "required", f"{column.alias} ({column.name}) is required"))
    for i in grp.rows[1:]:  # a later row may leave a record's column blank, or repeat it
        for name in _RECORD_COLUMNS:
            index = sheet.index(name)
            text = None if index is None else sheet.rows[i][1][index]
            if text is not None and text != sheet.rows[first][1][index]:  # type: ignore[index]
                mismatch = FieldError(_record_field(name, grp.rows.index(i)), "roster-record-mismatch",
                                      f"rows of one external_id are one record: row {sheet.rows[i][0]}'s {name} "
                                      f"differs from row {sheet.rows[first][0]}'s")
                # pinned to its own row (a record's field is otherwise located on the record's first row)
                cast(dict[str, Any], mismatch).update(row=sheet.rows[i][0], column=sheet.headers[index])  # type: ignore[index]
                errors.append(mismatch)
    sittings = []
    for n, i in enumerate(grp.rows):
        passed, failed = value(i, "identity_passed"), value(i, "identity_failed")
        sitting: dict[str, Any] = {"started_at": value(i, "started_at"), "ended_at": value(i, "ended_at")}
        minutes = value(i, "media_minutes")
        if minutes is not None:
            sitting["media_seconds"] = minutes
        if passed is not None or failed is not None:
            sitting["identity_checks"] = {"passed": passed or 0, "failed": failed or 0}
        mode = value(i, "sitting_mode")
        if mode is not None:
            sitting["mode"] = mode
        for name in ("started_at", "ended_at"):
            if sitting[name] is None and not any(e["field"] == f"sittings.{n}.{name}" for e in errors):
                errors.append(FieldError(f"sittings.{n}.{name}", "required",
                                         f"{BY_NAME[name].alias} ({name}) is required"))
        sittings.append(sitting)
    code = fields["course_code"]
    course_id = course_ids.get(code) if code is not None else None
    if code is not None and course_id is None:
        errors.append(FieldError("course_code", "course-unknown", f"this base has no course coded {code!r}"))
    exam = [fields["exam_questions"], fields["exam_correct"], fields["exam_passed"]]
    body: dict[str, Any] = {
        "external_id": fields["external_id"], "course_id": course_id, "id_type": fields["id_type"],
        "id_number": fields["id_number"], "name": fields["name"],
        "unit": {"name": fields["unit_name"], "uscc": fields["unit_uscc"], "region": fields["unit_region"]},
        "sittings": sittings,
    }
    if any(v is not None for v in exam):
        for name, v in zip(("exam_questions", "exam_correct", "exam_passed"), exam, strict=True):
            if v is None and not any(e["field"] == _record_field(name, 0) for e in errors):
                errors.append(FieldError(_record_field(name, 0), "required",
                                         "an exam needs 考试题数, 答对题数 and 考试通过 together"))
        body["exam"] = {"questions": exam[0], "correct": exam[1], "passed": exam[2]}
    if not errors:
        try:
            return schemas.RecordIn.model_validate(body)
        except ValidationError as exc:
            errors = field_errors(exc.errors())
    # A field already refused for its cell is not refused again as missing.
    named = {e["field"] for e in errors if e["rule"] != "required"}
    errors = [e for e in errors if e["rule"] != "required" or e["field"] not in named] or errors
    first_error = errors[0]
    detail = first_error["detail"] if len(errors) == 1 else f"{first_error['detail']} (and {len(errors) - 1} more)"
    where: dict[str, Any] = {k: first_error[k] for k in ("row", "column") if k in first_error}
    raise InvalidInput(f"{first_error['field']}: {detail}", rule=first_error["rule"], field=first_error["field"],
                       errors=errors, **where)


def _record_field(name: str, sitting: int) -> str:
    """The field of `schemas.RecordIn` a column fills (`course_code` stays itself: the sheet names courses by
    code)."""
    return {
        "unit_name": "unit.name", "unit_uscc": "unit.uscc", "unit_region": "unit.region",
        "exam_questions": "exam.questions", "exam_correct": "exam.correct", "exam_passed": "exam.passed",
        "started_at": f"sittings.{sitting}.started_at", "ended_at": f"sittings.{sitting}.ended_at",
        "sitting_mode": f"sittings.{sitting}.mode", "media_minutes": f"sittings.{sitting}.media_seconds",
        "identity_passed": f"sittings.{sitting}.identity_checks.passed",
        "identity_failed": f"sittings.{sitting}.identity_checks.failed",
    }.get(name, name)


def stored_cells(sheet: Sheet, cells: list[str | None]) -> list[str | None]:
    """A row's cells as they are kept for the answered sheet: the ID number masked (never stored in clear)."""
    index = sheet.index("id_number")
    if index is None or cells[index] is None:
        return cells
    out = list(cells)
    out[index] = mask_id_number(str(cells[index]))
    return out


# ---- writing -------------------------------------------------------------------------------------

def template_csv() -> bytes:
    """The CSV template: the header row, UTF-8 with a byte order mark (so that Excel opens it as UTF-8)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([c.name for c in COLUMNS])
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def template_xlsx() -> bytes:
    """The XLSX template: the roster sheet (its header row; 证件号码 and the times formatted as text), and a
    second sheet, 说明, that explains each column with an example."""
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "roster"
    sheet.append([c.name for c in COLUMNS])
    for i, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=i)
        cell.font = Font(bold=True)
        letter = _column_letter(i - 1)
        sheet.column_dimensions[letter].width = max(14, len(column.example) + 4)
        if column.name in ("id_number", "external_id", "course_code", "unit_uscc", "unit_region", "started_at",
                           "ended_at"):
            for row in range(2, 1002):  # typed as text, so that Excel keeps every digit and the time as written
                sheet.cell(row=row, column=i).number_format = "@"
    sheet.freeze_panes = "A2"
    notes = book.create_sheet("说明")
    notes.append(["column", "中文列名", "required 必填", "level", "description 说明", "example 示例"])
    for c in COLUMNS:
        notes.append([c.name, c.alias, "是" if c.required else "否", c.level, c.description, c.example])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    notes.column_dimensions["E"].width = 80
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def answered_xlsx(headers: list[str], rows: Iterator[tuple[list[str | None], list[Any]]]) -> bytes:
    """The uploaded sheet (the ID numbers masked) with the result columns added to each row."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("roster")
    sheet.append([*headers, *RESULT_COLUMNS])
    for cells, result in rows:
        sheet.append([*cells, *result])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
