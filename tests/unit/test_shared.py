"""Pure helpers of the shared library: tokens, masking, regions, problem documents."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from xueshi_shared.iam.tokens import TOKEN_PREFIX, digest, new_token
from xueshi_shared.pii import mask_id_number
from xueshi_shared.problems import Conflict, FieldError, InvalidInput, Unauthenticated
from xueshi_shared.regions import PROVINCE, REGIONS, governing_region


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
