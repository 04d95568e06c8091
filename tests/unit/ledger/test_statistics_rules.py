"""The statistics' definitions (domain/statistics.py) and who reads which counters (statistics.scope_of)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from hours_ledger.domain.statistics import (
    Fold,
    Line,
    add_into,
    contribution,
    delta,
    fold_delta,
    keys_of,
    median,
    requirements,
    week_of,
)
from hours_ledger.statistics import QUIET_LOOKS, Folder, is_busy, scope_of, should_fold
from hypothesis import given
from hypothesis import strategies as st
from xueshi_shared.iam.principal import Principal
from xueshi_shared.problems import Forbidden, InvalidInput


@pytest.mark.parametrize(("public", "other", "professional", "required", "expected"), [
    (30, 0, 0, 30, (True, False)), (29, 0, 0, 30, (False, False)), (29, 5, 0, 30, (False, False)),
    (30, 0, 0, None, (False, False)),
    (30, 0, 60, 30, (True, True)),   # 90 in all, professional exactly two thirds
    (30, 0, 59, 30, (True, False)),  # 89 in all
    (31, 0, 60, 30, (True, False)),  # 91 in all, professional 60 < two thirds of 91
    (0, 0, 90, 30, (False, True)),
])
def test_requirements_at_each_boundary(public, other, professional, required, expected):
    assert requirements(public, other, professional, required) == expected


def test_weeks_are_iso_weeks_in_beijing():
    assert week_of(dt.datetime(2026, 11, 29, 16, 0, tzinfo=dt.UTC)) == "2026-W49"  # Monday 00:00 in Beijing
    assert week_of(dt.datetime(2026, 11, 29, 15, 59, tzinfo=dt.UTC)) == "2026-W48"
    assert week_of(dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)) == "2026-W53"


def line(**kw) -> Line:
    values = {"category": "public", "code": "1", "authority": None, "base": "b1", "unit": "u1", "region": "350102",
              "city": "350100", "week": "2026-W20", "credited_hours": 7, "reported_minutes": 360,
              "counted_minutes": 315}
    values.update(kw)
    return Line(**values)


def test_a_person_counts_once_under_a_key_and_reversed_records_nowhere():
    measures, cuts = contribution([line(), line(code="2", cuts=(("parallel-study", 30),)),
                                   line(code="3", reversed=True, credited_hours=2)], 30)
    total = measures[("", "", "")]
    assert total[:6] == [1, 1, 0, 0, 2, 14]
    assert ("", "topic", "3") not in measures
    assert cuts[(("", "", ""), "parallel-study")] == [1, 30]
    assert measures[("c:350100", "county", "350102")][0] == 1


def test_a_professional_record_lies_under_its_field_and_authority():
    keys = keys_of(line(category="professional", code="A20.1", authority="A20"))
    assert ("a:A20", "field", "A20.1") in keys and ("", "authority", "A20") in keys
    assert not any(dim == "topic" for _, dim, _ in keys)


def test_the_requirement_flags_are_the_persons_and_cross_with_the_thirtieth_hour():
    before = contribution([line(code=c, credited_hours=h) for c, h in [("1", 7), ("2", 7), ("3", 2), ("4", 7)]], 30)
    after = contribution([line(code=c, credited_hours=h) for c, h in
                          [("1", 7), ("2", 7), ("3", 2), ("4", 7), ("5", 7)]], 30)
    d, _ = delta(before, after)
    assert d[("", "topic", "1")][2] == 1  # met now, counted under every key the person is in
    assert d[("", "", "")][:4] == [0, 0, 1, 0]


lines = st.builds(line, code=st.sampled_from(["1", "2", "other"]), base=st.sampled_from(["b1", "b2"]),
                  region=st.sampled_from(["350102", "350121", "350128"]), city=st.sampled_from(["350100", "350128"]),
                  week=st.sampled_from(["2026-W20", "2026-W21"]), credited_hours=st.integers(0, 7),
                  cuts=st.lists(st.tuples(st.sampled_from(["daily-limit", "parallel-study"]), st.integers(1, 60)),
                                max_size=2).map(tuple),
                  reversed=st.booleans())


@given(st.lists(lines, max_size=8), st.randoms())
def test_folding_one_change_at_a_time_in_any_order_adds_up_to_the_whole_year(year, rnd):
    """The counters are the sum of the fold's deltas: whatever the order and grouping of the changes, they end
    at the whole year's contribution."""
    order = list(range(len(year)))
    rnd.shuffle(order)
    groups: dict = {}
    cuts: dict = {}
    seen: list[Line] = []
    for i in order:
        old = contribution(seen, 30)
        seen = [*seen, year[i]]
        g, c = delta(old, contribution(seen, 30))
        add_into(groups, g)
        add_into(cuts, c)
    want_g, want_c = contribution(year, 30)
    assert {k: v for k, v in groups.items() if any(v)} == want_g
    assert {k: v for k, v in cuts.items() if any(v)} == want_c


# Hours large enough that the requirement flags cross often, both of them.
heavy = st.builds(line, category=st.sampled_from(["public", "professional"]), code=st.sampled_from(["1", "other"]),
                  authority=st.just("A20"), base=st.sampled_from(["b1", "b2"]), week=st.sampled_from(["W1", "W2"]),
                  credited_hours=st.integers(0, 40),
                  cuts=st.lists(st.tuples(st.just("daily-limit"), st.integers(1, 60)), max_size=1).map(tuple))


@given(st.lists(st.tuples(st.one_of(lines, heavy), st.booleans(), st.booleans()), max_size=10),
       st.sampled_from([30, None]))
def test_the_folds_shortcut_is_the_definitions_difference(records, required):
    """fold_delta (what the fold computes from the changed records) equals the difference of the definition's
    contributions before and after, whatever changed: credits, reversals, flags crossing either way."""
    plain = [(dataclasses.replace(line, reversed=False), was, now) for line, was, now in records]
    before = [line for line, was, _ in plain if was]
    after = [line for line, _, now in plain if now]
    assert fold_delta(plain, required) == delta(contribution(before, required), contribution(after, required))


@given(st.lists(st.tuples(st.lists(st.tuples(st.one_of(lines, heavy), st.booleans(), st.booleans()), max_size=6),
                          st.sampled_from([30, None])), max_size=6))
def test_one_fold_of_many_people_adds_up_their_deltas(people):
    """The fold takes many people's years in one transaction (Fold); what it adds is the sum of each person's."""
    fold = Fold()
    groups: dict = {}
    cuts: dict = {}
    for records, required in people:
        fold.add(records, required)
        g, c = fold_delta(records, required)
        add_into(groups, g)
        add_into(cuts, c)
    assert fold.result() == ({k: v for k, v in groups.items() if any(v)}, {k: v for k, v in cuts.items() if any(v)})


@given(st.lists(st.lists(st.integers(-(2**40), 2**40), min_size=11, max_size=11), max_size=20))
def test_measures_added_up_packed_are_the_measures_added_up(vectors):
    """Fold.result adds a key's eleven measures as one integer (_pack): any signs, the same sums."""
    from hours_ledger.domain.statistics import _pack, _unpacked

    total = sum((_pack(v) for v in vectors), 0)
    expected = [sum(column) for column in zip(*vectors, strict=True)] if vectors else [0] * 11
    assert _unpacked({"k": total}, 11)["k"] == expected


@pytest.mark.parametrize(("rate", "expected"), [
    (200.0, False),   # at the busy rate: not busy
    (200.5, True),    # past it: intake first
    (0.0, False),
])
def test_intake_is_busy_past_the_busy_rate(rate, expected):
    assert is_busy(rate, busy_per_second=200.0) is expected


@pytest.mark.parametrize(("quiet", "since", "expected"), [
    (2, 0.0, True),     # two quiet looks in a row: fold
    (1, 0.0, False),    # one is a lull between two bursts, not the end of intake
    (0, 0.0, False),
    (0, 59.9, False),
    (0, 60.0, True),    # but never behind by more than the most lag
    (1, 60.0, True),
])
def test_the_background_fold_waits_for_two_quiet_looks_and_at_most_the_most_lag(quiet, since, expected):
    assert QUIET_LOOKS == 2
    assert should_fold(quiet, since, most_lag=60.0) is expected


def test_the_background_fold_leaves_a_lull_between_two_bursts_alone():
    """The fold's looks, once a second, at a queue filling at 1,000 changes a second with a one-second lull (a client
    building its next requests): the lull is one quiet look, not the end of intake; two quiet looks are."""
    folder = Folder(None, every=1.0, busy_per_second=200.0, most_lag=60.0)  # type: ignore[arg-type]  # never folds here
    queued, decisions = 0, []
    for second, per_second in enumerate([0, 1000, 1000, 0, 1000, 1000, 0, 0, 0], start=1):
        queued += per_second
        decisions.append(folder.look(queued, float(second)))
    assert decisions == [False, False, False, False, False, False, False, True, True]
    late = Folder(None, every=1.0, busy_per_second=200.0, most_lag=60.0)  # type: ignore[arg-type]
    assert [late.look(1000 * s, float(s)) for s in (1, 2, 59, 60)] == [False, False, False, True]  # busy, but 60 s


def test_median():
    assert median([]) is None and median([3.0]) == 3.0 and median([1.0, 2.0, 10.0, 4.0]) == 3.0


def staff(role, region=None, authority=None):
    return Principal(uuid.uuid4(), "staff", "x", role=role, region=region, authority=authority)


OWNERS = {"A20.1": "A20", "A05.1": "A05"}


@pytest.mark.parametrize(("who", "filters", "key"), [
    (staff("province_admin"), {}, ""),
    (staff("auditor"), {"region": "350100"}, "c:350100"),
    (staff("auditor"), {"region": "350102"}, "n:350102"),
    (staff("province_admin"), {"region": "350000"}, ""),
    (staff("province_admin"), {"authority": "A20"}, "a:A20"),
    (staff("province_admin"), {"topic": "1"}, "t:1"),
    (staff("city_admin", region="350100"), {}, "c:350100"),
    (staff("city_admin", region="350100"), {"region": "350121"}, "n:350121"),
    (staff("city_admin", region="350128"), {"region": "350128"}, "c:350128"),
    (staff("authority_reviewer", authority="A20"), {}, "a:A20"),
    (staff("authority_reviewer", authority="A20"), {"field": "A20.1"}, "f:A20.1"),
])
def test_the_counters_a_staff_member_reads(who, filters, key):
    assert scope_of(who, filters, OWNERS, {"1", "other"}).key == key


@pytest.mark.parametrize(("who", "filters", "problem", "rule"), [
    (staff("city_admin", region="350100"), {"region": "350128"}, Forbidden, "out-of-scope"),  # Pingtan's own bureau
    (staff("city_admin", region="350100"), {"region": "350200"}, Forbidden, "out-of-scope"),
    (staff("city_admin", region="350100"), {"topic": "1"}, InvalidInput, "statistics-filter-combination"),
    (staff("authority_reviewer", authority="A20"), {"field": "A05.1"}, Forbidden, "out-of-scope"),
    (staff("authority_reviewer", authority="A20"), {"authority": "A05"}, Forbidden, "out-of-scope"),
    (staff("province_admin"), {"topic": "1", "region": "350100"}, InvalidInput, "statistics-filter-combination"),
    (staff("province_admin"), {"region": "350199"}, InvalidInput, "region-unknown"),
    (staff("province_admin"), {"field": "Z9"}, InvalidInput, "field-unknown"),
    (staff("province_admin"), {"base": "nope"}, InvalidInput, "validation"),
    (Principal(uuid.uuid4(), "base", "b", base_id=uuid.uuid4()), {}, Forbidden, "staff-only"),
])
def test_filters_outside_the_scope_are_refused(who, filters, problem, rule):
    with pytest.raises(problem) as caught:
        scope_of(who, filters, OWNERS, {"1", "other"})
    assert caught.value.rule == rule
