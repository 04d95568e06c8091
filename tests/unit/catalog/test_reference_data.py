"""The reference data in the repository says exactly what the published notices say.

The notices are kept verbatim under catalog/reference/sources/; these tests parse them independently of
the JSON files and compare every topic, every authority, every field and every number.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from catalog.reference import authorities_document, plans_document, source_text

NOTICE = source_text("000_6b7c082daaecd385.txt")
CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
# 省人社厅's third "field" is the delegation mechanism itself, modelled as delegations (see authorities.json).
DELEGATION_CLAUSE = "受行业主管部门委托管理的其他领域"


def _directory_rows() -> dict[int, tuple[str, list[str], str]]:
    rows: dict[int, tuple[str, list[str], str]] = {}
    for line in NOTICE.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) >= 4 and cells[0].isdigit():          # 序号 省级行业主管部门 专业技术领域 从业人员范围
            row, authority, fields, scope = int(cells[0]), cells[1], cells[2], cells[3]
        elif len(cells) >= 4 and cells[-1].isdigit():        # the page printed right to left
            cells = [c for c in cells if c]
            scope, fields, authority, row = cells[0], cells[1], cells[2], int(cells[3])
        else:
            continue
        names = [n for part in fields.split("、") for n in part.split("及") if n and n != DELEGATION_CLAUSE]
        rows[row] = (authority, names, scope)
    return rows


def test_the_directory_has_forty_rows_and_the_data_matches_each_one():
    rows = _directory_rows()
    assert sorted(rows) == list(range(1, 41))
    data = {a["directory_row"]: a for a in authorities_document()["authorities"] if a["directory_row"]}
    assert sorted(data) == list(range(1, 41))
    for row, (authority, fields, scope) in rows.items():
        entry = data[row]
        assert entry["name"] == authority, row
        assert [f["name"] for f in entry["fields"]] == fields, row
        assert entry["personnel_scope"] == scope, row


def test_accounting_is_the_self_managed_authority_outside_the_rows():
    assert "另：会计专业技术领域由省财政厅自行负责" in NOTICE
    extra = [a for a in authorities_document()["authorities"] if a["directory_row"] is None]
    assert len(extra) == 1
    assert extra[0]["name"] == "省财政厅" and extra[0]["self_managed"]
    assert [f["name"] for f in extra[0]["fields"]] == ["会计"]


def test_every_field_has_a_unique_code_and_knows_its_authority():
    codes = [f["code"] for a in authorities_document()["authorities"] for f in a["fields"]]
    assert len(codes) == len(set(codes)) == 75
    for a in authorities_document()["authorities"]:
        assert all(f["code"].startswith(a["code"] + ".") for f in a["fields"])


def test_news_and_publishing_are_two_fields_of_the_propaganda_department():
    propaganda = next(a for a in authorities_document()["authorities"] if a["name"] == "省委宣传部")
    assert [f["name"] for f in propaganda["fields"]] == ["新闻", "出版"]


def test_the_directory_takes_effect_on_1_january_2024():
    assert "本通知从 2024 年 1 月 1 日起执行" in NOTICE
    assert authorities_document()["effective_from"] == "2024-01-01"


def _topics_in_notice() -> list[tuple[str, str, int, str]]:
    flat = re.sub(r"\s*\n\s*", "", NOTICE)
    found = re.findall(r"[（(]([一二三四五])[）)]\s*([^（(]+?)[（(](\d+)学时[,，]\s*例如[：:](.+?)[）)]", flat)
    return [(str(CN_DIGITS[n]), title.strip(), int(hours), examples.strip()) for n, title, hours, examples in found]


def test_the_2026_topics_are_the_notice_topics_in_order():
    plan = next(p for p in plans_document()["plans"] if p["year"] == 2026)
    notice = _topics_in_notice()
    assert [t[0] for t in notice] == ["1", "2", "3", "4", "5"]
    assert [(t["code"], t["title"], t["hours"], t["examples"]) for t in plan["topics"]] == notice
    assert [t["hours"] for t in plan["topics"]] == [7, 7, 2, 7, 7]


def test_the_2026_numbers_are_the_notice_numbers():
    plan = next(p for p in plans_document()["plans"] if p["year"] == 2026)
    flat = re.sub(r"\s+", "", NOTICE)
    assert f"完成{plan['required_hours']}学时的公需科目培训" in flat
    assert sum(t["hours"] for t in plan["topics"]) == plan["required_hours"] == 30
    year, month = map(int, re.search(r"培训截止时间为(\d{4})年(\d{1,2})月底", flat).groups())
    assert plan["deadline"] == dt.date(year, month, calendar.monthrange(year, month)[1]).isoformat() == "2027-02-28"
    assert plan["window_start"] == "2026-01-01"
    assert f"每天不超过{plan['max_hours_per_day']}学时" in flat
    assert f"每学时不低于{plan['minutes_per_hour']}分钟" in flat
    assert f"不少于{plan['min_exam_questions']}道题" in flat
