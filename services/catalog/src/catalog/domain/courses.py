"""Course rules: what a base may submit, what an expert review must contain."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from xueshi_shared.problems import FieldError

__all__ = ["MODES", "NEEDS_EXAM", "ReviewChecks", "course_errors", "review_day_errors", "review_errors",
           "topic_or_field_errors"]

MODES = ("online", "offline", "mixed", "live")
# Online training must include an exam (加入考试环节); mixed and live courses have an online part.
NEEDS_EXAM = frozenset({"online", "mixed", "live"})


def topic_or_field_errors(category: str, topic: str | None, field: str | None) -> list[FieldError]:
    if category == "public":
        if topic is None:
            return [FieldError("topic", "topic-or-field", "a public-subject course names a topic of the year's plan")]
        if field is not None:
            return [FieldError("field", "topic-or-field", "a public-subject course names no professional field")]
    else:
        if field is None:
            return [FieldError("field", "topic-or-field", "a professional course names one of the base's fields")]
        if topic is not None:
            return [FieldError("topic", "topic-or-field", "a professional course names no public-subject topic")]
    return []


def course_errors(
    *, mode: str, exam_questions: int, min_exam_questions: int, hours: int, topic_hours: int | None
) -> list[FieldError]:
    errors: list[FieldError] = []
    if mode in NEEDS_EXAM and exam_questions < min_exam_questions:
        errors.append(FieldError(
            "exam_questions", "exam-questions",
            f"{mode} courses need an exam of at least {min_exam_questions} questions (不少于{min_exam_questions}道题)"))
    if topic_hours is not None and hours > topic_hours:
        errors.append(FieldError(
            "hours", "course-hours-topic",
            f"the topic is allotted {topic_hours} 学时 in the plan; a course for it cannot carry {hours}"))
    return errors


@dataclass(frozen=True, slots=True)
class ReviewChecks:
    wording: bool   # 文字关
    policy: bool    # 政策关
    ideology: bool  # 意识形态关


def review_errors(decision: str, checks: ReviewChecks, reviewers: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if len({r.strip() for r in reviewers}) != len(reviewers):
        errors.append(FieldError("reviewers", "reviewers-distinct", "each expert is listed once"))
    if decision == "approved":
        failed = [name for name, ok in (("wording", checks.wording), ("policy", checks.policy),
                                        ("ideology", checks.ideology)) if not ok]
        for name in failed:
            errors.append(FieldError(
                f"checks.{name}", "review-checks",
                "a course is approved only when it passes all three checks (文字关、政策关、意识形态关)"))
    return errors


def review_day_errors(reviewed_on: dt.date, today: dt.date, window_start: dt.date) -> list[FieldError]:
    """The day of the review meeting: not in the future (it records a meeting held), not before the plan's window
    (a course of the year's plan is reviewed for it)."""
    if reviewed_on > today:
        return [FieldError("reviewed_on", "reviewed-on", "the review meeting's day cannot lie in the future")]
    if reviewed_on < window_start:
        return [FieldError("reviewed_on", "reviewed-on",
                           f"the review meeting's day cannot come before the plan's window ({window_start.isoformat()})")]
    return []
