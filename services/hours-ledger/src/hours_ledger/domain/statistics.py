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
import functools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .rules import OTHER_TOPIC

__all__ = ["DIMENSIONS", "MEASURES", "Fold", "QUALITY_RULES", "YEARLY_HOURS", "Line", "contribution", "delta", "keys_of",
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


Place = tuple[str, str, str | None, str, str, str, str, str]


def _place(line: Line) -> Place:
    """What decides the keys a record lies under."""
    return (line.category, line.code, line.authority, line.base, line.unit, line.region, line.city, line.week)


def factors(category: str, code: str, authority: str | None, base: str, unit: str, region: str, city: str,
            week: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The scopes a record counts in and the (dimension, value) pairs it has: its keys are every scope with every
    pair (`keys_of`)."""
    public = category == "public"
    values = [("", ""), ("city", city), ("county", region), ("unit", unit), ("base", base), ("week", week),
              ("topic" if public else "field", code)]
    scopes = ["", f"c:{city}", f"n:{region}", f"b:{base}", ("t:" if public else "f:") + code]
    if not public and authority:
        values.append(("authority", authority))
        scopes.append(f"a:{authority}")
    return tuple(scopes), tuple(values)


def keys_of(line: Line) -> list[Key]:
    """Every key the record lies under."""
    scopes, values = factors(*_place(line))
    return [(scope, dim, value) for scope in scopes for dim, value in values]


def _sums(line: Line) -> tuple[int, ...]:
    """What a record adds to the summed MEASURES (records, credited_hours, ... counted_minutes)."""
    public = line.category == "public"
    return (1, line.credited_hours, line.credited_hours if public and line.code != OTHER_TOPIC else 0,
            line.credited_hours if public and line.code == OTHER_TOPIC else 0,
            0 if public else line.credited_hours, line.reported_minutes, line.counted_minutes)


def _cut(line: Line) -> dict[str, int]:
    """The minutes each rule cut from a record (a record counts once under a rule, however many adjustments)."""
    rules: dict[str, int] = defaultdict(int)
    for rule, minutes in line.cuts:
        rules[rule] += minutes
    return rules


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
        adds, rules = _sums(line), _cut(line)
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


def fold_delta(records: Sequence[tuple[Line, bool, bool]], required_hours: int | None
               ) -> tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]:
    """What the fold adds for one person's year: `delta(contribution(before), contribution(after))`, computed from
    the records that changed. `records`: each record of the year with whether it stood (was not reversed) before
    and after the change; `Line.reversed` is not read. A property test holds it equal to `delta` of `contribution`."""
    fold = Fold()
    fold.add(records, required_hours)
    return fold.result()


@functools.lru_cache(maxsize=1 << 13)
def _keys(place: Place) -> frozenset[Key]:
    """A place's keys, kept for the places seen last: the fold reads a person's whole year at each change, and sets
    merge a frozenset's keys without hashing them again."""
    scopes, values = factors(*place)
    return frozenset([(scope, dim, value) for scope in scopes for dim, value in values])


class Fold:
    """`fold_delta` over many people's years at once (of one year), added up.

    A key's people counts move only where the person's presence under it changes, or everywhere the person is
    when their requirement flags change: those moves are counted per key (`people`). Sums move only by the records
    whose standing changed, and they are kept per *place* (the fields that decide a record's keys: `sums`, `rules`)
    so that `result` spreads them over the place's keys once however many records share it."""

    def __init__(self) -> None:
        # Per people measure, the keys gaining and the keys losing the person (a Counter counts a set's keys in C).
        self.gained = [Counter[Key]() for _ in range(_PEOPLE)]
        self.lost = [Counter[Key]() for _ in range(_PEOPLE)]
        self.sums: dict[Place, list[int]] = {}
        self.rules: dict[tuple[Place, str], list[int]] = {}
        self._keys: dict[Place, frozenset[Key]] = {}  # the places of this fold: their keys worked out once

    def keys(self, place: Place) -> frozenset[Key]:
        found = self._keys.get(place)
        if found is None:
            found = self._keys[place] = _keys(place)
        return found

    def add(self, records: Sequence[tuple[Line, bool, bool]], required_hours: int | None) -> None:
        """One person's year: each record with whether it stood before the change and whether it stands after."""
        # Hours (public by the plan's topics, other topics, professional) before and after, for the flags.
        hours = [0, 0, 0, 0, 0, 0]
        # Keys under a record standing both before and after hold the person either way (and, if it credits, as
        # credited); the changed records add theirs to one side.
        staying: set[Key] = set()
        staying_credited: set[Key] = set()
        changed: list[tuple[Line, Place, bool]] = []
        for line, was, now in records:
            if not (was or now):
                continue
            kind = (1 if line.code == OTHER_TOPIC else 0) if line.category == "public" else 2
            if was:
                hours[kind] += line.credited_hours
            if now:
                hours[3 + kind] += line.credited_hours
            if was and now:
                keys = self.keys(_place(line))
                staying |= keys
                if line.credited_hours > 0:
                    staying_credited |= keys
            else:
                changed.append((line, _place(line), now))
        flags_before = requirements(hours[0], hours[1], hours[2], required_hours)
        flags_after = requirements(hours[3], hours[4], hours[5], required_hours)
        extra: tuple[set[Key], set[Key]] = (set(), set())
        extra_credited: tuple[set[Key], set[Key]] = (set(), set())
        for line, place, now in changed:
            keys = self.keys(place)
            extra[now].update(keys)
            if line.credited_hours > 0:
                extra_credited[now].update(keys)
        present = tuple(staying | e if e else staying for e in extra)
        credited = tuple(staying_credited | e if e else staying_credited for e in extra_credited)
        width = len(MEASURES) - _PEOPLE
        for line, place, now in changed:
            sign = 1 if now else -1
            sums = self.sums.get(place)
            if sums is None:
                sums = self.sums[place] = [0] * width
            for i, n in enumerate(_sums(line)):
                sums[i] += sign * n
            for rule, minutes in _cut(line).items():
                cut = self.rules.get((place, rule))
                if cut is None:
                    cut = self.rules[(place, rule)] = [0, 0]
                cut[0] += sign
                cut[1] += sign * minutes
        empty: set[Key] = set()
        sides = (present, credited, (present[0] if flags_before[0] else empty, present[1] if flags_after[0] else empty),
                 (present[0] if flags_before[1] else empty, present[1] if flags_after[1] else empty))
        for i, (before, after) in enumerate(sides):
            if before != after:
                self.gained[i].update(after - before)
                self.lost[i].update(before - after)

    def people(self) -> dict[Key, list[int]]:
        """Per key whose people counts move, the moves of the people MEASURES (the first four)."""
        return {key: m for key, m in _unpacked(self._people(), _PEOPLE).items() if any(m)}

    def _people(self) -> dict[Key, int]:
        moves: dict[Key, int] = {}
        get = moves.get
        for i in range(_PEOPLE):
            for counter, sign in ((self.gained[i], 1), (self.lost[i], -1)):
                shift = _LANE * i
                for key, n in counter.items():
                    moves[key] = get(key, 0) + ((sign * n) << shift)
        return moves

    def result(self) -> tuple[dict[Key, list[int]], dict[tuple[Key, str], list[int]]]:
        """Per key the MEASURES, per (key, rule) [records, minutes] cut: what everything added adds."""
        # A key's measures are added up as one integer, a lane of _LANE bits each (a place's sums spread over its
        # forty-odd keys are one addition a key, not eleven).
        totals = self._people()
        get = totals.get
        for place, sums in self.sums.items():
            if any(sums):
                packed = _pack(sums) << (_LANE * _PEOPLE)
                for key in self.keys(place):
                    totals[key] = get(key, 0) + packed
        packed_cuts: dict[tuple[Key, str], int] = {}
        get_cut = packed_cuts.get
        for (place, rule), cut in self.rules.items():
            if any(cut):
                packed = _pack(cut)
                for key in self.keys(place):
                    packed_cuts[(key, rule)] = get_cut((key, rule), 0) + packed
        groups = {k: v for k, v in _unpacked(totals, len(MEASURES)).items() if any(v)}
        return groups, {k: v for k, v in _unpacked(packed_cuts, 2).items() if any(v)}


# Measures added up in one integer: lane i holds measure i as a signed number of _LANE bits. Packing is linear, so
# the sum of packed vectors is the packed sum, and every count here stays far inside 2**63 in magnitude.
_LANE = 64
_HALF = 1 << (_LANE - 1)
_MASK = (1 << _LANE) - 1


def _pack(values: Sequence[int]) -> int:
    return sum(v << (_LANE * i) for i, v in enumerate(values))


def _unpacked(packed: dict[K, int], width: int) -> dict[K, list[int]]:
    out: dict[K, list[int]] = {}
    for key, x in packed.items():
        lanes = []
        for _ in range(width):
            lane = ((x & _MASK) ^ _HALF) - _HALF  # the lowest lane, signed
            lanes.append(lane)
            x = (x - lane) >> _LANE
        out[key] = lanes
    return out


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
