"""The province's rules for turning a study record into credited 学时. Pure: no I/O, stdlib only.

Times are integer seconds since the Unix epoch (UTC). Days are Asia/Shanghai calendar days, which
are UTC+8 all year (China has kept no daylight-saving time since 1991), so a day is a fixed span.

What `decide` applies, in this order, per sitting (earliest first) and then per record:

- proxy study (`identity-unverified`, `identity-failed`): an online or live sitting with no passed identity check,
  or whose failed checks are more than the plan's share of its checks (防假学替学), counts nothing;
- `before-course-live`: time before the day of the course's expert review (上线前应组织专家评审) counts nothing;
- `outside-window`: only time inside the plan's training window counts;
- parallel videos (`parallel-study`): time overlapping any sitting already in the ledger for the person counts once;
- played content (`media-shortfall`): an online or live sitting counts at most the content actually played
  (min(wall time, media_seconds)), so speeding up or dragging the progress bar adds nothing;
- `course-hours`: a record draws at most course 学时 x minutes_per_hour, earliest sittings first;
- `course-already-credited`: a course's 学时 are a ceiling per person across all its records (retakes, new ids);
- `daily-limit`: per person and day at most max_hours_per_day x minutes_per_hour across everything, first come
  first served;
- `exam-not-passed`: a failed exam credits nothing (and draws nothing from the daily allowance);
- `other-topic-before-required`: a course of another public topic credits only once the person's plan topics hold
  the plan's required 学时 (其它主题的培训应在完成上述主题30个学时的基础上组织实施); otherwise nothing, drawn from no day;
- `topic-allotment`: a public-subject topic never credits more than its allotment per person and year;
- `partial-hour`: a record draws from the person's days only the minutes of the 学时 it credits (每天不超过12学时:
  the day's cap counts 学时), so minutes short of a whole 学时 neither count nor use up the day.

Minutes cut by the last three are given back to the days they were drawn from, latest first.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = [
    "OTHER_TOPIC", "Adjustment", "Allocation", "CourseFacts", "Decision", "Exam", "PersonState", "PlanRules",
    "Sitting", "day_bounds", "day_of", "decide", "refusals", "subtract", "total",
]

UTC_OFFSET = 8 * 3600
DAY = 86400
ONLINE_MODES = frozenset({"online", "live"})
EXAM_MODES = frozenset({"online", "mixed", "live"})
SITTING_MODES = frozenset({"online", "offline"})
MAX_SITTING = DAY
# A public course of a topic outside the plan's five (when the plan allows other topics).
OTHER_TOPIC = "other"

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
    mode: str | None = None  # a mixed course's sitting: "online" or "offline"

    @property
    def has_identity_checks(self) -> bool:
        return self.id_passed is not None and self.id_failed is not None

    def is_online(self, course_mode: str) -> bool:
        """Online and live courses' sittings; a mixed course's sittings that say they were online."""
        return course_mode in ONLINE_MODES or (course_mode == "mixed" and self.mode == "online")


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
    required_hours: int = 30   # what the plan's topics add up to (公需科目 30 学时)
    # 防假学替学: a sitting counts nothing when more than this share of its identity checks failed.
    identity_failed_share_max: Fraction = Fraction(1, 2)

    @property
    def seconds_per_hour(self) -> int:
        return self.minutes_per_hour * 60

    @property
    def day_cap(self) -> int:
        return self.max_hours_per_day * self.seconds_per_hour

    def identity_failed(self, sitting: Sitting) -> bool:
        """Whether the sitting's failed identity checks are more than the plan allows of all its checks."""
        failed, checks = sitting.id_failed or 0, (sitting.id_passed or 0) + (sitting.id_failed or 0)
        return checks > 0 and failed > self.identity_failed_share_max * checks


@dataclass(frozen=True, slots=True)
class CourseFacts:
    mode: str
    hours: int
    year: int = 0
    topic: str | None = None        # public subjects: the plan's topic code, or OTHER_TOPIC
    allotment: int | None = None    # public subjects of a plan topic: the topic's 学时
    key: Hashable = None            # the course (its id): its 学时 are credited once per person
    live_from: int | None = None    # first instant its sittings count: the day of its expert review
    seminar: bool = False           # a seminar's attendance: no exam (the completion assessment is apart)


@dataclass(slots=True)
class PersonState:
    """What the ledger holds for the person that the rules read (over the span of the records decided)."""

    busy: list[Interval] = field(default_factory=list)        # sittings already in the ledger
    day_used: dict[dt.date, int] = field(default_factory=dict)  # seconds already counted per day
    topic_used: dict[tuple[int, str], int] = field(default_factory=dict)  # (plan year, public topic) -> 学时
    course_used: dict[Hashable, int] = field(default_factory=dict)       # course -> 学时

    def plan_topic_hours(self, year: int) -> int:
        """学时 credited in the year's plan topics (other topics never count toward the plan's requirement)."""
        return sum(n for (y, topic), n in self.topic_used.items() if y == year and topic != OTHER_TOPIC)

    def add(self, course: CourseFacts, sittings: Iterable[Sitting], decision: Decision) -> None:
        """Take in a decided record: what the ledger holds for the person once it is written."""
        self.busy.extend((s.start, s.end) for s in sittings)
        for a in decision.allocations:
            self.day_used[a.day] = self.day_used.get(a.day, 0) + a.seconds
        if decision.credited_hours:
            if course.topic is not None:
                key = (course.year, course.topic)
                self.topic_used[key] = self.topic_used.get(key, 0) + decision.credited_hours
            self.course_used[course.key] = self.course_used.get(course.key, 0) + decision.credited_hours


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

def refusals(course: CourseFacts, plan: PlanRules, sittings: Sequence[Sitting], exam: Exam | None,
             now: int) -> list[tuple[str, str, str]]:
    """Problems that refuse the record: (field, rule, detail)."""
    problems: list[tuple[str, str, str]] = []
    mode = course.mode
    if mode in EXAM_MODES and not course.seminar:
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
            problems.append((f"{where}.ended_at", "sitting-order",
                             "the sitting ends before it starts (or when it starts): ended_at must be after "
                             "started_at"))
        elif s.end - s.start > MAX_SITTING:
            problems.append((f"{where}.ended_at", "sitting-too-long", "a sitting lasts at most 24 hours"))
        if s.end > now:
            problems.append((f"{where}.ended_at", "sitting-in-future", "a sitting cannot end in the future"))
        if mode == "mixed" and s.mode not in SITTING_MODES:
            problems.append((f"{where}.mode", "sitting-mode",
                             "a mixed course's sittings say whether they were online or offline (mode)"))
        elif mode != "mixed" and s.mode is not None:
            problems.append((f"{where}.mode", "sitting-mode", f"only a mixed course's sittings carry a mode; this "
                                                              f"course is {mode}"))
        if s.is_online(mode):
            # Seminars' online days carry identity checks; the played time is for courses of content.
            if s.media_seconds is None and not course.seminar:
                problems.append((f"{where}.media_seconds", "no-process-record",
                                 "online and live study needs media_seconds and identity_checks (过程性记录)"))
            elif not s.has_identity_checks:
                problems.append((f"{where}.identity_checks", "no-process-record",
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
    per_hour = plan.seconds_per_hour
    course_left = course.hours * per_hour
    ceiling_left = max(0, course.hours - state.course_used.get(course.key, 0)) * per_hour
    allocations: list[Allocation] = []

    for sitting in sorted(sittings, key=lambda s: s.start):
        wall = [(sitting.start, sitting.end)]
        online = sitting.is_online(course.mode)
        if online and (not sitting.id_passed or plan.identity_failed(sitting)):
            played = sitting.end - sitting.start if sitting.media_seconds is None else sitting.media_seconds
            if not sitting.id_passed:
                adj.add("identity-unverified", day_of(sitting.start), min(sitting.end - sitting.start, played),
                        "no identity check passed during the sitting: proxy study (替学) counts nothing")
            else:
                adj.add("identity-failed", day_of(sitting.start), min(sitting.end - sitting.start, played),
                        f"more than {plan.identity_failed_share_max} of the sitting's identity checks failed: "
                        "proxy study (防假学替学) counts nothing")
            continue
        if course.live_from is not None:
            live = clip(wall, course.live_from, sitting.end)
            adj.add_by_day("before-course-live", subtract(wall, live),
                           "time before the course's expert review (上线前应组织专家评审) counts nothing")
            wall = live
        inside = clip(wall, plan.window_start, plan.window_end)
        adj.add_by_day("outside-window", subtract(wall, inside), "only time inside the plan's training window counts")
        free = subtract(inside, busy)
        adj.add_by_day("parallel-study", subtract(inside, free),
                       "time overlapping another sitting of the same person counts once (no parallel videos)")
        if online and sitting.media_seconds is not None:
            played = min(total(free), sitting.media_seconds)
            kept = take_earliest(free, played)
            adj.add("media-shortfall", day_of(sitting.start), total(free) - played,
                    "only content actually played counts (speed-up and dragging the progress bar add nothing)")
            free = kept
        for day, (s, e) in by_day(free):
            length = e - s
            of_course = min(length, course_left)
            wanted = min(of_course, ceiling_left)
            taken = min(wanted, max(0, plan.day_cap - day_used.get(day, 0)))
            adj.add("course-hours", day, length - of_course, f"a record counts at most the course's {course.hours} 学时")
            adj.add("course-already-credited", day, of_course - wanted,
                    f"the course's {course.hours} 学时 are credited once per person, across all its records")
            adj.add("daily-limit", day, wanted - taken,
                    f"at most {plan.max_hours_per_day} 学时 ({plan.day_cap // 60} minutes) count per person and day")
            if taken > 0:
                allocations.append(Allocation(day, s, s + taken))
                day_used[day] = day_used.get(day, 0) + taken
                course_left -= taken
                ceiling_left -= taken

    counted = sum(a.seconds for a in allocations)
    credited = min(course.hours, counted // per_hour)

    if exam is not None and course.mode in EXAM_MODES and not course.seminar and not exam.passed:
        adj.add("exam-not-passed", None, counted, "a failed exam credits nothing", hours=credited)
        return Decision((), 0, adj.result())
    if course.topic == OTHER_TOPIC and state.plan_topic_hours(course.year) < plan.required_hours:
        adj.add("other-topic-before-required", None, counted,
                f"other topics credit only after the plan's {plan.required_hours} 学时 of its own topics "
                "(应在完成上述主题学时的基础上组织实施)", hours=credited)
        return Decision((), 0, adj.result())

    # Minutes short of a whole 学时 neither count nor use up the day.
    allocations = _give_back(allocations, counted - credited * per_hour, 0, "partial-hour",
                             f"a 学时 is {plan.minutes_per_hour} minutes: minutes short of a whole 学时 count "
                             "nothing and leave the day's allowance free", adj)
    if course.allotment is not None:
        remaining = max(0, course.allotment - state.topic_used.get((course.year, course.topic or ""), 0))
        if credited > remaining:
            cut = credited - remaining
            credited = remaining
            allocations = _give_back(allocations, cut * per_hour, cut, "topic-allotment",
                                     "a topic never credits more than its allotment per person and year", adj)
    return Decision(tuple(allocations), credited, adj.result())


def _give_back(allocations: list[Allocation], seconds: int, hours: int, rule: str, detail: str,
               adj: _Adjuster) -> list[Allocation]:
    """Trim the latest allocations by `seconds`, reporting each day's share under `rule` (and the `hours` cut once,
    on the latest day trimmed)."""
    kept = list(allocations)
    while seconds > 0 and kept:
        last = kept.pop()
        n = min(last.seconds, seconds)
        adj.add(rule, last.day, n, detail, hours=hours)
        hours = 0
        if n < last.seconds:
            kept.append(Allocation(last.day, last.start, last.end - n))
        seconds -= n
    return kept
