"""Advanced seminars (高级研修): the rules a project must meet, from the year's seminar plan.

Source: 闽人社办〔2025〕67号. Every number lives in the plan (`SeminarRules`); the 2025 values are the
reference data. Days count arrival and departure (含报到和离开时间): end - start + 1.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from xueshi_shared.problems import FieldError

__all__ = ["KINDS", "PROVINCIAL_KINDS", "Project", "SeminarRules", "check_project", "months_before"]

KINDS = ("national", "provincial_demonstration", "engineering", "provincial_ordinary")
PROVINCIAL_KINDS = frozenset({"provincial_demonstration", "engineering", "provincial_ordinary"})


@dataclass(frozen=True)
class SeminarRules:
    deadline: dt.date                      # 须在 2025 年 11 月 30 日前完成办班
    national_min_trainees: int             # 每期不少于 50 人
    national_staff_percent: int            # 工作人员数量控制在研修人数的 10% 以内
    national_staff_max: int                # 最多不超过 10 人
    national_min_days: int                 # 研修时间不少于 5 天
    national_fiscal_budget_max: int        # 财政资助每期上限 10.5 万元
    provincial_min_trainees: int           # 每期不少于 30 人
    provincial_days_low: int               # 4 天左右: warn below
    provincial_days_high: int              # ... and above
    online_percent_max: int                # 线上学员人数不超过总人数的 50%
    subsidy_max: int                       # 示范项目、工程领域专项每期不超过 5 万元
    filing_months: int                     # 开班 1 个月前提交实施方案
    subsidised_kinds: tuple[str, ...] = ("provincial_demonstration", "engineering")
    filing_kinds: tuple[str, ...] = ("national", "provincial_demonstration")


@dataclass(frozen=True)
class Project:
    kind: str
    start_date: dt.date
    end_date: dt.date
    trainees: int
    online_trainees: int
    staff: int
    mode: str
    budget_yuan: int
    funding: str
    plan_filed_on: dt.date | None

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier (clamped to the month's end)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def check_project(p: Project, r: SeminarRules) -> tuple[list[FieldError], list[str]]:
    """(errors, warnings). Each error's rule is one of the contract's `seminar-*` slugs."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    if p.end_date < p.start_date:
        errors.append(FieldError("end_date", "seminar-duration", "the seminar ends before it starts"))
        return errors, warnings
    national = p.kind == "national"

    minimum = r.national_min_trainees if national else r.provincial_min_trainees
    if p.trainees < minimum:
        errors.append(FieldError("trainees", "seminar-trainees",
                                 f"a {p.kind} seminar trains at least {minimum} people (每期不少于{minimum}人)"))
    if national and (p.staff * 100 > p.trainees * r.national_staff_percent or p.staff > r.national_staff_max):
        errors.append(FieldError("staff", "seminar-staff",
                                 f"staff at most {r.national_staff_percent}% of trainees and at most "
                                 f"{r.national_staff_max} (工作人员控制在研修人数的{r.national_staff_percent}%以内)"))
    if national and p.days < r.national_min_days:
        errors.append(FieldError("end_date", "seminar-duration",
                                 f"a national seminar lasts at least {r.national_min_days} days, arrival and "
                                 f"departure included; this one lasts {p.days}"))
    if not national and not r.provincial_days_low <= p.days <= r.provincial_days_high:
        warnings.append(f"provincial seminars last about 4 days ({r.provincial_days_low}-{r.provincial_days_high}); "
                        f"this one lasts {p.days}")
    if p.online_trainees > p.trainees:
        errors.append(FieldError("online_trainees", "seminar-online-share", "more online trainees than trainees"))
    elif p.mode == "offline" and p.online_trainees:
        errors.append(FieldError("online_trainees", "seminar-online-share",
                                 "an offline seminar has no online trainees"))
    elif p.mode == "mixed" and p.online_trainees * 100 > p.trainees * r.online_percent_max:
        errors.append(FieldError("online_trainees", "seminar-online-share",
                                 f"online trainees at most {r.online_percent_max}% of the total (线上学员不超过总人数的"
                                 f"{r.online_percent_max}%)"))
    if p.end_date > r.deadline:
        errors.append(FieldError("end_date", "seminar-deadline", f"the seminar must end by {r.deadline.isoformat()}"))
    if p.funding == "fiscal" and national and p.budget_yuan > r.national_fiscal_budget_max:
        errors.append(FieldError("budget_yuan", "seminar-budget",
                                 f"fiscal funding of a national seminar is at most {r.national_fiscal_budget_max} yuan"))
    if p.funding == "fiscal" and p.kind in r.subsidised_kinds and p.budget_yuan > r.subsidy_max:
        errors.append(FieldError("budget_yuan", "seminar-budget",
                                 f"the subsidy of a {p.kind} seminar is at most {r.subsidy_max} yuan"))
    if p.kind in r.filing_kinds:
        latest = months_before(p.start_date, r.filing_months)
        if p.plan_filed_on is None:
            errors.append(FieldError("plan_filed_on", "seminar-filing",
                                     f"a {p.kind} seminar files its implementation plan by {latest.isoformat()}"))
        elif p.plan_filed_on > latest:
            errors.append(FieldError("plan_filed_on", "seminar-filing",
                                     f"the implementation plan is due {r.filing_months} month(s) before opening, "
                                     f"by {latest.isoformat()}"))
    return errors, warnings
