"""A seminar roster's online share at its boundary (50% of the roster), pure."""

from __future__ import annotations

import pytest
from hours_ledger.domain.seminars import online_share_problem


@pytest.mark.parametrize(("mode", "trainees", "online", "refused"), [
    ("mixed", 30, 15, False), ("mixed", 30, 16, True), ("mixed", 31, 15, False), ("mixed", 1, 1, True),
    ("mixed", 2, 1, False), ("offline", 30, 0, False), ("offline", 30, 1, True),
])
def test_a_mixed_roster_holds_at_most_half_online_and_an_offline_one_none(mode, trainees, online, refused):
    assert (online_share_problem(mode, 50, trainees, online) is not None) is refused
