"""What one person's year adds to the statistics (GET /v1/statistics/{year}). Pure: no I/O, stdlib only.

The statistics are kept as counters per *key* = (scope, dimension, value): a scope is the part of the ledger a
count is about (`""` the whole province, `c:<city>`, `n:<county>`, `a:<authority>`, `f:<field>`, `t:<topic>`,
`b:<base>`), a dimension what the groups are (`city`, `county`, `unit`, `authority`, `field`, `topic`, `base`,
`week`; `""` with value `""` is the scope's total). A record belongs to one value of each dimension and to one
scope of each kind, so each record lies under a few dozen keys.

Counting people exactly needs the person's whole year: a person is counted once under a key however many of
their records lie under it, and the requirement flags are the person's (as their transcript states them). So the
ledger folds a person's year at a time: `contribution(old) - contribution(new)` is what a change adds
(`delta`). The definitions (README, "Statistics"):

- `people`: people with at least one record under the key that is not reversed;
- `people_credited`: of those, people with a record under the key that credits at least one 学时;
- `people_public_met` / `people_yearly_met`: of `people`, those whose transcript for the year says
  `public_requirement_met` / `yearly_requirement_met` (`requirements`);
- `records`, `credited_hours`, `public_hours` (the plan's topics), `other_topic_hours`, `professional_hours`,
  `reported_minutes` (the records' sittings, wall time) and `counted_minutes`: sums over those records;
- cuts: per rule, the records an adjustment of that rule touched and the minutes it cut.

Reversed records count nowhere (the transcript does not add them up either).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .rules import OTHER_TOPIC

__all__ = ["DIMENSIONS", "MEASURES", "QUALITY_RULES", "YEARLY_HOURS", "Line", "contribution", "delta", "keys_of",
           "add_into", "fold_delta", "median", "requirements", "week_of"]

# 人社部令第25号《专业技术人员继续教育规定》第八条: at least 90 学时 a year, professional at least two thirds.
YEARLY_HOURS = 90
PROFESSIONAL_SHARE = (2, 3)

DIMENSIONS = ("city", "county", "unit", "authority", "field", "topic", "base", "week")
MEASURES = ("people", "people_credited", "people_public_met", "people_yearly_met", "records", "credited_hours",
            "public_hours", "other_topic_hours", "professional_hours", "reported_minutes", "counted_minutes")
_PEOPLE = 4  # the first four measures count people
# Where proxy study and parallel playback concentrate (issue 19's base quality).
QUALITY_RULES = ("parallel-study", "identity-unverified", "identity-failed", "daily-limit", "media-shortfall",
                 "course-already-credited")
BEIJING = dt.timezone(dt.timedelta(hours=8))

Key = tuple[str, str, str]
K = TypeVar("K")


def requirements(public_hours: int, other_topic_hours: int, professional_hours: int,
                 required_hours: int | None) -> tuple[bool, bool]:
    """(public requirement met, yearly requirement met) for a person's year, as the transcript states them.

    `public_hours` are the plan's topics only (other topics never count toward the plan's requirement);
    `required_hours` is None when the year has no published plan."""
    total = public_hours + other_topic_hours + professional_hours
    share_num, share_den = PROFESSIONAL_SHARE
    public = required_hours is not None and public_hours >= required_hours
    yearly = total >= YEARLY_HOURS and professional_hours * share_den >= total * share_num
    return public, yearly


def week_of(instant: dt.datetime) -> str:
    """The ISO week (Monday first) an instant falls in, in Beijing time: `2026-W48`."""
    year, week, _ = instant.astimezone(BEIJING).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class Line:
    """A record as the statistics see it."""

    category: str                    # public, professional
    code: str                        # the topic (public) or field (professional)
    authority: str | None            # the field's owning authority (professional)
    base: str
    unit: str                        # the unit's USCC
    region: str                      # the unit's GB/T 2260 code
    city: str                        # the region's prefecture-level bureau (or the province)
    week: str
    credited_hours: int
    reported_minutes: int
    counted_minutes: int
    cuts: tuple[tuple[str, int], ...] = ()  # (rule, minutes) of its adjustments
    reversed: bool = False


def keys_of(line: Line) -> list[Key]:
    """Every key the record lies under."""
    public = line.category == "public"
    values = [("", ""), ("city", line.city), ("county", line.region), ("unit", line.unit), ("base", line.base),
              ("week", line.week), ("topic" if public else "field", line.code)]
    scopes = ["", f"c:{line.city}", f"n:{line.region}", f"b:{line.base}", ("t:" if public else "f:") + line.code]
    if not public and line.authority:
        values.append(("authority", line.authority))
        scopes.append(f"a:{line.authority}")
    return [(scope, dim, value) for scope in scopes for dim, value in values]


def contribution(lines: Iterable[Line], required_hours: int | None
                 ) -> tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]:
    """What a person's year adds: per key the MEASURES, per (key, rule) [records, minutes] cut."""
    live = [line for line in lines if not line.reversed]
    by_topic_public = sum(x.credited_hours for x in live if x.category == "public" and x.code != OTHER_TOPIC)
    other = sum(x.credited_hours for x in live if x.category == "public" and x.code == OTHER_TOPIC)
    professional = sum(x.credited_hours for x in live if x.category != "public")
    public_met, yearly_met = requirements(by_topic_public, other, professional, required_hours)
    measures: dict[Key, list[int]] = {}
    cuts: dict[tuple[Key, str], list[int]] = {}
    for line in live:
        public = line.category == "public"
        adds = (1, line.credited_hours,
                line.credited_hours if public and line.code != OTHER_TOPIC else 0,
                line.credited_hours if public and line.code == OTHER_TOPIC else 0,
                0 if public else line.credited_hours, line.reported_minutes, line.counted_minutes)
        rules: dict[str, int] = defaultdict(int)
        for rule, minutes in line.cuts:
            rules[rule] += minutes
        for key in keys_of(line):
            m = measures.get(key)
            if m is None:
                m = measures[key] = [1, 0, int(public_met), int(yearly_met), *([0] * len(adds))]
            if line.credited_hours > 0:
                m[1] = 1
            for i, n in enumerate(adds, start=_PEOPLE):
                m[i] += n
            for rule, minutes in rules.items():
                c = cuts.setdefault((key, rule), [0, 0])
                c[0] += 1
                c[1] += minutes
    return measures, cuts


def delta(old: tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]],
          new: tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]
          ) -> tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]:
    """new - old, without the keys that do not change."""
    return _minus(new[0], old[0], len(MEASURES)), _minus(new[1], old[1], 2)


def _standing(lines: Sequence[Line], required_hours: int | None) -> tuple[bool, bool]:
    public = sum(x.credited_hours for x in lines if x.category == "public" and x.code != OTHER_TOPIC)
    other = sum(x.credited_hours for x in lines if x.category == "public" and x.code == OTHER_TOPIC)
    professional = sum(x.credited_hours for x in lines if x.category != "public")
    return requirements(public, other, professional, required_hours)


def fold_delta(records: Sequence[tuple[Line, bool, bool]], required_hours: int | None
               ) -> tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]:
    """What the fold adds for one person's year: `delta(contribution(before), contribution(after))`, computed from
    the records that changed. `records`: each record of the year with whether it stood (was not reversed) before
    and after the change; `Line.reversed` is not read. A property test holds it equal to `delta` of `contribution`.

    Sums move only by the records whose standing changed; a key's people counts move only where the person's
    presence under it changes, or everywhere the person is when their requirement flags change."""
    keys = [keys_of(line) for line, _, _ in records]
    before = [line for line, was, _ in records if was]
    after = [line for line, _, now in records if now]
    flags_before, flags_after = _standing(before, required_hours), _standing(after, required_hours)
    # Keys under a record standing both before and after hold the person either way: one union each, the changed
    # records' keys tested against it.
    both = [k for k, (_, was, now) in zip(keys, records, strict=True) if was and now]
    staying: set[Key] = set().union(*both)
    staying_credited: set[Key] = set().union(*(k for k, (line, was, now) in zip(keys, records, strict=True)
                                               if was and now and line.credited_hours > 0))
    changed = [(k, line, was, now) for k, (line, was, now) in zip(keys, records, strict=True) if was != now]
    present = [set(staying), set(staying)]
    credited = [set(staying_credited), set(staying_credited)]
    for k, line, _, now in changed:
        side = 1 if now else 0
        present[side].update(k)
        if line.credited_hours > 0:
            credited[side].update(k)
    width = len(MEASURES)
    groups: dict[Key, list[int]] = {}
    moved = (present[0] ^ present[1]) | (credited[0] ^ credited[1])
    if flags_before != flags_after:
        moved |= present[0] | present[1]
    for key in moved:
        was, now = key in present[0], key in present[1]
        d = [now - was, (key in credited[1]) - (key in credited[0]),
             (now and flags_after[0]) - (was and flags_before[0]), (now and flags_after[1]) - (was and flags_before[1])]
        groups[key] = [*map(int, d), *([0] * (width - _PEOPLE))]
    cuts: dict[tuple[Key, str], list[int]] = {}
    for k, line, _, now in changed:
        sign = 1 if now else -1
        public = line.category == "public"
        adds = (1, line.credited_hours, line.credited_hours if public and line.code != OTHER_TOPIC else 0,
                line.credited_hours if public and line.code == OTHER_TOPIC else 0,
                0 if public else line.credited_hours, line.reported_minutes, line.counted_minutes)
        rules: dict[str, int] = defaultdict(int)
        for rule, minutes in line.cuts:
            rules[rule] += minutes
        for key in k:
            g = groups.get(key)
            if g is None:
                g = groups[key] = [0] * width
            for i, n in enumerate(adds, start=_PEOPLE):
                g[i] += sign * n
            for rule, minutes in rules.items():
                c = cuts.setdefault((key, rule), [0, 0])
                c[0] += sign
                c[1] += sign * minutes
    return ({k: v for k, v in groups.items() if any(v)}, {k: v for k, v in cuts.items() if any(v)})


def _minus(new: dict[K, list[int]], old: dict[K, list[int]], width: int) -> dict[K, list[int]]:
    zero = [0] * width
    out: dict[K, list[int]] = {}
    for key in new.keys() | old.keys():
        d = [a - b for a, b in zip(new.get(key, zero), old.get(key, zero), strict=True)]
        if any(d):
            out[key] = d
    return out


def add_into(total: dict[K, list[int]], part: dict[K, list[int]]) -> None:
    """total += part, key by key."""
    for key, values in part.items():
        t = total.get(key)
        if t is None:
            total[key] = list(values)
        else:
            for i, v in enumerate(values):
                t[i] += v


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
