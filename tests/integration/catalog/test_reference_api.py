"""Public reference data over HTTP, and publishing another year's plan."""

from __future__ import annotations

from tests.support.factories import make_staff
from tests.support.http import assert_problem


async def test_the_2026_plan_is_public_and_carries_every_number(catalog):
    response = await catalog.get("/v1/plans/2026")
    assert response.status_code == 200
    plan = response.json()
    assert {k: plan[k] for k in ("year", "required_hours", "window_start", "deadline", "max_hours_per_day",
                                 "minutes_per_hour", "min_exam_questions")} == {
        "year": 2026, "required_hours": 30, "window_start": "2026-01-01", "deadline": "2027-02-28",
        "max_hours_per_day": 12, "minutes_per_hour": 45, "min_exam_questions": 10}
    assert [(t["code"], t["hours"]) for t in plan["topics"]] == [("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7)]
    assert plan["topics"][0]["title"] == "新时代政绩观树立与“十五五”发展谋划"


async def test_an_unknown_year_is_a_404_problem(catalog):
    assert_problem(await catalog.get("/v1/plans/2031"), 404, "plan-not-found")
    assert_problem(await catalog.get("/v1/plans/99999"), 422)


async def test_authorities_and_fields_are_public_and_complete(catalog):
    authorities = (await catalog.get("/v1/authorities")).json()
    assert len(authorities) == 41
    propaganda = next(a for a in authorities if a["name"] == "省委宣传部")
    assert [f["name"] for f in propaganda["fields"]] == ["新闻", "出版"]
    assert propaganda["personnel_scope"].startswith("全省企事业单位中直接从事新闻、出版")
    fields = (await catalog.get("/v1/fields")).json()
    assert len(fields) == 75
    assert all(f["stamped_by"] == f["authority"] for f in fields)
    accounting = next(f for f in fields if f["name"] == "会计")
    assert next(a for a in authorities if a["code"] == accounting["authority"])["name"] == "省财政厅"


async def test_regions_list_the_province_nine_cities_and_pingtan(catalog):
    regions = {r["code"]: r for r in (await catalog.get("/v1/regions")).json()}
    assert len(regions) == 11
    assert regions["350128"]["name"] == "平潭综合实验区" and regions["350128"]["governed_by"] == "350128"


def plan_2027(**overrides) -> dict:
    plan = {"year": 2027, "required_hours": 30, "window_start": "2027-01-01", "deadline": "2028-02-29",
            "max_hours_per_day": 10, "minutes_per_hour": 50, "min_exam_questions": 12,
            "topics": [{"code": "1", "title": "主题一", "hours": 20}, {"code": "2", "title": "主题二", "hours": 10}]}
    plan.update(overrides)
    return plan


async def test_a_province_admin_publishes_another_years_plan_once(catalog, admin):
    created = await catalog.post("/v1/plans", json=plan_2027(), headers=admin.headers)
    assert created.status_code == 201, created.text
    assert (await catalog.get("/v1/plans/2027")).json()["max_hours_per_day"] == 10
    assert_problem(await catalog.post("/v1/plans", json=plan_2027(), headers=admin.headers), 409, "plan-exists")
    # The plan stays as first published.
    assert (await catalog.get("/v1/plans/2027")).json()["minutes_per_hour"] == 50


async def test_plan_topics_must_add_up_to_the_required_hours(catalog, admin):
    body = plan_2027(topics=[{"code": "1", "title": "主题一", "hours": 20}])
    problem = assert_problem(await catalog.post("/v1/plans", json=body, headers=admin.headers), 422, "plan-hours-sum")
    assert problem["field"] == "topics"


async def test_a_deadline_before_the_window_is_refused(catalog, admin):
    body = plan_2027(deadline="2026-12-31")
    assert assert_problem(await catalog.post("/v1/plans", json=body, headers=admin.headers), 422,
                          "plan-window")["field"] == "deadline"


async def test_only_a_province_admin_publishes_plans(catalog, engine):
    city = await make_staff(engine, "city_admin", region="350100")
    assert_problem(await catalog.post("/v1/plans", json=plan_2027(), headers=city.headers), 403, "role-not-allowed")
    assert_problem(await catalog.post("/v1/plans", json=plan_2027()), 401)
