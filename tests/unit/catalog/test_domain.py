"""Pure catalog rules: delegations, governance, regions, courses, plans."""

from __future__ import annotations

import datetime as dt

import pytest
from catalog.domain.courses import ReviewChecks, course_errors, review_day_errors, review_errors
from catalog.domain.delegations import Period, active, overlaps, stamped_by
from catalog.domain.plans import plan_errors
from catalog.domain.regions import base_region_errors, within
from hypothesis import given
from hypothesis import strategies as st
from xueshi_shared.iam.governance import Actor, governs_field, governs_public_scope
from xueshi_shared.regions import CODES, REGIONS

days = st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 12, 31))
periods = st.builds(lambda a, n: Period(a, None if n is None else a + dt.timedelta(days=n)), days,
                    st.none() | st.integers(0, 800))
roles = st.sampled_from(["province_admin", "city_admin", "authority_reviewer", "auditor", None])
codes = st.sampled_from(sorted(REGIONS) + ["350102", "350203", "350981", "110000"])


@given(periods, periods)
def test_overlap_is_symmetric_and_means_a_shared_day(a, b):
    assert overlaps(a, b) == overlaps(b, a)
    probe = max(a.starts_on, b.starts_on)
    assert overlaps(a, b) == (active(a, probe) and active(b, probe))


@given(st.lists(periods, max_size=4), days)
def test_a_field_is_stamped_by_the_province_exactly_while_a_delegation_runs(delegations, day):
    stamper = stamped_by("A02", delegations, day, "A12")
    assert stamper == ("A12" if any(active(p, day) for p in delegations) else "A02")


def test_the_last_day_of_a_delegation_is_inclusive():
    p = Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30))
    assert active(p, dt.date(2026, 6, 30)) and not active(p, dt.date(2026, 7, 1))
    assert not active(p, dt.date(2025, 12, 31))


@given(roles, codes, st.sampled_from(["A01", "A12", "A15"]), codes)
def test_nobody_but_the_province_governs_province_wide_public_matters(role, region, authority, scope):
    actor = Actor(role=role, region=region, authority=authority)
    if scope == "350000":
        assert governs_public_scope(actor, scope) == (role == "province_admin")
    if role in ("auditor", None, "authority_reviewer"):
        assert not governs_public_scope(actor, scope)


@given(roles, st.sampled_from(["A01", "A12", "A15"]), st.sampled_from(["A01", "A12", "A15"]))
def test_fields_are_governed_by_the_stamping_authority_and_the_province_for_its_own(role, authority, stamper):
    actor = Actor(role=role, authority=authority)
    expected = (role == "authority_reviewer" and authority == stamper) or (role == "province_admin" and stamper == "A12")
    assert governs_field(actor, stamper, "A12") == expected


def test_a_city_admin_governs_its_counties_but_not_pingtan():
    fuzhou = Actor(role="city_admin", region="350100")
    assert governs_public_scope(fuzhou, "350102")
    assert not governs_public_scope(fuzhou, "350128")
    assert governs_public_scope(Actor(role="city_admin", region="350128"), "350128")


@given(codes, codes)
def test_a_municipal_base_never_trains_outside_its_city(region, scope):
    errors = base_region_errors("municipal", region, scope)
    if not errors:
        assert within(scope, region)


def test_course_rules_take_their_numbers_from_the_plan():
    assert course_errors(mode="online", exam_questions=10, min_exam_questions=10, hours=7, topic_hours=7) == []
    assert [e["rule"] for e in course_errors(mode="online", exam_questions=10, min_exam_questions=12, hours=7,
                                             topic_hours=7)] == ["exam-questions"]
    assert course_errors(mode="offline", exam_questions=0, min_exam_questions=10, hours=3, topic_hours=None) == []


def test_a_rejection_needs_no_passed_checks_but_an_approval_needs_all():
    failing = ReviewChecks(wording=True, policy=False, ideology=True)
    assert review_errors("rejected", failing, ["甲"]) == []
    assert [e["field"] for e in review_errors("approved", failing, ["甲"])] == ["checks.policy"]


@given(st.lists(st.integers(1, 20), min_size=1, max_size=6), st.integers(1, 120))
def test_plan_topics_must_sum_to_the_requirement(hours, required):
    errors = plan_errors(year=2027, required_hours=required, window_start=dt.date(2027, 1, 1),
                         deadline=dt.date(2028, 2, 29), max_hours_per_day=12, minutes_per_hour=45,
                         topics=[(str(i), h) for i, h in enumerate(hours)])
    assert ("plan-hours-sum" in {e["rule"] for e in errors}) == (sum(hours) != required)


@pytest.mark.parametrize(("day", "refused"), [
    (dt.date(2026, 12, 1), False),   # today
    (dt.date(2026, 12, 2), True),    # tomorrow
    (dt.date(2026, 1, 1), False),    # the plan's first day
    (dt.date(2025, 12, 31), True),   # the day before
])
def test_a_review_day_is_neither_in_the_future_nor_before_the_plan(day, refused):
    errors = review_day_errors(day, dt.date(2026, 12, 1), dt.date(2026, 1, 1))
    assert bool(errors) is refused and all(e["rule"] == "reviewed-on" for e in errors)


@pytest.mark.parametrize(("level", "region", "scope", "rule"), [
    ("county", "350102", "350102", None),
    ("county", "350199", "350102", "base-level-region"),   # no such county, though shaped like one
    ("municipal", "350100", "350199", "region-code"),
    ("provincial", "350000", "359999", "region-code"),
    ("municipal", "350100", "350128", "scope-outside-region"),  # Pingtan has its own bureau
])
def test_base_regions_are_checked_against_the_codes_in_force(level, region, scope, rule):
    rules = {e["rule"] for e in base_region_errors(level, region, scope)}
    assert rules == ({rule} if rule else set())


def test_the_fujian_reference_holds_the_province_its_cities_and_its_counties():
    assert set(REGIONS) <= set(CODES) and len(CODES) == 94
    assert CODES["350111"] == "晋安区" and "350101" not in CODES  # 市辖区 is no place
    assert "350182" not in CODES  # 长乐市, a district (350112) since 2017
