"""Pure helpers of the shared library: tokens, masking, regions, problem documents."""

from __future__ import annotations

import gc
import string
import uuid

import pytest
from hours_ledger.pushing import KnownTokens
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from xueshi_shared.app import tune_garbage_collector
from xueshi_shared.iam.principal import Principal
from xueshi_shared.iam.tokens import TOKEN_PREFIX, digest, new_token
from xueshi_shared.pii import mask_id_number
from xueshi_shared.problems import Conflict, FieldError, InvalidInput, Unauthenticated
from xueshi_shared.regions import PROVINCE, REGIONS, governing_region
from xueshi_shared.settings import Settings


def test_tokens_are_prefixed_random_and_carry_256_bits():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for t in tokens:
        assert t.startswith(TOKEN_PREFIX)
        assert len(t) - len(TOKEN_PREFIX) >= 43  # 32 bytes in url-safe base64


def test_the_digest_is_what_is_stored_and_differs_per_token():
    t = new_token()
    assert digest(t) == digest(t)
    assert len(digest(t)) == 32
    assert digest(t) != digest(t + "x")
    assert t.encode() not in digest(t)


def _principal(n: int) -> Principal:
    return Principal(id=uuid.UUID(int=n), kind="base", name=f"base {n}", base_id=uuid.UUID(int=1000 + n))


def test_known_tokens_expire_and_can_be_forgotten():
    known = KnownTokens(ttl=60, size=10)
    known.put(b"a", _principal(1), now=0.0)
    assert known.get(b"a", now=59.9) == _principal(1)
    assert known.get(b"a", now=60.0) is None and len(known) == 0, "expired entries are dropped"
    known.put(b"b", _principal(2), now=0.0)
    known.forget(b"b")
    known.forget(b"never seen")
    assert known.get(b"b", now=1.0) is None


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=200), st.integers(1, 8))
def test_known_tokens_hold_at_most_size_and_the_newest_survive(events, size):
    known, model = KnownTokens(ttl=1e9, size=size), []
    for n, forget in events:
        key = str(n).encode()
        if forget:
            known.forget(key)
            model = [k for k in model if k != key]
        else:
            known.put(key, _principal(n), now=0.0)
            model = [k for k in model if k != key][-(size - 1):] + [key] if size > 1 else [key]
        assert len(known) == len(model) <= size
    for n in range(31):
        key = str(n).encode()
        assert (known.get(key, now=1.0) == _principal(n)) == (key in model)


def test_the_garbage_collector_is_tuned_once_a_service_has_started():
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        tune_garbage_collector("")
        assert gc.get_threshold() == before and gc.get_freeze_count() == 0, "empty: Python's own"
        tune_garbage_collector("50000,20,100")
        assert gc.get_threshold() == (50000, 20, 100)
        assert gc.get_freeze_count() > 0, "what exists at start is out of the collector's way"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("value", ["50000,20", "a,b,c", "50000;20;100", "-1,2,3"])
def test_gc_thresholds_must_be_three_counts(value):
    with pytest.raises(ValidationError):
        Settings(gc_thresholds=value)


def test_mask_keeps_region_and_last_four():
    assert mask_id_number("35010219900307123X") == "350102********123X"
    assert mask_id_number("E12345678") == "*********"


@given(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=0, max_size=40))
def test_mask_never_reveals_the_middle_and_keeps_the_length(value):
    masked = mask_id_number(value)
    assert len(masked) == len(value)
    if len(value) > 10:
        assert masked[6:-4] == "*" * (len(value) - 10)
    else:
        assert set(masked) <= {"*"}


def test_governing_region_maps_counties_to_their_city_and_pingtan_to_itself():
    assert governing_region("350102") == "350100"   # 鼓楼区 → 福州市
    assert governing_region("350128") == "350128"   # 平潭 is governed by its own bureau
    assert governing_region("350000") == PROVINCE
    assert governing_region("350203") == "350200"
    for bad in ("110101", "35010", "35a100", "351000", ""):
        assert governing_region(bad) is None
    assert len(REGIONS) == 11


def test_problem_bodies_name_the_field_and_the_rule():
    body = InvalidInput("too short", rule="exam-questions", field="exam.questions").body("/v1/records")
    assert body == {
        "type": "/problems/exam-questions", "title": "Invalid input", "status": 422, "detail": "too short",
        "instance": "/v1/records", "field": "exam.questions",
        "errors": [{"field": "exam.questions", "rule": "exam-questions", "detail": "too short"}],
    }
    many = InvalidInput("two", errors=[FieldError("a", "required", "x"), FieldError("b", "too-long", "y")]).body()
    assert [e["rule"] for e in many["errors"]] == ["required", "too-long"]
    assert Conflict("dup", rule="external-id-reused").body()["status"] == 409
    assert Unauthenticated("no token").headers["WWW-Authenticate"].startswith("Bearer")


def test_every_fujian_code_in_force_is_a_code_the_region_data_lists():
    from xueshi_shared.pii import ric_regions
    from xueshi_shared.regions import CODES, level_of, within

    assert set(CODES) <= ric_regions()
    assert {level_of(c) for c in CODES} == {"province", "city", "county"}
    assert within("350102", "350100") and not within("350128", "350100") and within("350128", "350128")
    assert within("350203", "350000") and not within("359999", "350000") and not within("350203", "350102")
