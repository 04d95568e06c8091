"""Rosters from spreadsheets (POST /v1/rosters): every row answered as the JSON batch answers its record, a dry
run that writes nothing and answers the same, re-uploads that replay, and bad files refused naming the row and
column."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.factories import approved_course, at, online_sitting, record_body, ric
from tests.support.rosters import CHINESE, COLUMNS, answered, rows_of, to_csv, to_xlsx, upload

CODE = "C-ROSTER-5"
TZ = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
async def coded_course(catalog, base, fuzhou):
    return await approved_course(catalog, base, fuzhou, topic="5", hours=7, mode="online", code=CODE)


def two_records(course_id):
    """One record of two sittings (two rows, 315 minutes: 7 学时 credited), one of one sitting (90 minutes:
    partial, 2 of 7)."""
    first = record_body(course_id, ric(1), [online_sitting(at("09:00"), at("11:00")),
                                             online_sitting(at("14:00"), at("17:15"))], external_id="R-1")
    second = record_body(course_id, ric(2), [online_sitting(at("09:00"), at("10:30"))], external_id="R-2",
                         name="林小红")
    return [first, second]


async def ledger_count(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT count(*) FROM hours_ledger.records"))).scalar_one()


def without_ids(rows):
    return [{**r, "result": None if r["result"] is None else {**r["result"], "record_id": None}} for r in rows]


async def test_templates_name_every_column(ledger):
    xlsx = await ledger.get("/v1/rosters/template.xlsx")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert [c.value for c in book.worksheets[0][1]] == COLUMNS
    notes = {row[0]: row[1] for row in book["说明"].iter_rows(min_row=2, values_only=True)}
    assert list(notes.values()) == CHINESE
    csv_template = await ledger.get("/v1/rosters/template.csv")
    assert csv_template.content.startswith(b"\xef\xbb\xbf")
    assert csv_template.content[3:].decode().strip().split(",") == COLUMNS


async def test_the_template_filled_in_credits_and_is_answered_per_row(ledger, base, coded_course, engine):
    records = two_records(coded_course)
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    view = await answered(ledger, base, to_xlsx(rows, CHINESE), "名单.xlsx")
    assert view["status"] == "done" and view["rows_total"] == 3 and view["records_total"] == 2
    assert view["rows_done"] == 3 and view["counts"] == {"credited": 2, "partial": 1, "not_credited": 0,
                                                         "replayed": 0, "refused": 0}
    assert [(r["row"], r["external_id"], r["status"]) for r in view["rows"]] == [
        (2, "R-1", "credited"), (3, "R-1", "credited"), (4, "R-2", "partial")]
    assert view["rows"][0]["result"] == view["rows"][1]["result"]  # two rows, one record
    assert view["rows"][0]["result"]["credited_hours"] == 7 and view["rows"][2]["result"]["credited_hours"] == 2
    record = await ledger.get(f"/v1/records/{view['rows'][2]['result']['record_id']}", headers=base.headers)
    assert record.status_code == 200
    assert await ledger_count(engine) == 2


async def test_a_dry_run_writes_nothing_and_answers_what_the_upload_then_answers(ledger, base, coded_course, engine):
    records = two_records(coded_course)
    # A third record of the same person as the first, the same day: the daily limit is decided across rows.
    records.append(record_body(coded_course, ric(1), [online_sitting(at("18:00"), at("23:30"))], external_id="R-3"))
    data = to_csv([r for rec in records for r in rows_of(rec, CODE)])
    rehearsed = await answered(ledger, base, data, dry_run=True)
    assert rehearsed["dry_run"] is True and rehearsed["status"] == "done"
    assert await ledger_count(engine) == 0
    async with engine.connect() as conn:  # no person either
        assert (await conn.execute(sa.text("SELECT count(*) FROM hours_ledger.people"))).scalar_one() == 0
    real = await answered(ledger, base, data)
    assert without_ids(real["rows"]) == without_ids(rehearsed["rows"])
    assert real["counts"] == rehearsed["counts"]
    assert await ledger_count(engine) == 3
    again = await answered(ledger, base, data)  # the same file again: every row replays, nothing new
    assert {r["status"] for r in again["rows"]} == {"replayed"}
    assert [r["result"] for r in again["rows"]] == [r["result"] for r in real["rows"]]
    assert await ledger_count(engine) == 3
    # A dry run now answers the replays too.
    assert {r["status"] for r in (await answered(ledger, base, data, dry_run=True))["rows"]} == {"replayed"}


async def test_a_spreadsheet_is_answered_as_the_json_batch_answers_the_same_records(ledger, base, coded_course):
    records = two_records(coded_course)
    records.append(record_body(coded_course, ric(1), [online_sitting(at("18:00"), at("23:30"))], external_id="R-3"))
    records.append(record_body(coded_course, ric(3), [online_sitting(at("09:00"), at("10:00"), passed=0)],
                               external_id="R-4"))
    rehearsed = await answered(ledger, base, to_xlsx([r for rec in records for r in rows_of(rec, CODE)]), "r.xlsx",
                               dry_run=True)
    batch = await ledger.post("/v1/records/batch", json={"records": records}, headers=base.headers)
    items = batch.json()["results"]
    by_record = {}
    for row in rehearsed["rows"]:
        by_record.setdefault(row["external_id"], row)
    assert len(by_record) == len(items) == 4
    for item, record in zip(items, records, strict=True):
        row = by_record[record["external_id"]]
        expected = {201: ("credited", "partial", "not_credited"), 200: ("replayed",)}.get(item["status"], ("refused",))
        assert row["status"] in expected
        if item["result"] is not None:
            assert {**row["result"], "record_id": None} == {**item["result"], "record_id": None}
            assert row["status"] == item["result"]["status"]
        else:
            assert {k: v for k, v in row["problem"].items() if k not in ("row", "column", "errors")} == \
                {k: v for k, v in item["problem"].items() if k != "errors"}
    # The JSON batch wrote them: the same sheet uploaded now replays each of them, with the batch's results.
    replayed = await answered(ledger, base, to_csv([r for rec in records for r in rows_of(rec, CODE)]))
    for row in replayed["rows"]:
        item = items[[r["external_id"] for r in records].index(row["external_id"])]
        if item["result"] is not None:
            assert row["status"] == "replayed" and row["result"] == item["result"]


async def test_a_refused_row_names_its_row_and_column_and_loses_no_other(ledger, base, coded_course, engine):
    records = two_records(coded_course)
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    rows[1]["started_at"] = "2026-05-04 25:00"  # the second sitting of R-1
    rows.append({**rows[2], "external_id": "R-9", "course_code": "NO-SUCH-CODE"})
    rows.append({**rows[2], "external_id": "R-10", "exam_passed": "也许"})
    view = await answered(ledger, base, to_csv(rows, CHINESE))
    status = {r["row"]: r for r in view["rows"]}
    assert status[2]["status"] == status[3]["status"] == "refused"  # both rows of R-1: one record
    problem = status[2]["problem"]
    assert problem["type"] == "/problems/roster-time" and problem["field"] == "sittings.1.started_at"
    assert (problem["row"], problem["column"]) == (3, "开始时间")
    assert status[4]["status"] == "partial"
    assert status[5]["problem"]["type"] == "/problems/course-unknown"
    assert (status[5]["problem"]["row"], status[5]["problem"]["column"]) == (5, "课程编号")
    assert status[6]["problem"]["type"] == "/problems/roster-boolean"
    assert status[6]["problem"]["column"] == "考试通过"
    assert await ledger_count(engine) == 1


async def test_ledger_refusals_name_the_row_and_column_of_the_field(ledger, base, coded_course):
    # The ledger's own rules, after the sheet was read: a sitting of a mixed course's mode on an online course,
    # an exam of too few questions.
    record = record_body(coded_course, ric(4), [online_sitting(at("09:00"), at("10:00")),
                                                online_sitting(at("09:30"), at("10:30"))], external_id="R-5",
                         exam={"questions": 5, "correct": 5, "passed": True})
    view = await answered(ledger, base, to_csv(rows_of(record, CODE)))
    problem = view["rows"][0]["problem"]
    assert view["rows"][0]["status"] == view["rows"][1]["status"] == "refused"
    assert problem["status"] == 422 and "row" in problem and "column" in problem
    for error in problem["errors"]:
        assert error["row"] in (2, 3) and error["column"] in COLUMNS


async def test_rows_sharing_an_external_id_must_agree_on_the_record(ledger, base, coded_course):
    record = two_records(coded_course)[0]
    rows = rows_of(record, CODE)
    rows[1]["name"] = "别人"
    view = await answered(ledger, base, to_csv(rows))
    problem = view["rows"][0]["problem"]
    assert problem["type"] == "/problems/roster-record-mismatch"
    assert (problem["row"], problem["column"]) == (3, "name")
    rows[1] = {**rows[1], **{c: None for c in ("course_code", "id_type", "id_number", "name", "unit_name",
                                              "unit_uscc", "unit_region")}}  # blank on the later row: fine
    assert {r["status"] for r in (await answered(ledger, base, to_csv(rows)))["rows"]} == {"credited"}


async def test_the_answered_sheet_adds_the_answers_and_masks_the_id_numbers(ledger, base, coded_course):
    records = two_records(coded_course)
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    rows[3 - 1]["unit_region"] = "110101"  # Beijing: refused
    view = await answered(ledger, base, to_xlsx(rows), "fuzhou-may.xlsx")
    sheet = await ledger.get(f"/v1/rosters/{view['id']}/result.xlsx", headers=base.headers)
    assert sheet.status_code == 200
    assert 'filename="fuzhou-may-result.xlsx"' in sheet.headers["content-disposition"]
    values = list(openpyxl.load_workbook(io.BytesIO(sheet.content)).worksheets[0].iter_rows(values_only=True))
    assert list(values[0][:len(COLUMNS)]) == COLUMNS and values[0][len(COLUMNS)] == "结果 status"
    assert [v[len(COLUMNS)] for v in values[1:]] == ["credited", "credited", "refused"]
    assert values[1][len(COLUMNS) + 1] == 7 and values[3][len(COLUMNS) + 3] == "string-pattern-mismatch"
    assert values[3][len(COLUMNS) + 5] == "unit_region"
    assert all("*" in v[3] and ric(1) not in v for v in values[1:])
    assert ric(1).encode() not in sheet.content and ric(2).encode() not in sheet.content


async def test_an_id_number_stored_as_a_number_refuses_its_row(ledger, base, coded_course):
    records = two_records(coded_course)
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    rows[2]["id_number"] = float(rows[2]["id_number"][:17])  # what Excel does to a typed number
    view = await answered(ledger, base, to_xlsx(rows), "r.xlsx")
    assert view["rows"][2]["problem"]["type"] == "/problems/roster-id-number-as-number"
    assert view["rows"][2]["problem"]["column"] == "id_number"
    assert view["counts"]["credited"] == 2


async def test_gb18030_csv_and_semicolons(ledger, base, coded_course):
    rows = [r for rec in two_records(coded_course) for r in rows_of(rec, CODE)]
    view = await answered(ledger, base, to_csv(rows, CHINESE, encoding="gb18030"))
    assert view["counts"]["refused"] == 0, view["rows"]
    semicolons = to_csv(rows, COLUMNS).decode().replace(",", ";").encode()
    assert (await answered(ledger, base, semicolons))["counts"]["replayed"] == 3


@pytest.mark.parametrize(("data", "rule", "where"), [
    (b"%PDF-1.7\n\x00\x01binary", "roster-not-a-spreadsheet", None),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "roster-not-a-spreadsheet", None),
    (b"PK\x03\x04 not really a zip", "roster-not-a-spreadsheet", None),
    (b"", "roster-empty", None),
    (",".join(COLUMNS).encode() + b"\r\n\r\n", "roster-empty", None),
    (b"external_id,course_code,id_type,id_number,name,unit_name,unit_uscc,unit_region,started_at,ended_at,remark\n",
     "roster-headers", (1, "remark")),
    (b"external_id,course_code,id_type,id_number,name,unit_name,unit_uscc,unit_region,started_at\nA,B,C\n",
     "roster-headers", (1, "ended_at")),
    (b"external_id,external_id\n", "roster-headers", (1, "external_id")),
    (",".join(COLUMNS).encode() + b"\nR-1,C,RIC,=1+1\n", "roster-formula", (2, "id_number")),
    (",".join(COLUMNS).encode() + b"\n" + b"," * 16 + b"\nR-1" + b"," * 17 + b"extra\n", "roster-headers",
     (3, "R")),
])
async def test_bad_files_are_refused_naming_the_row_and_column(ledger, base, data, rule, where):
    response = await upload(ledger, base, data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"/problems/{rule}" and problem["field"] == "file"
    if where is not None:
        assert (problem["row"], problem["column"]) == where


async def test_a_formula_in_a_workbook_is_refused(ledger, base):
    book = openpyxl.Workbook()
    book.active.append(COLUMNS)
    book.active.append(["R-1", "C", "RIC", "350102199003071234", "=CONCAT(\"陈\",\"明\")"])
    out = io.BytesIO()
    book.save(out)
    problem = (await upload(ledger, base, out.getvalue(), "r.xlsx")).json()
    assert problem["type"] == "/problems/roster-formula" and (problem["row"], problem["column"]) == (2, "name")


async def test_size_and_row_limits(catalog, base, settings, coded_course):
    from hours_ledger.app import create_app

    from tests.support.http import running

    rows = [r for rec in two_records(coded_course) for r in rows_of(rec, CODE)]
    small = settings.model_copy(update={"roster_max_bytes": 1024, "roster_max_rows": 2})
    async with running(create_app(small)) as ledger:
        too_big = await upload(ledger, base, to_csv(rows * 10))
        assert too_big.status_code == 413 and too_big.json()["type"] == "/problems/payload-too-large"
        too_many = await upload(ledger, base, to_csv(rows))
        assert too_many.status_code == 422 and too_many.json()["type"] == "/problems/roster-too-many-rows"
        assert too_many.json()["row"] == 4


async def test_only_the_uploading_base_reads_its_roster(ledger, catalog, base, fuzhou, coded_course, admin):
    from tests.support.factories import approved_base, base_form, uscc

    view = await answered(ledger, base, to_csv(rows_of(two_records(coded_course)[0], CODE)))
    other = await approved_base(catalog, fuzhou, base_form(unit_name="另一个教育科技有限公司", uscc=uscc(777)))
    for path in (f"/v1/rosters/{view['id']}", f"/v1/rosters/{view['id']}/result.xlsx"):
        assert (await ledger.get(path, headers=other.headers)).status_code == 404
        assert (await ledger.get(path)).status_code == 401
        assert (await ledger.get(path, headers=admin.headers)).status_code == 403
    staff = await upload(ledger, base, b"x", headers=admin.headers)
    assert staff.status_code == 403
    assert (await ledger.post("/v1/rosters", content=b"{}", headers={
        **base.headers, "Content-Type": "application/json"})).status_code == 415
    no_file = await ledger.post("/v1/rosters", data={"other": "1"}, files={"x": ("a", b"b")}, headers=base.headers)
    assert no_file.status_code == 422 and no_file.json()["field"] == "file"


async def test_rows_are_paged_and_filtered(ledger, base, coded_course):
    records = [record_body(coded_course, ric(10 + i), [online_sitting(at("09:00"), at("09:50"))],
                           external_id=f"P-{i}") for i in range(7)]
    rows = [r for rec in records for r in rows_of(rec, CODE)]
    rows[4]["unit_region"] = "110101"
    view = await answered(ledger, base, to_csv(rows))
    page = (await ledger.get(f"/v1/rosters/{view['id']}", params={"limit": 3}, headers=base.headers)).json()
    assert [r["row"] for r in page["rows"]] == [2, 3, 4] and page["next_after_row"] == 4
    page = (await ledger.get(f"/v1/rosters/{view['id']}", params={"limit": 3, "after_row": 4},
                             headers=base.headers)).json()
    assert [r["row"] for r in page["rows"]] == [5, 6, 7]
    refused = (await ledger.get(f"/v1/rosters/{view['id']}", params={"status": "refused"},
                                headers=base.headers)).json()
    assert [r["row"] for r in refused["rows"]] == [6] and refused["next_after_row"] is None
    bad = await ledger.get(f"/v1/rosters/{view['id']}", params={"status": "maybe"}, headers=base.headers)
    assert bad.status_code == 422


# ---- the property: a spreadsheet is answered as the JSON batch answers the same records --------------

_EXAMPLE = iter(range(10**6))

sittings_strategy = st.lists(st.tuples(st.integers(0, 2), st.integers(7 * 60, 20 * 60), st.integers(20, 300),
                                       st.sampled_from([1.0, 1.0, 0.5, 0.75]), st.integers(0, 3), st.integers(0, 2),
                                       st.sampled_from([None] * 8 + ["online", "offline"])),
                             min_size=1, max_size=3)
record_strategy = st.tuples(st.integers(0, 2), sittings_strategy,
                            st.sampled_from([(10, 9, True)] * 6 + [None, (5, 5, True), (12, 3, False),
                                                                   (10, 10, True)]),
                            st.sampled_from(["陈小明", "陈小明", "林小红"]), st.booleans())


def _record(course_id, example: int, index: int, spec) -> dict:
    person, sittings, exam, name, repeat_id = spec
    day0 = dt.datetime(2026, 6, 1, tzinfo=TZ)
    out = []
    for day, start, minutes, share, passed, failed, mode in sittings:
        begin = day0 + dt.timedelta(days=day, minutes=start)
        end = begin + dt.timedelta(minutes=minutes)
        sitting = {"started_at": begin.isoformat(), "ended_at": end.isoformat(),
                   "media_seconds": int(minutes * 60 * share) // 30 * 30,
                   "identity_checks": {"passed": passed, "failed": failed}}
        if mode is not None:
            sitting["mode"] = mode
        out.append(sitting)
    return record_body(course_id, ric(example * 3 + person, birth=f"19{60 + example // 300 % 40}0101"), out,
                       exam=None if exam is None else {"questions": exam[0], "correct": exam[1], "passed": exam[2]},
                       name=name, external_id=f"H{example}-{0 if repeat_id and index else index}") \
        | ({} if exam is not None else {"exam": None})


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(specs=st.lists(record_strategy, min_size=1, max_size=6), xlsx=st.booleans(), chinese=st.booleans())
async def test_property_a_sheet_is_answered_as_the_json_batch(ledger, base, coded_course, specs, xlsx, chinese):
    example = next(_EXAMPLE)
    records = [_record(coded_course, example, i, spec) for i, spec in enumerate(specs)]
    # Rows sharing an external id are one record in a sheet: a repeated id is sent once, as the JSON would be.
    unique = list({r["external_id"]: r for r in reversed(records)}.values())[::-1]
    rows = [r for rec in unique for r in rows_of(rec, CODE)]
    headers = CHINESE if chinese else COLUMNS
    data = to_xlsx(rows, headers) if xlsx else to_csv(rows, headers)
    rehearsed = await answered(ledger, base, data, "p.xlsx" if xlsx else "p.csv", dry_run=True)
    batch = (await ledger.post("/v1/records/batch", json={"records": unique}, headers=base.headers)).json()["results"]
    first_rows = {}
    for row in rehearsed["rows"]:
        first_rows.setdefault(row["external_id"], row)
    for record, item in zip(unique, batch, strict=True):
        row = first_rows[record["external_id"]]
        if item["result"] is None:
            assert row["status"] == "refused", (record, row, item)
            assert row["problem"]["type"] == item["problem"]["type"] and row["problem"]["detail"] == \
                item["problem"]["detail"]
        else:
            assert row["status"] == item["result"]["status"], (record, row, item)
            assert {**row["result"], "record_id": None} == {**item["result"], "record_id": None}
    real = await answered(ledger, base, data, "p.xlsx" if xlsx else "p.csv")
    for row in real["rows"]:
        item = batch[[r["external_id"] for r in unique].index(row["external_id"])]
        if item["result"] is None:
            assert row["status"] == "refused"
        else:
            assert row["status"] == "replayed" and row["result"] == item["result"]


async def test_an_upload_stopped_by_a_restart_is_interrupted_and_uploading_again_completes_it(
        settings, catalog, base, coded_course, engine):
    from hours_ledger.app import create_app

    from tests.support.http import running
    from tests.support.rosters import wait

    bodies = [record_body(coded_course, ric(100 + i), [online_sitting(at("09:00"), at("09:50"))],
                          external_id=f"I-{i}") for i in range(400)]
    data = to_csv([r for rec in bodies for r in rows_of(rec, CODE)])
    async with running(create_app(settings)) as ledger:
        accepted = (await upload(ledger, base, data)).json()
        # The service stops at once (a restart): its uploads in progress are cancelled.
    async with running(create_app(settings)) as ledger:
        view = await wait(ledger, base, accepted["id"])
        assert view["status"] == "interrupted" and view["rows_done"] < 400
        again = await answered(ledger, base, data)
        assert again["status"] == "done" and again["rows_done"] == 400
        assert again["counts"]["replayed"] == view["counts"]["partial"]
        assert again["counts"]["replayed"] + again["counts"]["partial"] == 400
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT count(*) FROM hours_ledger.records")) == 400


async def test_an_upload_whose_process_vanished_is_reported_interrupted(ledger, base, coded_course, engine):
    view = await answered(ledger, base, to_csv(rows_of(two_records(coded_course)[0], CODE)))
    async with engine.begin() as conn:  # as a process killed mid-way leaves it: processing, no heartbeat since
        await conn.execute(sa.text("UPDATE hours_ledger.rosters SET status = 'processing', "
                                   "heartbeat_at = now() - interval '3 minutes' WHERE id = :id"), {"id": view["id"]})
    stale = (await ledger.get(f"/v1/rosters/{view['id']}", headers=base.headers)).json()
    assert stale["status"] == "interrupted"
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE hours_ledger.rosters SET heartbeat_at = now() WHERE id = :id"),
                           {"id": view["id"]})
    live = await ledger.get(f"/v1/rosters/{view['id']}/result.xlsx", headers=base.headers)
    assert live.status_code == 409 and live.json()["type"] == "/problems/roster-not-finished"


async def test_a_suspended_base_uploads_nothing(ledger, catalog, base, coded_course, admin):
    suspended = await catalog.post(f"/v1/bases/{base.id}/suspension", json={"reason": "审计发现代学"},
                                   headers=admin.headers)
    assert suspended.status_code in (200, 201), suspended.text
    response = await upload(ledger, base, to_csv(rows_of(two_records(coded_course)[0], CODE)))
    assert response.status_code == 403 and response.json()["type"] == "/problems/base-suspended"
