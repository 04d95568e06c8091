"""The province's rules for turning a study record into credited 学时. Pure: no I/O, stdlib only.

Times are integer seconds since the Unix epoch (UTC). Days are Asia/Shanghai calendar days, which
are UTC+8 all year (China has kept no daylight-saving time since 1991), so a day is a fixed span.

What `decide` applies, in this order, per sitting (earliest first) and then per record:

- proxy study (`identity-unverified`): an online or live sitting with no passed identity check counts nothing;
- `outside-window`: only time inside the plan's training window counts;
- parallel videos (`parallel-study`): time overlapping any sitting already in the ledger for the person counts once;
- played content (`media-shortfall`): an online or live sitting counts at most the content actually played
  (min(wall time, media_seconds)), so speeding up or dragging the progress bar adds nothing;
- `daily-limit`: per person and day at most max_hours_per_day x minutes_per_hour across everything, first come
  first served;
- `course-hours`: a record draws at most course 学时 x minutes_per_hour, earliest sittings first;
- `exam-not-passed`: a failed exam credits nothing (and draws nothing from the daily allowance);
- `topic-allotment`: a public-subject topic never credits more than its allotment per person and year; the
  minutes of the hours cut are given back to the days they were drawn from.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Adjustment", "Allocation", "CourseFacts", "Decision", "Exam", "PersonState", "PlanRules", "Sitting",
    "day_bounds", "day_of", "decide", "refusals", "subtract", "total",
]

UTC_OFFSET = 8 * 3600
DAY = 86400
ONLINE_MODES = frozenset({"online", "live"})
EXAM_MODES = frozenset({"online", "mixed", "live"})
MAX_SITTING = DAY

Interval = tuple[int, int]  # [start, end) in epoch seconds


def day_of(instant: int) -> dt.date:
    return dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + (instant + UTC_OFFSET) // DAY)


def day_bounds(day: dt.date) -> Interval:
    start = (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * DAY - UTC_OFFSET
    return start, start + DAY


@dataclass(frozen=True, slots=True)
class Sitting:
    start: int
    end: int
    media_seconds: int | None = None
    id_passed: int | None = None
    id_failed: int | None = None

    @property
    def has_process_record(self) -> bool:
        return self.media_seconds is not None and self.id_passed is not None and self.id_failed is not None

    def is_online(self, mode: str) -> bool:
        """Online and live sittings always; a mixed course's sitting when it carries a process record."""
        return mode in ONLINE_MODES or (mode == "mixed" and (self.media_seconds is not None
                                                             or self.id_passed is not None))


@dataclass(frozen=True, slots=True)
class Exam:
    questions: int
    correct: int
    passed: bool


@dataclass(frozen=True, slots=True)
class PlanRules:
    window_start: int          # first instant of the window
    window_end: int            # first instant after the deadline day
    max_hours_per_day: int
    minutes_per_hour: int
    min_exam_questions: int

    @property
    def seconds_per_hour(self) -> int:
        return self.minutes_per_hour * 60

    @property
    def day_cap(self) -> int:
        return self.max_hours_per_day * self.seconds_per_hour


@dataclass(frozen=True, slots=True)
class CourseFacts:
    mode: str
    hours: int
    # Public subjects: 学时 of the topic's allotment the person has not been credited yet this year.
    topic_remaining: int | None = None


@dataclass(slots=True)
class PersonState:
    busy: list[Interval] = field(default_factory=list)        # sittings already in the ledger
    day_used: dict[dt.date, int] = field(default_factory=dict)  # seconds already counted per day


@dataclass(frozen=True, slots=True)
class Allocation:
    day: dt.date
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Adjustment:
    rule: str
    seconds: int
    hours: int
    day: dt.date | None
    detail: str

    @property
    def minutes(self) -> int:
        return (self.seconds + 30) // 60


@dataclass(frozen=True, slots=True)
class Decision:
    allocations: tuple[Allocation, ...]
    credited_hours: int
    adjustments: tuple[Adjustment, ...]

    @property
    def counted_seconds(self) -> int:
        return sum(a.seconds for a in self.allocations)

    @property
    def counted_minutes(self) -> int:
        return self.counted_seconds // 60

    def status(self, course_hours: int) -> str:
        if self.credited_hours >= course_hours:
            return "credited"
        return "partial" if self.credited_hours > 0 else "not_credited"


# ---- interval arithmetic ------------------------------------------------------------------------

def total(intervals: Iterable[Interval]) -> int:
    return sum(e - s for s, e in intervals)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(i for i in intervals if i[1] > i[0]):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def subtract(parts: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    """`parts` minus `holes` (both sorted, `holes` merged)."""
    out: list[Interval] = []
    for s, e in parts:
        cur = s
        for hs, he in holes:
            if he <= cur:
                continue
            if hs >= e:
                break
            if hs > cur:
                out.append((cur, hs))
            cur = max(cur, he)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def clip(parts: Sequence[Interval], lo: int, hi: int) -> list[Interval]:
    return [(max(s, lo), min(e, hi)) for s, e in parts if min(e, hi) > max(s, lo)]


def by_day(parts: Iterable[Interval]) -> list[tuple[dt.date, Interval]]:
    out = []
    for s, e in parts:
        while s < e:
            day = day_of(s)
            _, day_end = day_bounds(day)
            out.append((day, (s, min(e, day_end))))
            s = min(e, day_end)
    return out


def take_earliest(parts: Sequence[Interval], seconds: int) -> list[Interval]:
    out = []
    for s, e in parts:
        if seconds <= 0:
            break
        n = min(e - s, seconds)
        out.append((s, s + n))
        seconds -= n
    return out


# ---- refusals (the record is rejected as a whole: 422) ---------------------------------------------

def refusals(mode: str, plan: PlanRules, sittings: Sequence[Sitting], exam: Exam | None,
             now: int) -> list[tuple[str, str, str]]:
    """Problems that refuse the record: (field, rule, detail)."""
    problems: list[tuple[str, str, str]] = []
    if mode in EXAM_MODES:
        if exam is None:
            problems.append(("exam", "exam-too-short",
                             f"{mode} study needs an exam (at least {plan.min_exam_questions} questions)"))
        elif exam.questions < plan.min_exam_questions:
            problems.append(("exam.questions", "exam-too-short",
                             f"the exam has {exam.questions} questions; the plan requires at least "
                             f"{plan.min_exam_questions}"))
    if exam is not None and exam.correct > exam.questions:
        problems.append(("exam.correct", "exam-inconsistent", "more correct answers than questions"))
    for i, s in enumerate(sittings):
        where = f"sittings.{i}"
        if s.end <= s.start:
            problems.append((f"{where}.ended_at", "sitting-order", "a sitting ends after it starts"))
        elif s.end - s.start > MAX_SITTING:
            problems.append((f"{where}.ended_at", "sitting-too-long", "a sitting lasts at most 24 hours"))
        if s.end > now:
            problems.append((f"{where}.ended_at", "sitting-in-future", "a sitting cannot end in the future"))
        if s.is_online(mode) and not s.has_process_record:
            missing = "media_seconds" if s.media_seconds is None else "identity_checks"
            problems.append((f"{where}.{missing}", "no-process-record",
                             "online and live study needs media_seconds and identity_checks (过程性记录)"))
        if s.media_seconds is not None and s.media_seconds < 0:
            problems.append((f"{where}.media_seconds", "sitting-media", "media_seconds cannot be negative"))
    ordered = sorted((i for i, s in enumerate(sittings) if s.end > s.start), key=lambda i: sittings[i].start)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if sittings[b].start < sittings[a].end:
            problems.append((f"sittings.{b}.started_at", "parallel-study",
                             f"sittings {a} and {b} of the record overlap (no parallel videos)"))
    return problems


# ---- the decision -------------------------------------------------------------------------------

class _Adjuster:
    def __init__(self) -> None:
        self.seconds: dict[tuple[str, dt.date | None], int] = defaultdict(int)
        self.hours: dict[tuple[str, dt.date | None], int] = defaultdict(int)
        self.details: dict[str, str] = {}

    def add(self, rule: str, day: dt.date | None, seconds: int, detail: str, hours: int = 0) -> None:
        if seconds <= 0 and hours <= 0:
            return
        self.seconds[(rule, day)] += seconds
        self.hours[(rule, day)] += hours
        self.details[rule] = detail

    def add_by_day(self, rule: str, parts: Iterable[Interval], detail: str) -> None:
        for day, (s, e) in by_day(parts):
            self.add(rule, day, e - s, detail)

    def result(self) -> tuple[Adjustment, ...]:
        keys = sorted(set(self.seconds) | set(self.hours), key=lambda k: (k[1] or dt.date.min, k[0]))
        return tuple(Adjustment(r, self.seconds[(r, d)], self.hours[(r, d)], d, self.details[r]) for r, d in keys)


def decide(course: CourseFacts, plan: PlanRules, sittings: Sequence[Sitting], exam: Exam | None,
           state: PersonState) -> Decision:
    adj = _Adjuster()
    busy = merge(state.busy)
    day_used = dict(state.day_used)
    record_left = course.hours * plan.seconds_per_hour
    allocations: list[Allocation] = []

    for sitting in sorted(sittings, key=lambda s: s.start):
        wall = [(sitting.start, sitting.end)]
        online = sitting.is_online(course.mode)
        if online and not sitting.id_passed:
            adj.add("identity-unverified", day_of(sitting.start),
                    min(sitting.end - sitting.start, sitting.media_seconds or 0),
                    "no identity check passed during the sitting: proxy study (替学) counts nothing")
            continue
        inside = clip(wall, plan.window_start, plan.window_end)
        adj.add_by_day("outside-window", subtract(wall, inside), "only time inside the plan's training window counts")
        free = subtract(inside, busy)
        adj.add_by_day("parallel-study", subtract(inside, free),
                       "time overlapping another sitting of the same person counts once (no parallel videos)")
        if online:
            played = min(total(free), sitting.media_seconds or 0)
            kept = take_earliest(free, played)
            adj.add("media-shortfall", day_of(sitting.start), total(free) - played,
                    "only content actually played counts (speed-up and dragging the progress bar add nothing)")
            free = kept
        for day, (s, e) in by_day(free):
            wanted = min(e - s, record_left)
            taken = min(wanted, max(0, plan.day_cap - day_used.get(day, 0)))
            adj.add("course-hours", day, (e - s) - wanted, f"a record counts at most the course's {course.hours} 学时")
            adj.add("daily-limit", day, wanted - taken,
                    f"at most {plan.max_hours_per_day} 学时 ({plan.day_cap // 60} minutes) count per person and day")
            if taken > 0:
                allocations.append(Allocation(day, s, s + taken))
                day_used[day] = day_used.get(day, 0) + taken
                record_left -= taken

    counted = sum(a.seconds for a in allocations)
    credited = min(course.hours, counted // plan.seconds_per_hour)

    if exam is not None and course.mode in EXAM_MODES and not exam.passed:
        adj.add("exam-not-passed", None, counted, "a failed exam credits nothing", hours=credited)
        return Decision((), 0, adj.result())

    if course.topic_remaining is not None and credited > course.topic_remaining:
        cut = credited - course.topic_remaining
        credited = course.topic_remaining
        # Give back every second beyond the hours still credited, so the day's allowance stays free.
        allocations = _give_back(allocations, counted - credited * plan.seconds_per_hour, cut, adj)
    return Decision(tuple(allocations), credited, adj.result())


def _give_back(allocations: list[Allocation], seconds: int, hours: int, adj: _Adjuster) -> list[Allocation]:
    """Trim the latest allocations by `seconds`, reporting each day's share under `topic-allotment`."""
    kept = list(allocations)
    detail = "a topic never credits more than its allotment per person and year"
    while seconds > 0 and kept:
        last = kept.pop()
        n = min(last.seconds, seconds)
        adj.add("topic-allotment", last.day, n, detail, hours=hours)
        hours = 0  # the hours cut are reported once, on the latest day trimmed
        if n < last.seconds:
            kept.append(Allocation(last.day, last.start, last.end - n))
        seconds -= n
    return kept
