"""ID numbers: a resident ID number checked in its parts (never its region against its birth date), each id_type by
its own layout, and a resident ID number sent under another type refused."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.exceptions import ValidationError
from xueshi_shared.pii import EARLIEST_BIRTH, id_number_error, ric_problem, ric_regions

TODAY = dt.date(2026, 12, 1)


def ric(region: str, birth: dt.date, serial: int = 1) -> str:
    body = f"{region}{birth:%Y%m%d}{serial:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


def test_a_region_code_younger_than_its_holder_is_accepted():
    number = ric("350111", dt.date(1980, 1, 1))  # 晋安区 was created in 1995; numbers were re-issued after
    with pytest.raises(ValidationError):
        stdnum_ric.validate(number)  # what the library's own check says: region and birth date tied together
    assert id_number_error("RIC", number, TODAY) is None


def test_an_abolished_region_code_is_accepted_for_life():
    assert id_number_error("RIC", ric("350127", dt.date(1960, 5, 6)), TODAY) is None  # 福清县, until 1990
    assert id_number_error("RIC", ric("352101", dt.date(2001, 5, 6)), TODAY) is None  # 南平市 (old code), until 1994


def test_residence_permits_of_hong_kong_macao_and_taiwan_residents_are_accepted():
    for region in ("810000", "820000", "830000"):
        assert id_number_error("RIC", ric(region, dt.date(1990, 3, 7)), TODAY) is None


def test_an_unknown_region_is_refused_naming_the_part():
    problem = id_number_error("RIC", ric("359999", dt.date(1990, 3, 7)), TODAY)
    assert problem is not None and (problem.rule, problem.part) == ("id-number", "region")
    assert "359999" not in problem.detail


@pytest.mark.parametrize(("birth", "part"), [(TODAY, None), (TODAY + dt.timedelta(days=1), "birth-date"),
                                             (EARLIEST_BIRTH, None), (EARLIEST_BIRTH - dt.timedelta(days=1),
                                                                      "birth-date")])
def test_the_birth_date_is_a_real_day_not_in_the_future_nor_before_1900(birth, part):
    problem = id_number_error("RIC", ric("350102", birth), TODAY)
    assert (problem and problem.part) == part


@pytest.mark.parametrize(("value", "part"), [
    ("35010219900307001", "length"), ("3501021990030700123", "length"), ("35010219900307001A", "layout"),
    ("350102199002300014", "birth-date"),  # 30 February
])
def test_each_part_is_named(value, part):
    if part == "birth-date":
        value = value[:-1] + stdnum_ric.calc_check_digit(value)
    problem = ric_problem(value, TODAY)
    assert problem is not None and problem.part == part


def test_a_wrong_check_digit_is_refused():
    good = ric("350102", dt.date(1990, 3, 7))
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert ric_problem(good, TODAY) is None
    assert ric_problem(wrong, TODAY).part == "check-digit"
    assert id_number_error("RIC", good.lower(), TODAY) is None  # x and X alike; numbers are normalised


regions = st.sampled_from(sorted(ric_regions()))
births = st.dates(min_value=EARLIEST_BIRTH, max_value=TODAY)


@settings(max_examples=500, deadline=None)
@given(regions, births, st.integers(0, 999))
def test_every_region_ever_valid_with_any_plausible_birth_date_passes(region, birth, serial):
    assert id_number_error("RIC", ric(region, birth, serial), TODAY) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789X", min_size=0, max_size=20))
def test_no_string_makes_the_check_fail_other_than_by_refusing(value):
    problem = id_number_error("RIC", value, TODAY)
    assert problem is None or problem.rule == "id-number"


@pytest.mark.parametrize("id_type", ["passport", "hk_macau_permit", "taiwan_permit"])
def test_a_resident_id_number_sent_under_another_type_is_refused(id_type):
    problem = id_number_error(id_type, ric("350102", dt.date(1990, 3, 7)), TODAY)
    assert problem is not None and problem.rule == "id-type-mismatch"
    # Laid out like one even with a wrong check digit: still not a passport.
    assert id_number_error("passport", "350102199003070019", TODAY).rule == "id-type-mismatch"


@pytest.mark.parametrize(("id_type", "value", "valid"), [
    ("passport", "E12345678", True), ("passport", "1234", False), ("passport", "A" * 20, True),
    ("passport", "A" * 21, False), ("passport", "12345678901234567", True),  # 17 digits: not a RIC's layout
    ("hk_macau_permit", "H12345678", True), ("hk_macau_permit", "M1234567890", True),
    ("hk_macau_permit", "K12345678", False), ("taiwan_permit", "12345678", True),
    ("taiwan_permit", "1234567", False), ("taiwan_permit", "A123456789", True), ("RIC", "３５０１０２", False),
])
def test_each_id_type_has_its_own_layout(id_type, value, valid):
    assert (id_number_error(id_type, value, TODAY) is None) is valid
