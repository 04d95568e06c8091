"""A seminar's roster against the notice's online rule (闽人社办〔2025〕67号: 原则上应线下办班，线上线下相结合的班次，
线上学员人数不超过总人数的50%). Pure, stdlib only."""

from __future__ import annotations

__all__ = ["online_share_problem"]


def online_share_problem(mode: str, percent_max: int, trainees: int, online: int) -> str | None:
    """Why a seminar's roster of `trainees`, `online` of them online, breaks the online rule, or None."""
    if mode != "mixed":
        return "an offline seminar has no online trainees" if online else None
    if online * 100 > trainees * percent_max:
        return (f"a mixed seminar's online trainees are at most {percent_max}% of its roster (线上学员人数不超过总人数的"
                f"{percent_max}%); with this upload {online} of {trainees} would be online: upload the offline "
                "trainees in the same upload or first")
    return None
