"""placement.hash_int8 is PostgreSQL's hashint8 (what Citus places a person's rows by), and Placements finds the
range that holds a hash; the values below were read off PostgreSQL 15 (`SELECT hashint8(...)`)."""

import pytest
from hours_ledger.placement import Placements, hash_int8

# (value, hashint8(value)) from PostgreSQL: zero, small ids, both halves set, the sign fold, the bigint bounds
KNOWN = [(0, -272711505), (1, -1905060026), (5, -1330264708), (-123456789012, 1743192617),
         (2**32, -1905060026), (-1, 385747274), (2**63 - 1, -1524351049), (-(2**63), -96758253)]


@pytest.mark.parametrize(("value", "expected"), KNOWN)
def test_hash_int8_is_postgresqls(value, expected):
    assert hash_int8(value) == expected


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1])
def test_a_value_past_the_bigint_range_is_refused(value):
    with pytest.raises(ValueError, match="not a bigint"):
        hash_int8(value)


def test_a_hash_belongs_to_the_range_that_starts_at_or_below_it():
    lows = [-(2**31), -1000, 0, 1000]
    placed = Placements(lows, [1, 2, 1, 2], 0.0)
    by_hash = {}
    for value in range(-5000, 5000):
        by_hash[hash_int8(value)] = placed.group_of(value)
    for h, group in by_hash.items():
        expected = 1 if h < -1000 else 2 if h < 0 else 1 if h < 1000 else 2
        assert group == expected, h
    assert Placements([0], [1], 0.0).group_of(5) == -1  # hashint8(5) < 0: no range holds it
