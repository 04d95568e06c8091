"""Advanced seminars (高级研修): the rules a project must meet, from the year's seminar plan.

Source: 闽人社办〔2025〕67号. Every number lives in the plan (`SeminarRules`); the 2025 values are the
reference data. Days count arrival and departure (含报到和离开时间): end - start + 1.

Money: the caps limit the fiscal subsidy (`subsidy_yuan`; when omitted, a fiscal project's whole budget): a
national fiscal project at most 10.5万, a demonstration or engineering project at most 5万; a budget beyond the
subsidy is the organiser's own money and is allowed. What is owed after the seminar follows the kind: the nine
closing materials of demonstration and engineering projects (to 省人社厅), the reimbursement materials
(经费报销材料, to the ministry's centre) of national fiscal projects, nothing for the others; each within a month.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from xueshi_shared.problems import FieldError

__all__ = ["KINDS", "MATERIALS", "PROVINCIAL_KINDS", "REIMBURSEMENT", "SURVEY_ITEMS", "Project", "SeminarRules",
           "check_project", "ended", "materials_checklist", "materials_due", "materials_owed", "minimum_trainees",
           "months_before", "subsidy_eligible", "survey_statistics"]

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
    subsidy_yuan: int | None = None

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def subsidy(self) -> int:
        """The fiscal subsidy: as given, or a fiscal project's whole budget; a self-funded project has none."""
        if self.subsidy_yuan is not None:
            return self.subsidy_yuan
        return self.budget_yuan if self.funding == "fiscal" else 0


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier (clamped to the month's end)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def minimum_trainees(kind: str, r: SeminarRules) -> int:
    """每期不少于 50 人 (national), 30 人 (provincial)."""
    return r.national_min_trainees if kind == "national" else r.provincial_min_trainees


def check_project(p: Project, r: SeminarRules) -> tuple[list[FieldError], list[str]]:
    """(errors, warnings). Each error's rule is one of the contract's `seminar-*` slugs."""
    errors: list[FieldError] = []
    warnings: list[str] = []
    if p.end_date < p.start_date:
        errors.append(FieldError("end_date", "seminar-duration", "the seminar ends before it starts"))
        return errors, warnings
    national = p.kind == "national"

    minimum = minimum_trainees(p.kind, r)
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
    errors += _money_errors(p, r)
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


def _money_errors(p: Project, r: SeminarRules) -> list[FieldError]:
    # The field to blame: the subsidy when it was given, else the budget that stands for it.
    where = "subsidy_yuan" if p.subsidy_yuan is not None else "budget_yuan"
    if p.subsidy_yuan is not None and p.funding != "fiscal" and p.subsidy_yuan > 0:
        return [FieldError("subsidy_yuan", "seminar-budget", "a self-funded project has no fiscal subsidy")]
    if p.subsidy_yuan is not None and p.subsidy_yuan > p.budget_yuan:
        return [FieldError("subsidy_yuan", "seminar-budget", "the subsidy cannot exceed the project's budget")]
    if p.funding == "fiscal" and p.kind == "national" and p.subsidy > r.national_fiscal_budget_max:
        return [FieldError(where, "seminar-budget", f"fiscal funding of a national seminar is at most "
                                                    f"{r.national_fiscal_budget_max} yuan (每期上限10.5万元)")]
    if p.funding == "fiscal" and p.kind in r.subsidised_kinds and p.subsidy > r.subsidy_max:
        return [FieldError(where, "seminar-budget", f"the subsidy of a {p.kind} seminar is at most {r.subsidy_max} "
                                                    "yuan (每期不超过5万元)")]
    return []


# ---- after the seminar --------------------------------------------------------------------------

# Closing materials of demonstration and engineering projects (办班结束后 1 个月内报送), in the notice's order.
MATERIALS = {
    "notice": "开班通知",
    "summary": "总结报告",
    "settlement": "经费结算表",
    "roster": "学员名单",
    "sign_in_sheets": "学员和工作人员签到表",
    "satisfaction_statistics": "学员满意度测评统计表",
    "outcomes_report": "专业领域研究成果报告",
    "news": "图文动态信息",
    "receipts": "补助款票据（附户名、账号、开户行）",
}
# What a national fiscal project owes the ministry's centre (人社部事业单位人事服务中心) within a month.
REIMBURSEMENT = {"reimbursement": "经费报销材料"}

# Satisfaction survey items (annex 2, 学员满意度测评表). The annex's form itself is not part of the published
# text we hold, so these are the dimensions the notice asks projects to be judged on.
SURVEY_ITEMS = {
    "topic": "研修选题",
    "content": "课程内容",
    "experts": "授课专家",
    "methods": "研修方式（主题报告、专题研讨、现场教学等）",
    "organisation": "组织管理",
    "logistics": "食宿安排",
    "overall": "总体评价",
}
SURVEY_SCALE = ("satisfied", "fairly_satisfied", "dissatisfied")  # 满意 / 基本满意 / 不满意


@dataclass(frozen=True)
class MaterialStatus:
    item: str
    label: str
    submitted_on: dt.date | None
    due: dt.date
    missing: bool
    overdue: bool


def materials_owed(kind: str, funding: str, rules: SeminarRules) -> dict[str, str]:
    """The materials a project owes after the seminar (item -> label): the nine closing materials of demonstration
    and engineering projects, the reimbursement materials of a national fiscal project, none otherwise."""
    if kind in rules.subsidised_kinds:
        return MATERIALS
    if kind == "national" and funding == "fiscal":
        return REIMBURSEMENT
    return {}


def materials_due(end_date: dt.date, months: int) -> dt.date:
    return months_before(end_date, -months)


def materials_checklist(owed: dict[str, str], end_date: dt.date, months: int, submitted: dict[str, dt.date],
                        today: dt.date) -> list[MaterialStatus]:
    due = materials_due(end_date, months)
    out = []
    for item, label in owed.items():
        on = submitted.get(item)
        late = (on is None and today > due) or (on is not None and on > due)
        out.append(MaterialStatus(item, label, on, due, on is None, late))
    return out


def subsidy_eligible(kind: str, funding: str, checklist: list[MaterialStatus], rules: SeminarRules) -> bool | None:
    """Subsidised projects lose the subsidy when materials are late (未按规定要求报备材料的项目，不予经费补助); a national
    fiscal project's subsidy is settled on its reimbursement materials, due within the same month (None: no
    subsidy)."""
    if funding != "fiscal" or (kind not in rules.subsidised_kinds and kind != "national"):
        return None
    return not any(m.overdue for m in checklist)


def survey_statistics(responses: list[dict[str, str]]) -> dict[str, dict[str, float | int]]:
    stats: dict[str, dict[str, float | int]] = {}
    for item in SURVEY_ITEMS:
        counts = {level: sum(1 for r in responses if r.get(item) == level) for level in SURVEY_SCALE}
        answered = sum(counts.values())
        rate = (counts["satisfied"] + counts["fairly_satisfied"]) / answered if answered else 0.0
        stats[item] = {**counts, "answered": answered, "satisfaction_rate": round(rate, 4)}
    return stats


def ended(end_date: dt.date, today: dt.date) -> bool:
    """A seminar has ended once its last day is past (in Fujian): what was held is no longer a plan to change."""
    return today > end_date
