"""The /stats dashboard's figures, read from the rollups (no aiogram; plain dataclasses).

Every figure comes with the same figure for the previous period of the same length (the
previous calendar month for a month), so the handler can show the change. Money is never
summed across currencies. Days are UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.rollups import STEPS
from bot.analytics.sources import ORDER as SOURCE_ORDER
from bot.analytics.sources import Source, parse
from bot.models import (
    Course,
    Delivery,
    Enrollment,
    Entitlement,
    FunnelProgress,
    Lesson,
    MoneyDaily,
    Order,
    Plan,
    PlanDaily,
    ProductKind,
    User,
    ViewsDaily,
)

AT_RISK_DAYS = 7
# A learner whose waiting lesson arrived longer ago than this has lapsed, not "at risk":
# bounding the look-back keeps the query on the period's deliveries (sent_at index).
AT_RISK_WINDOW_DAYS = 60
MRR_DAYS = 30
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# --- period and scope ---------------------------------------------------------------------


class PeriodKind(StrEnum):
    DAYS = "days"
    MONTH = "month"
    ALL = "all"


class PeriodProblem(StrEnum):
    UNKNOWN = "unknown"
    FUTURE = "future"


@dataclass(frozen=True, slots=True)
class Period:
    code: str  # what the buttons carry: "7", "30", "90", "m2026-03", "all"
    kind: PeriodKind
    start: datetime
    end: datetime  # exclusive; midnight after the last day
    prev_start: datetime | None
    prev_end: datetime | None
    days: int = 0
    month: date | None = None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


_MONTH = re.compile(r"m([0-9]{4})-([0-9]{2})")
DAY_CHOICES = (7, 30, 90)


def parse_period(code: str, now: datetime) -> Period | PeriodProblem:
    today = now.astimezone(UTC).date()
    tomorrow = _midnight(today + timedelta(days=1))
    if code in {str(d) for d in DAY_CHOICES}:
        days = int(code)
        start = tomorrow - timedelta(days=days)
        return Period(
            code,
            PeriodKind.DAYS,
            start,
            tomorrow,
            start - timedelta(days=days),
            start,
            days=days,
        )
    if code == "all":
        return Period(code, PeriodKind.ALL, EPOCH, tomorrow, None, None)
    match = _MONTH.fullmatch(code)
    if match is None:
        return PeriodProblem.UNKNOWN
    year, month = int(match[1]), int(match[2])
    if not (1 <= month <= 12 and 2000 <= year <= 9999):
        return PeriodProblem.UNKNOWN
    first = date(year, month, 1)
    if first > today:
        return PeriodProblem.FUTURE
    nxt = _add_months(first, 1)
    prev = _add_months(first, -1)
    return Period(
        code,
        PeriodKind.MONTH,
        _midnight(first),
        _midnight(nxt),
        _midnight(prev),
        _midnight(first),
        days=(nxt - first).days,
        month=first,
    )


def month_code(day: date) -> str:
    return f"m{day.year:04d}-{day.month:02d}"


def recent_months(now: datetime, count: int = 3) -> list[date]:
    """This month and the ones before it, newest first (the month buttons)."""
    first = now.astimezone(UTC).date().replace(day=1)
    return [_add_months(first, -i) for i in range(count)]


class ScopeProblem(StrEnum):
    UNKNOWN = "unknown"
    NOT_YOURS = "not_yours"  # another creator's, or no such product: the same answer


@dataclass(frozen=True, slots=True)
class Scope:
    code: str  # "a", "c<id>", "p<id>"
    kind: str | None = None  # None: all products
    product_id: int | None = None
    title: str = ""


ALL_PRODUCTS = Scope("a")
_SCOPE = re.compile(r"([cp])([0-9]{1,10})")


async def resolve_scope(session: AsyncSession, creator_id: int, code: str) -> Scope | ScopeProblem:
    if code == "a":
        return ALL_PRODUCTS
    match = _SCOPE.fullmatch(code)
    if match is None or not 0 < int(match[2]) < 2**31:
        return ScopeProblem.UNKNOWN
    product_id = int(match[2])
    model: Any = Course if match[1] == "c" else Plan
    row = (
        await session.execute(select(model.creator_id, model.title).where(model.id == product_id))
    ).first()
    if row is None or row[0] != creator_id:
        return ScopeProblem.NOT_YOURS
    kind = ProductKind.COURSE if match[1] == "c" else ProductKind.PLAN
    return Scope(code, kind, product_id, row[1])


@dataclass(frozen=True, slots=True)
class Product:
    kind: str
    id: int
    title: str


async def products(session: AsyncSession, creator_id: int) -> list[Product]:
    """The creator's courses and plans (the scope buttons)."""
    courses = await session.execute(
        select(Course.id, Course.title).where(Course.creator_id == creator_id).order_by(Course.id)
    )
    plans = await session.execute(
        select(Plan.id, Plan.title).where(Plan.creator_id == creator_id).order_by(Plan.id)
    )
    return [Product(ProductKind.COURSE, i, t) for i, t in courses] + [
        Product(ProductKind.PLAN, i, t) for i, t in plans
    ]


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Money:
    currency: str
    orders: int = 0
    sales_gross: int = 0
    refunds: int = 0
    refunds_gross: int = 0
    gross: int = 0  # after refunds; gross = fee + net
    fee: int = 0
    net: int = 0

    @property
    def average(self) -> int:
        return self.sales_gross // self.orders if self.orders else 0


@dataclass(frozen=True, slots=True)
class SourceRow:
    source: Source
    views: int = 0
    buyers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # per currency, after refunds


@dataclass(frozen=True, slots=True)
class Plans:
    active: int  # at the end of the period (now, for a period that has not ended)
    active_at_start: int
    joined: int
    renewed: int
    expired: int
    mrr: dict[str, int]  # per currency, minor units

    @property
    def churn(self) -> float:
        return self.expired / self.active_at_start if self.active_at_start else 0.0


@dataclass(frozen=True, slots=True)
class LessonRow:
    course_id: int
    course_title: str
    number: int
    title: str
    delivered: int
    done: int

    @property
    def share(self) -> float:
        return self.done / self.delivered if self.delivered else 0.0


@dataclass(frozen=True, slots=True)
class Figures:
    money: list[Money]
    funnel: list[int]  # unique learners per step of STEPS
    sources: list[SourceRow]
    plans: Plans | None
    lessons: list[LessonRow] | None

    @property
    def empty(self) -> bool:
        return (
            not any(self.funnel)
            and not self.money
            and not any(r.views or r.buyers for r in self.sources)
            and (self.plans is None or not (self.plans.active or self.plans.expired))
            and not any(row.delivered or row.done for row in self.lessons or ())
        )


@dataclass(frozen=True, slots=True)
class Dashboard:
    creator_id: int
    period: Period
    scope: Scope
    current: Figures
    previous: Figures | None
    at_risk: int | None  # drip learners at risk now; None when the scope has no course


def _day_range(model: Any, start: datetime, end: datetime) -> Any:
    return and_(model.day >= start.date(), model.day < end.date())


async def _money(
    session: AsyncSession, creator_id: int, scope: Scope, start: datetime, end: datetime
) -> list[Money]:
    m = MoneyDaily
    query = (
        select(
            m.currency,
            func.sum(m.sales),
            func.sum(m.sales_gross),
            func.sum(m.refunds),
            func.sum(m.refunds_gross),
            func.sum(m.gross),
            func.sum(m.fee),
            func.sum(m.net),
        )
        .where(m.creator_id == creator_id, _day_range(m, start, end))
        .group_by(m.currency)
        .order_by(m.currency)
    )
    if scope.kind is not None:
        query = query.where(m.product_kind == scope.kind, m.product_id == scope.product_id)
    return [Money(row[0], *(int(v or 0) for v in row[1:])) for row in await session.execute(query)]


def _depth(end: datetime) -> Any:
    """The furthest step a learner had reached by `end` (1 = viewed … 6 = completed)."""
    f = FunnelProgress
    columns = [f.viewed_at, f.buy_at, f.invoice_at, f.paid_at, f.first_done_at, f.completed_at]
    whens = [(col < end, i + 1) for i, col in reversed(list(enumerate(columns)))]
    return case(*whens, else_=1)


async def _funnel(
    session: AsyncSession, creator_id: int, scope: Scope, start: datetime, end: datetime
) -> list[int]:
    """The cohort that entered the funnel in the period, by the furthest step each reached
    before the period ended. Counting "reached step k or further" makes every step a
    subset of the one before it, so the funnel never widens (a free claim has no invoice,
    yet its learner went past that step)."""
    f = FunnelProgress
    per_user = (
        select(f.user_id, func.max(_depth(end)).label("depth"))
        .where(f.creator_id == creator_id, f.entered_at >= start, f.entered_at < end)
        .group_by(f.user_id)
    )
    if scope.kind is not None:
        per_user = per_user.where(f.product_kind == scope.kind, f.product_id == scope.product_id)
    sub = per_user.subquery()
    counts = {
        int(depth): int(n)
        for depth, n in await session.execute(
            select(sub.c.depth, func.count()).group_by(sub.c.depth)
        )
    }
    return [sum(n for d, n in counts.items() if d >= k) for k in range(1, len(STEPS) + 1)]


async def _sources(
    session: AsyncSession, creator_id: int, scope: Scope, start: datetime, end: datetime
) -> list[SourceRow]:
    views: dict[str, int] = {}
    if scope.kind != ProductKind.PLAN:
        v = ViewsDaily
        q = (
            select(v.source, func.sum(v.views))
            .where(v.creator_id == creator_id, _day_range(v, start, end))
            .group_by(v.source)
        )
        if scope.kind is not None:
            q = q.where(v.course_id == scope.product_id)
        views = {s: int(n or 0) for s, n in await session.execute(q)}
    f = FunnelProgress
    bq = (
        select(f.paid_source, func.count(func.distinct(f.user_id)))
        .where(f.creator_id == creator_id, f.paid_at >= start, f.paid_at < end)
        .group_by(f.paid_source)
    )
    if scope.kind is not None:
        bq = bq.where(f.product_kind == scope.kind, f.product_id == scope.product_id)
    buyers = {parse(s): int(n) for s, n in await session.execute(bq)}
    m = MoneyDaily
    rq = (
        select(m.source, m.currency, func.sum(m.gross))
        .where(m.creator_id == creator_id, _day_range(m, start, end))
        .group_by(m.source, m.currency)
    )
    if scope.kind is not None:
        rq = rq.where(m.product_kind == scope.kind, m.product_id == scope.product_id)
    revenue: dict[Source, dict[str, int]] = {}
    for s, currency, total in await session.execute(rq):
        revenue.setdefault(parse(s), {})[currency] = int(total or 0)
    rows = []
    for source in SOURCE_ORDER:
        row = SourceRow(
            source,
            views.get(source, 0),
            buyers.get(source, 0),
            dict(sorted(revenue.get(source, {}).items())),
        )
        if row.views or row.buyers or row.revenue:
            rows.append(row)
    return rows


def _active_at(at: datetime) -> Any:
    e = Entitlement
    return and_(
        e.starts_at <= at,
        or_(e.expires_at.is_(None), e.expires_at > at),
        or_(e.revoked_at.is_(None), e.revoked_at > at),
    )


async def _plans(
    session: AsyncSession,
    plan_ids: list[int],
    creator_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Plans:
    e = Entitlement
    upto = min(end, now)
    # Only memberships that reach into the period: the cost follows the members of the
    # period, not every member there ever was (nor every lifetime course entitlement).
    periods = dict(
        (await session.execute(select(Plan.id, Plan.period_days).where(Plan.id.in_(plan_ids))))
        .tuples()
        .all()
    )
    periodic = [i for i, days in periods.items() if days]
    lifetime = [i for i, days in periods.items() if not days]
    columns = (
        e.starts_at,
        e.expires_at,
        e.revoked_at,
        Order.currency,
        Order.amount_minor,
        Plan.period_days,
    )
    base = (
        select(*columns)
        .select_from(e)
        .join(Plan, Plan.id == e.product_id)
        .outerjoin(Order, Order.id == e.source_order_id)
        .where(e.starts_at <= upto)
    )
    rows: list[Any] = []
    if periodic:
        # `|| ''` and `+ 0` keep SQLite on the expires_at index, which the period bounds,
        # rather than on the product index (SQLite has no statistics to choose by).
        rows += await session.execute(
            base.where(
                e.product_kind.concat("") == ProductKind.PLAN,
                (e.product_id + 0).in_(periodic),
                e.expires_at >= start,
            )
        )
    if lifetime:
        rows += await session.execute(
            base.where(e.product_kind == ProductKind.PLAN, e.product_id.in_(lifetime))
        )

    def active(row: Any, at: datetime) -> bool:
        starts, expires, revoked = row[0], row[1], row[2]
        return (
            starts <= at and (expires is None or expires > at) and (revoked is None or revoked > at)
        )

    mrr: dict[str, int] = {}
    members = 0
    for row in rows:
        if not active(row, upto):
            continue
        members += 1
        currency, amount, period_days = row[3], row[4], row[5]
        if currency is None or not period_days:
            continue  # lifetime plans and trials recur nothing
        # A 30-day plan counts in full; any other length pro rata to 30 days.
        mrr[currency] = mrr.get(currency, 0) + (amount or 0) * MRR_DAYS // period_days
    at_start = sum(1 for row in rows if active(row, start))
    expired = sum(
        1
        for row in rows
        if row[1] is not None and start <= row[1] < upto and (row[2] is None or row[2] > row[1])
    )
    p = PlanDaily
    joined, renewed = (
        await session.execute(
            select(func.sum(p.joined), func.sum(p.renewed)).where(
                p.creator_id == creator_id, p.plan_id.in_(plan_ids), _day_range(p, start, end)
            )
        )
    ).one()
    return Plans(
        members,
        at_start,
        int(joined or 0),
        int(renewed or 0),
        expired,
        dict(sorted(mrr.items())),
    )


async def _lessons(
    session: AsyncSession, courses: dict[int, str], start: datetime, end: datetime
) -> list[LessonRow]:
    """Per lesson: deliveries sent in the period, and how many of those were marked done
    (by now). Read by the deliveries' sent_at index: the period's rows only."""
    ordered = list(
        await session.execute(
            select(Lesson.course_id, Lesson.id, Lesson.title)
            .where(Lesson.course_id.in_(list(courses)))
            .order_by(Lesson.course_id, Lesson.position, Lesson.id)
        )
    )
    d = Delivery
    counts = {
        lesson_id: (int(sent), int(done))
        for lesson_id, sent, done in await session.execute(
            select(d.lesson_id, func.count(d.id), func.count(d.done_at))
            .join(Lesson, Lesson.id == d.lesson_id)
            .where(d.sent_at >= start, d.sent_at < end, Lesson.course_id.in_(list(courses)))
            .group_by(d.lesson_id)
        )
    }
    rows: list[LessonRow] = []
    number: dict[int, int] = {}
    for course_id, lesson_id, title in ordered:
        number[course_id] = number.get(course_id, 0) + 1
        sent, done = counts.get(lesson_id, (0, 0))
        rows.append(LessonRow(course_id, courses[course_id], number[course_id], title, sent, done))
    return rows


async def _scoped_products(
    session: AsyncSession, creator_id: int, scope: Scope
) -> tuple[dict[int, str], list[int]]:
    if scope.kind == ProductKind.COURSE:
        assert scope.product_id is not None
        return {scope.product_id: scope.title}, []
    if scope.kind == ProductKind.PLAN:
        assert scope.product_id is not None
        return {}, [scope.product_id]
    everything = await products(session, creator_id)
    return (
        {p.id: p.title for p in everything if p.kind == ProductKind.COURSE},
        [p.id for p in everything if p.kind == ProductKind.PLAN],
    )


async def figures(
    session: AsyncSession,
    creator_id: int,
    scope: Scope,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Figures:
    courses, plan_ids = await _scoped_products(session, creator_id, scope)
    return Figures(
        money=await _money(session, creator_id, scope, start, end),
        funnel=await _funnel(session, creator_id, scope, start, end),
        sources=await _sources(session, creator_id, scope, start, end),
        plans=await _plans(session, plan_ids, creator_id, start, end, now) if plan_ids else None,
        lessons=await _lessons(session, courses, start, end) if courses else None,
    )


async def dashboard(
    session: AsyncSession, creator_id: int, period: Period, scope: Scope, now: datetime
) -> Dashboard:
    current = await figures(session, creator_id, scope, period.start, period.end, now)
    previous = None
    if period.prev_start is not None and period.prev_end is not None:
        previous = await figures(
            session, creator_id, scope, period.prev_start, period.prev_end, now
        )
    at_risk = None
    if scope.kind != ProductKind.PLAN:
        courses, _unused = await _scoped_products(session, creator_id, scope)
        at_risk = await count_at_risk(session, list(courses), now)
    return Dashboard(creator_id, period, scope, current, previous, at_risk)


# --- learners at risk -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AtRisk:
    user_id: int
    name: str
    course_id: int
    course_title: str
    quiet_days: int  # days since their last Done (or since they enrolled)


def _at_risk_query(course_ids: list[int], now: datetime) -> Any:
    """Enrolled, entitled, not paused or finished, a lesson delivered in the last
    AT_RISK_WINDOW_DAYS waiting for Done, and no Done for AT_RISK_DAYS."""
    d = Delivery
    candidates = (
        select(d.enrollment_id)
        .join(Lesson, Lesson.id == d.lesson_id)
        .where(
            # sent_at is set only once a lesson went out (no status test: it would lure
            # SQLite onto the status index, every delivery ever sent).
            d.sent_at >= now - timedelta(days=AT_RISK_WINDOW_DAYS),
            d.done_at.is_(None),
            Lesson.course_id.in_(course_ids),
        )
    )
    last_done = (
        select(func.max(d.done_at)).where(d.enrollment_id == Enrollment.id).scalar_subquery()
    )
    quiet_since = func.coalesce(last_done, Enrollment.started_at)
    return (
        select(
            Enrollment.user_id,
            Enrollment.course_id,
            quiet_since.label("quiet_since"),
        )
        .join(
            Entitlement,
            and_(
                Entitlement.user_id == Enrollment.user_id,
                # `|| ''`: drive the query from the period's candidates, not from every
                # course entitlement (SQLite has no statistics to tell them apart).
                Entitlement.product_kind.concat("") == ProductKind.COURSE,
                Entitlement.product_id == Enrollment.course_id,
            ),
        )
        .where(
            Enrollment.id.in_(candidates),
            Enrollment.completed_at.is_(None),
            Enrollment.paused_at.is_(None),
            _active_at(now),
            quiet_since < now - timedelta(days=AT_RISK_DAYS),
        )
    )


async def count_at_risk(session: AsyncSession, course_ids: list[int], now: datetime) -> int:
    if not course_ids:
        return 0
    sub = _at_risk_query(course_ids, now).subquery()
    return int(await session.scalar(select(func.count()).select_from(sub)) or 0)


async def learners_at_risk(
    session: AsyncSession, course_ids: list[int], now: datetime
) -> list[AtRisk]:
    if not course_ids:
        return []
    sub = _at_risk_query(course_ids, now).subquery()
    rows = await session.execute(
        select(sub.c.user_id, User.first_name, Course.id, Course.title, sub.c.quiet_since)
        .join(User, User.id == sub.c.user_id)
        .join(Course, Course.id == sub.c.course_id)
        .order_by(Course.id, sub.c.user_id)
    )
    return [
        AtRisk(user_id, name, course_id, title, (now - _aware(since)).days)
        for user_id, name, course_id, title, since in rows
    ]


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def at_risk_learners(course_ids: list[int], now: datetime) -> Any:
    """The learners at risk in these courses as a query of (user_id, course_id, since):
    the segment a creator can write to (bot.growth.segments)."""
    return _at_risk_query(course_ids, now)
