"""Every seminar rule at its boundary (闽人社办〔2025〕67号, the 2025 values)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from catalog.domain.seminars import (
    MATERIALS,
    REIMBURSEMENT,
    Project,
    SeminarRules,
    check_project,
    ended,
    materials_checklist,
    materials_owed,
    months_before,
    subsidy_eligible,
)

R2025 = SeminarRules(deadline=dt.date(2025, 11, 30), national_min_trainees=50, national_staff_percent=10,
                     national_staff_max=10, national_min_days=5, national_fiscal_budget_max=105_000,
                     provincial_min_trainees=30, provincial_days_low=3, provincial_days_high=5,
                     online_percent_max=50, subsidy_max=50_000, filing_months=1)
NATIONAL = Project(kind="national", start_date=dt.date(2025, 9, 1), end_date=dt.date(2025, 9, 5), trainees=50,
                   online_trainees=0, staff=5, mode="offline", budget_yuan=105_000, funding="fiscal",
                   plan_filed_on=dt.date(2025, 7, 31))
ORDINARY = Project(kind="provincial_ordinary", start_date=dt.date(2025, 9, 1), end_date=dt.date(2025, 9, 4),
                   trainees=30, online_trainees=0, staff=3, mode="offline", budget_yuan=200_000, funding="self",
                   plan_filed_on=None)


def rules_of(project: Project) -> set[str]:
    return {e["rule"] for e in check_project(project, R2025)[0]}


def test_the_reference_projects_pass():
    assert check_project(NATIONAL, R2025) == ([], [])
    assert check_project(ORDINARY, R2025) == ([], [])


@pytest.mark.parametrize(("change", "rule", "refused"), [
    ({"trainees": 50}, "seminar-trainees", False),
    ({"trainees": 49, "staff": 4}, "seminar-trainees", True),
    ({"trainees": 100, "staff": 10}, "seminar-staff", False),       # 10% and 10
    ({"trainees": 100, "staff": 11}, "seminar-staff", True),        # 11%
    ({"trainees": 120, "staff": 11}, "seminar-staff", True),        # under 10% but more than 10
    ({"end_date": dt.date(2025, 9, 5)}, "seminar-duration", False),  # 5 days
    ({"end_date": dt.date(2025, 9, 4)}, "seminar-duration", True),   # 4 days
    ({"budget_yuan": 105_000}, "seminar-budget", False),
    ({"budget_yuan": 105_001}, "seminar-budget", True),
    ({"budget_yuan": 300_000, "funding": "self"}, "seminar-budget", False),
    ({"start_date": dt.date(2025, 11, 26), "end_date": dt.date(2025, 11, 30),
      "plan_filed_on": dt.date(2025, 10, 1)}, "seminar-deadline", False),
    ({"start_date": dt.date(2025, 11, 27), "end_date": dt.date(2025, 12, 1),
      "plan_filed_on": dt.date(2025, 10, 1)}, "seminar-deadline", True),
    ({"plan_filed_on": dt.date(2025, 7, 31)}, "seminar-filing", False),  # 32 days ahead
    ({"plan_filed_on": dt.date(2025, 8, 1)}, "seminar-filing", False),   # exactly one month (31 days) ahead
    ({"plan_filed_on": dt.date(2025, 8, 3)}, "seminar-filing", True),    # 29 days ahead
    ({"plan_filed_on": None}, "seminar-filing", True),
])
def test_national_boundaries(change, rule, refused):
    assert (rule in rules_of(dataclasses.replace(NATIONAL, **change))) is refused


@pytest.mark.parametrize(("change", "rule", "refused"), [
    ({"trainees": 30}, "seminar-trainees", False),
    ({"trainees": 29}, "seminar-trainees", True),
    ({"mode": "mixed", "trainees": 40, "online_trainees": 20}, "seminar-online-share", False),  # 50%
    ({"mode": "mixed", "trainees": 100, "online_trainees": 51}, "seminar-online-share", True),  # 51%
    ({"mode": "offline", "online_trainees": 1}, "seminar-online-share", True),
    ({"end_date": dt.date(2025, 11, 30), "start_date": dt.date(2025, 11, 27)}, "seminar-deadline", False),
    ({"end_date": dt.date(2025, 12, 1), "start_date": dt.date(2025, 11, 28)}, "seminar-deadline", True),
])
def test_provincial_boundaries(change, rule, refused):
    assert (rule in rules_of(dataclasses.replace(ORDINARY, **change))) is refused


@pytest.mark.parametrize(("kind", "budget", "refused"), [
    ("provincial_demonstration", 50_000, False), ("provincial_demonstration", 50_001, True),
    ("engineering", 50_000, False), ("engineering", 50_001, True), ("provincial_ordinary", 50_001, False),
])
def test_subsidy_cap_of_demonstration_and_engineering(kind, budget, refused):
    project = dataclasses.replace(ORDINARY, kind=kind, budget_yuan=budget, funding="fiscal",
                                  plan_filed_on=dt.date(2025, 7, 1))
    assert ("seminar-budget" in rules_of(project)) is refused


def test_demonstration_projects_file_their_plan_a_month_ahead_but_ordinary_ones_need_not():
    demo = dataclasses.replace(ORDINARY, kind="provincial_demonstration", plan_filed_on=dt.date(2025, 8, 3))
    assert "seminar-filing" in rules_of(demo)
    assert "seminar-filing" not in rules_of(dataclasses.replace(ORDINARY, plan_filed_on=dt.date(2025, 8, 31)))


@pytest.mark.parametrize(("days", "warned"), [(2, True), (3, False), (4, False), (5, False), (6, True)])
def test_provincial_length_is_about_four_days_as_a_warning(days, warned):
    project = dataclasses.replace(ORDINARY, end_date=ORDINARY.start_date + dt.timedelta(days=days - 1))
    errors, warnings = check_project(project, R2025)
    assert errors == [] and bool(warnings) is warned


def test_months_before_clamps_to_the_month_end():
    assert months_before(dt.date(2025, 3, 31), 1) == dt.date(2025, 2, 28)
    assert months_before(dt.date(2025, 1, 15), 1) == dt.date(2024, 12, 15)


# ---- money: the caps limit the subsidy ---------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field"), [
    ({"budget_yuan": 200_000, "subsidy_yuan": 105_000}, None),
    ({"budget_yuan": 200_000, "subsidy_yuan": 105_001}, "subsidy_yuan"),
    ({"budget_yuan": 105_000, "subsidy_yuan": None}, None),
    ({"budget_yuan": 105_001, "subsidy_yuan": None}, "budget_yuan"),
    ({"budget_yuan": 1_000, "subsidy_yuan": 1_000}, None),
    ({"budget_yuan": 1_000, "subsidy_yuan": 1_001}, "subsidy_yuan"),
    ({"budget_yuan": 900_000, "funding": "self"}, None),
    ({"budget_yuan": 900_000, "funding": "self", "subsidy_yuan": 0}, None),
    ({"budget_yuan": 900_000, "funding": "self", "subsidy_yuan": 1}, "subsidy_yuan"),
])
def test_the_national_cap_limits_the_fiscal_subsidy(change, field):
    errors = [e for e in check_project(dataclasses.replace(NATIONAL, **change), R2025)[0]
              if e["rule"] == "seminar-budget"]
    assert [e["field"] for e in errors] == ([field] if field else [])


@pytest.mark.parametrize(("kind", "subsidy", "refused"), [
    ("provincial_demonstration", 50_000, False), ("provincial_demonstration", 50_001, True),
    ("engineering", 50_000, False), ("engineering", 50_001, True), ("provincial_ordinary", 50_001, False),
])
def test_a_demonstration_or_engineering_subsidy_is_capped_whatever_the_budget(kind, subsidy, refused):
    project = dataclasses.replace(ORDINARY, kind=kind, budget_yuan=300_000, subsidy_yuan=subsidy, funding="fiscal",
                                  plan_filed_on=dt.date(2025, 7, 1))
    assert ("seminar-budget" in rules_of(project)) is refused


# ---- what is owed after the seminar ------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "funding", "owed"), [
    ("provincial_demonstration", "fiscal", set(MATERIALS)), ("engineering", "fiscal", set(MATERIALS)),
    ("provincial_demonstration", "self", set(MATERIALS)), ("national", "fiscal", {"reimbursement"}),
    ("national", "self", set()), ("provincial_ordinary", "fiscal", set()), ("provincial_ordinary", "self", set()),
])
def test_materials_follow_the_kind(kind, funding, owed):
    assert set(materials_owed(kind, funding, R2025)) == owed


@pytest.mark.parametrize(("submitted", "eligible"), [(dt.date(2025, 10, 5), True), (dt.date(2025, 10, 6), False),
                                                      (None, False)])
def test_a_national_fiscal_subsidy_needs_its_reimbursement_materials_within_the_month(submitted, eligible):
    given = {"reimbursement": submitted} if submitted else {}
    items = materials_checklist(REIMBURSEMENT, NATIONAL.end_date, 1, given, dt.date(2025, 12, 1))
    assert subsidy_eligible("national", "fiscal", items, R2025) is eligible
    assert subsidy_eligible("national", "self", items, R2025) is None
    assert subsidy_eligible("provincial_ordinary", "fiscal", [], R2025) is None


@pytest.mark.parametrize(("today", "over"), [(dt.date(2025, 9, 5), False), (dt.date(2025, 9, 6), True)])
def test_a_seminar_has_ended_once_its_last_day_is_past(today, over):
    assert ended(NATIONAL.end_date, today) is over
