"""Consistency of a year's public-subject plan."""

from __future__ import annotations

import datetime as dt

from xueshi_shared.problems import FieldError

__all__ = ["plan_errors"]


def plan_errors(
    *, year: int, required_hours: int, window_start: dt.date, deadline: dt.date, max_hours_per_day: int,
    minutes_per_hour: int, topics: list[tuple[str, int]],
) -> list[FieldError]:
    errors: list[FieldError] = []
    if deadline < window_start:
        errors.append(FieldError("deadline", "plan-window", "the deadline comes before the window starts"))
    if window_start.year != year:
        errors.append(FieldError("window_start", "plan-window", f"a {year} plan's window starts in {year}"))
    if max_hours_per_day * minutes_per_hour > 24 * 60:
        errors.append(FieldError("max_hours_per_day", "plan-day", "the daily maximum does not fit in a day"))
    codes = [c for c, _ in topics]
    if len(set(codes)) != len(codes):
        errors.append(FieldError("topics", "topic-codes-distinct", "topic codes must be distinct"))
    if topics and sum(h for _, h in topics) != required_hours:
        errors.append(FieldError(
            "topics", "plan-hours-sum",
            f"the topics' 学时 add up to {sum(h for _, h in topics)}, not the required {required_hours}"))
    return errors
