"""Tables of the `catalog` schema (owned by this service alone).

Other services read plans, courses and bases only through the read-only views created in
migration catalog_0003 (`catalog.published_*`), never these tables.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "catalog"


class Base(DeclarativeBase):
    metadata = sa.MetaData(schema=SCHEMA)


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _created_at() -> Mapped[dt.datetime]:
    return mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


class Plan(Base):
    """A year's public-subject plan; every number the ledger applies comes from here."""

    __tablename__ = "plans"
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    required_hours: Mapped[int] = mapped_column(sa.SmallInteger)
    window_start: Mapped[dt.date] = mapped_column(sa.Date)
    deadline: Mapped[dt.date] = mapped_column(sa.Date)
    max_hours_per_day: Mapped[int] = mapped_column(sa.SmallInteger)
    minutes_per_hour: Mapped[int] = mapped_column(sa.SmallInteger)
    min_exam_questions: Mapped[int] = mapped_column(sa.SmallInteger)
    # 防假学替学: an online sitting whose failed identity checks are more than this share of its checks counts nothing.
    identity_failed_share_max: Mapped[decimal.Decimal] = mapped_column(sa.Numeric(4, 3), server_default="0.5")
    # 如有必要开展其它主题的培训，应在完成上述主题30个学时的基础上组织实施.
    other_topics_allowed: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    source: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = _created_at()
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    __table_args__ = (
        sa.CheckConstraint("window_start <= deadline", name="window_order"),
        sa.CheckConstraint("max_hours_per_day * minutes_per_hour <= 1440", name="day_fits"),
        sa.CheckConstraint("identity_failed_share_max >= 0 AND identity_failed_share_max <= 1",
                           name="identity_share_range"),
    )


class Topic(Base):
    __tablename__ = "topics"
    year: Mapped[int] = mapped_column(sa.SmallInteger, sa.ForeignKey("plans.year"), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    title: Mapped[str] = mapped_column(sa.Text)
    hours: Mapped[int] = mapped_column(sa.SmallInteger)
    examples: Mapped[str | None] = mapped_column(sa.Text)


class Authority(Base):
    __tablename__ = "authorities"
    code: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    directory_row: Mapped[int | None] = mapped_column(sa.SmallInteger)
    personnel_scope: Mapped[str] = mapped_column(sa.Text)
    self_managed: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    effective_from: Mapped[dt.date] = mapped_column(sa.Date)


class Field(Base):
    __tablename__ = "fields"
    code: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    authority: Mapped[str] = mapped_column(sa.String(16), sa.ForeignKey("authorities.code"), index=True)
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    name: Mapped[str] = mapped_column(sa.Text)


class Delegation(Base):
    """An authority's field managed by 省人社厅 for a period (annex 2, 委托书)."""

    __tablename__ = "delegations"
    id: Mapped[uuid.UUID] = _uuid_pk()
    field: Mapped[str] = mapped_column(sa.String(16), sa.ForeignKey("fields.code"), index=True)
    starts_on: Mapped[dt.date] = mapped_column(sa.Date)
    ends_on: Mapped[dt.date | None] = mapped_column(sa.Date)  # last day, inclusive; open when null
    reason: Mapped[str] = mapped_column(sa.Text)
    recorded_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[dt.datetime] = _created_at()
    ended_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    end_reason: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.CheckConstraint("ends_on IS NULL OR starts_on <= ends_on", name="period_order"),)


class TrainingBase(Base):
    """A training base's access application (接入申请表) and its standing."""

    __tablename__ = "bases"
    id: Mapped[uuid.UUID] = _uuid_pk()
    unit_name: Mapped[str] = mapped_column(sa.Text)
    uscc: Mapped[str] = mapped_column(sa.String(18))
    legal_representative: Mapped[str] = mapped_column(sa.Text)
    platform_name: Mapped[str] = mapped_column(sa.Text)
    icp_filing: Mapped[str] = mapped_column(sa.Text)
    platform_url: Mapped[str] = mapped_column(sa.Text)
    level: Mapped[str] = mapped_column(sa.String(16))
    region: Mapped[str] = mapped_column(sa.String(6))
    category: Mapped[str] = mapped_column(sa.String(16))
    scope_region: Mapped[str] = mapped_column(sa.String(6))
    operations_lead: Mapped[dict] = mapped_column(JSONB)
    courseware_lead: Mapped[dict] = mapped_column(JSONB)
    mlps_filing: Mapped[str] = mapped_column(sa.Text)
    # pending: no decision yet; approved: at least one field (or the public category) approved;
    # rejected: every decision was a rejection.
    status: Mapped[str] = mapped_column(sa.String(16), server_default="pending")
    suspended_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    suspension_reason: Mapped[str | None] = mapped_column(sa.Text)
    registered_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[dt.datetime] = _created_at()
    __table_args__ = (
        sa.CheckConstraint("category IN ('public', 'professional')", name="category"),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        # One live application per unit and subject category (the form: 如两种类型都有，需分两张表填报).
        sa.Index("bases_one_per_unit_category", "uscc", "category", unique=True,
                 postgresql_where=sa.text("status <> 'rejected'")),
    )


class BaseDecision(Base):
    """A decision on a base: the public category as a whole (`field` null) or one professional field."""

    __tablename__ = "base_decisions"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("bases.id"), primary_key=True)
    # '' stands for the public category, so the pair stays a primary key.
    field: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    decision: Mapped[str | None] = mapped_column(sa.String(16))  # null until decided
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (sa.CheckConstraint("decision IS NULL OR decision IN ('approved', 'rejected')", name="decision"),)


# A public course may name this instead of a topic of the plan, when the plan allows other topics.
OTHER_TOPIC = "other"


class Course(Base):
    __tablename__ = "courses"
    id: Mapped[uuid.UUID] = _uuid_pk()
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("bases.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.Text)
    year: Mapped[int] = mapped_column(sa.SmallInteger, sa.ForeignKey("plans.year"))
    category: Mapped[str] = mapped_column(sa.String(16))
    topic: Mapped[str | None] = mapped_column(sa.String(8))
    field: Mapped[str | None] = mapped_column(sa.String(16), sa.ForeignKey("fields.code"))
    hours: Mapped[int] = mapped_column(sa.SmallInteger)
    mode: Mapped[str] = mapped_column(sa.String(16))
    exam_questions: Mapped[int] = mapped_column(sa.SmallInteger)
    # pending_review -> approved | rejected; approved -> withdrawn
    status: Mapped[str] = mapped_column(sa.String(16), server_default="pending_review")
    submitted_at: Mapped[dt.datetime] = _created_at()
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    withdrawal_reason: Mapped[str | None] = mapped_column(sa.Text)
    # The first day its sittings count (上线前应组织专家评审): the approving review's day, or a seminar's first day.
    live_from: Mapped[dt.date | None] = mapped_column(sa.Date)
    # A seminar's attendance course: it takes records only through the seminar's attendance upload.
    seminar_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # The plan's topic, or null for OTHER_TOPIC (which no topic row names): what the foreign key checks.
    plan_topic: Mapped[str | None] = mapped_column(sa.String(8), sa.Computed(f"NULLIF(topic, '{OTHER_TOPIC}')",
                                                                             persisted=True))
    __table_args__ = (
        sa.UniqueConstraint("base_id", "code", name="courses_code_per_base"),
        sa.ForeignKeyConstraint(["year", "plan_topic"], ["topics.year", "topics.code"], name="courses_topic"),
        sa.Index("courses_seminar", "seminar_id", unique=True, postgresql_where=sa.text("seminar_id IS NOT NULL")),
        sa.CheckConstraint("(category = 'public') = (topic IS NOT NULL AND field IS NULL)", name="topic_or_field"),
        sa.CheckConstraint("hours >= 1", name="hours_positive"),
        sa.CheckConstraint(
            "status IN ('pending_review', 'approved', 'rejected', 'withdrawn')", name="status"),
    )


class CourseActivity(Base):
    """A cmi5 activity id (an AU's id) of a course: statements of its base about it are study of that course."""

    __tablename__ = "course_activities"
    base_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("bases.id", name="course_activities_base"),
                                               primary_key=True)
    activity_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    course_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), sa.ForeignKey("courses.id", name="course_activities_course"))
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    __table_args__ = (sa.Index("course_activities_course", "course_id"),)


class CourseReview(Base):
    """Expert review (专家评审): who reviewed, the three checks, the decision."""

    __tablename__ = "course_reviews"
    id: Mapped[uuid.UUID] = _uuid_pk()
    course_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("courses.id"), index=True)
    decision: Mapped[str] = mapped_column(sa.String(16))
    reviewers: Mapped[list] = mapped_column(JSONB)
    wording: Mapped[bool] = mapped_column(sa.Boolean)
    policy: Mapped[bool] = mapped_column(sa.Boolean)
    ideology: Mapped[bool] = mapped_column(sa.Boolean)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    # The day of the review meeting (Asia/Shanghai); the course's sittings count from this day on.
    reviewed_on: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[dt.datetime] = _created_at()


class SeminarPlan(Base):
    """A year's advanced-seminar plan: its rules (numbers) and how many projects of each kind it planned."""

    __tablename__ = "seminar_plans"
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    rules: Mapped[dict] = mapped_column(JSONB)
    planned_projects: Mapped[dict] = mapped_column(JSONB)
    closing_materials_months: Mapped[int] = mapped_column(sa.SmallInteger)
    source: Mapped[str | None] = mapped_column(sa.Text)


class Seminar(Base):
    __tablename__ = "seminars"
    id: Mapped[uuid.UUID] = _uuid_pk()
    year: Mapped[int] = mapped_column(sa.SmallInteger, sa.ForeignKey("seminar_plans.year"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    title: Mapped[str] = mapped_column(sa.Text)
    organizer: Mapped[str] = mapped_column(sa.Text)
    organizer_base_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    fields: Mapped[list] = mapped_column(JSONB)
    start_date: Mapped[dt.date] = mapped_column(sa.Date)
    end_date: Mapped[dt.date] = mapped_column(sa.Date)
    location: Mapped[str] = mapped_column(sa.Text)
    trainees: Mapped[int] = mapped_column(sa.Integer)
    online_trainees: Mapped[int] = mapped_column(sa.Integer)
    staff: Mapped[int] = mapped_column(sa.Integer)
    mode: Mapped[str] = mapped_column(sa.String(16))
    budget_yuan: Mapped[int] = mapped_column(sa.Integer)
    # The fiscal subsidy (what the 5万 and 10.5万 caps limit); null: a fiscal project's whole budget.
    subsidy_yuan: Mapped[int | None] = mapped_column(sa.Integer)
    funding: Mapped[str] = mapped_column(sa.String(16))
    plan_filed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    # registered -> approved -> completed; or cancelled
    status: Mapped[str] = mapped_column(sa.String(16), server_default="registered")
    course_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    warnings: Mapped[list] = mapped_column(JSONB, server_default="[]")
    created_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[dt.datetime] = _created_at()


class SeminarChange(Base):
    """A change to a project: before and after, with the written reason (required once approved)."""

    __tablename__ = "seminar_changes"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    seminar_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("seminars.id"), index=True)
    changed_at: Mapped[dt.datetime] = _created_at()
    changed_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    before: Mapped[dict] = mapped_column(JSONB)
    after: Mapped[dict] = mapped_column(JSONB)


class SeminarMaterial(Base):
    __tablename__ = "seminar_materials"
    seminar_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("seminars.id"), primary_key=True)
    item: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    submitted_on: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    recorded_at: Mapped[dt.datetime] = _created_at()


class SurveyResponse(Base):
    """One trainee's answers to the satisfaction survey (annex 2), collected by the organiser."""

    __tablename__ = "survey_responses"
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    seminar_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), sa.ForeignKey("seminars.id"), index=True)
    answers: Mapped[dict] = mapped_column(JSONB)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    submitted_at: Mapped[dt.datetime] = _created_at()
