"""The /stats dashboard's figures, read from the rollups (no aiogram; plain dataclasses).

Every figure comes with the same figure for the previous period of the same length (the
previous calendar month for a month), so the handler can show the change. Money is never
summed across currencies. Days are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.periods import (
    Period,
    Scope,
)
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


@dataclass(frozen=True, slots=True)
class Product:
    kind: str
    id: int
    title: str


async def products(session: AsyncSession, creator_id: int) -> list[Product]:
    """The creator's courses, then their plans (the scope buttons): one read."""
    both = union_all(
        select(literal(ProductKind.COURSE.value).label("kind"), Course.id, Course.title).where(
            Course.creator_id == creator_id
        ),
        select(literal(ProductKind.PLAN.value).label("kind"), Plan.id, Plan.title).where(
            Plan.creator_id == creator_id
        ),
    ).subquery()
    rows = await session.execute(
        select(both.c.kind, both.c.id, both.c.title).order_by(both.c.kind, both.c.id)
    )
    return [Product(kind, i, title) for kind, i, title in rows]


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


@dataclass(frozen=True, slots=True)
class Spans:
    """The period and, when it has one, the previous period of the same length, which
    ends where the period starts. Each figure is one query over both, grouped by a CASE
    on the period (0 = the period, 1 = the one before)."""

    start: datetime
    end: datetime
    prev_start: datetime | None = None

    @property
    def low(self) -> datetime:
        return self.start if self.prev_start is None else self.prev_start

    @property
    def count(self) -> int:
        return 1 if self.prev_start is None else 2

    def bounds(self, which: int) -> tuple[datetime, datetime]:
        return (self.start, self.end) if which == 0 else (self.low, self.start)

    def which(self, column: Any) -> Any:
        """0 for a moment in the period, 1 for one in the period before."""
        if self.prev_start is None:
            return literal(0)
        return case((column >= self.start, 0), else_=1)

    def day_which(self, model: Any) -> Any:
        """The same for a rollup's day."""
        if self.prev_start is None:
            return literal(0)
        return case((model.day >= self.start.date(), 0), else_=1)

    def days(self, model: Any) -> Any:
        return and_(model.day >= self.low.date(), model.day < self.end.date())


Revenue = dict[Source, dict[str, int]]  # per source and currency, after refunds


async def _money(
    session: AsyncSession, creator_id: int, scope: Scope, spans: Spans
) -> tuple[list[list[Money]], list[Revenue]]:
    """The money per currency and the revenue per source: one read of the rollup."""
    m = MoneyDaily
    which = spans.day_which(m).label("which")
    query = (
        select(
            which,
            m.currency,
            m.source,
            func.sum(m.sales),
            func.sum(m.sales_gross),
            func.sum(m.refunds),
            func.sum(m.refunds_gross),
            func.sum(m.gross),
            func.sum(m.fee),
            func.sum(m.net),
        )
        .where(m.creator_id == creator_id, spans.days(m))
        .group_by(which, m.currency, m.source)
    )
    if scope.kind is not None:
        query = query.where(m.product_kind == scope.kind, m.product_id == scope.product_id)
    sums: list[dict[str, list[int]]] = [{} for _i in range(spans.count)]
    revenue: list[Revenue] = [{} for _i in range(spans.count)]
    for w, currency, source, *values in await session.execute(query):
        figures = [int(v or 0) for v in values]
        total = sums[int(w)].setdefault(currency, [0] * len(figures))
        for k, v in enumerate(figures):
            total[k] += v
        by_source = revenue[int(w)].setdefault(parse(source), {})
        by_source[currency] = by_source.get(currency, 0) + figures[4]  # gross
    money = [[Money(c, *sums[i][c]) for c in sorted(sums[i])] for i in range(spans.count)]
    return money, revenue


def _depth(end: datetime) -> Any:
    """The furthest step a learner had reached by `end` (1 = viewed … 6 = completed)."""
    f = FunnelProgress
    columns = [f.viewed_at, f.buy_at, f.invoice_at, f.paid_at, f.first_done_at, f.completed_at]
    whens = [(col < end, i + 1) for i, col in reversed(list(enumerate(columns)))]
    return case(*whens, else_=1)


async def _funnel(
    session: AsyncSession, creator_id: int | None, scope: Scope, spans: Spans
) -> list[list[int]]:
    """The cohort that entered the funnel in the period, by the furthest step each reached
    before the period ended. Counting "reached step k or further" makes every step a
    subset of the one before it, so the funnel never widens (a free claim has no invoice,
    yet its learner went past that step)."""
    f = FunnelProgress
    which = spans.which(f.entered_at).label("which")
    # The depth at the end of the learner's own period (the previous one ends at start).
    depth = (
        _depth(spans.end)
        if spans.prev_start is None
        else (case((f.entered_at >= spans.start, _depth(spans.end)), else_=_depth(spans.start)))
    )
    per_user = (
        select(which, f.user_id, func.max(depth).label("depth"))
        .where(f.entered_at >= spans.low, f.entered_at < spans.end)
        .group_by(which, f.user_id)
    )
    if creator_id is not None:  # None: the whole platform (/chart for platform owners)
        per_user = per_user.where(f.creator_id == creator_id)
    if scope.kind is not None:
        per_user = per_user.where(f.product_kind == scope.kind, f.product_id == scope.product_id)
    sub = per_user.subquery()
    counts: list[dict[int, int]] = [{} for _i in range(spans.count)]
    for w, d, n in await session.execute(
        select(sub.c.which, sub.c.depth, func.count()).group_by(sub.c.which, sub.c.depth)
    ):
        counts[int(w)][int(d)] = int(n)
    return [
        [sum(n for d, n in c.items() if d >= k) for k in range(1, len(STEPS) + 1)] for c in counts
    ]


async def funnel(session: AsyncSession, scope: Scope, period: Period) -> list[int]:
    """The dashboard's funnel of the period alone, the same query and figures (the chart
    draws it); a scope without a creator is the whole platform's."""
    spans = Spans(period.start, period.end)
    return (await _funnel(session, scope.creator_id, scope, spans))[0]


async def _sources(
    session: AsyncSession, creator_id: int, scope: Scope, spans: Spans, revenue: list[Revenue]
) -> list[list[SourceRow]]:
    views: list[dict[str, int]] = [{} for _i in range(spans.count)]
    v = ViewsDaily
    which = spans.day_which(v).label("which")
    q = (
        select(which, v.source, func.sum(v.views))
        .where(v.creator_id == creator_id, spans.days(v))
        .group_by(which, v.source)
    )
    if scope.kind is not None:
        q = q.where(v.product_kind == scope.kind, v.product_id == scope.product_id)
    for w, src, n in await session.execute(q):
        views[int(w)][src] = int(n or 0)
    f = FunnelProgress
    which = spans.which(f.paid_at).label("which")
    bq = (
        select(which, f.paid_source, func.count(func.distinct(f.user_id)))
        .where(f.creator_id == creator_id, f.paid_at >= spans.low, f.paid_at < spans.end)
        .group_by(which, f.paid_source)
    )
    if scope.kind is not None:
        bq = bq.where(f.product_kind == scope.kind, f.product_id == scope.product_id)
    buyers: list[dict[Source, int]] = [{} for _i in range(spans.count)]
    for w, src, n in await session.execute(bq):
        buyers[int(w)][parse(src)] = int(n)
    out: list[list[SourceRow]] = []
    for i in range(spans.count):
        rows = []
        for source in SOURCE_ORDER:
            row = SourceRow(
                source,
                views[i].get(source, 0),
                buyers[i].get(source, 0),
                dict(sorted(revenue[i].get(source, {}).items())),
            )
            if row.views or row.buyers or row.revenue:
                rows.append(row)
        out.append(rows)
    return out


def _active_at(at: datetime, e: Any = Entitlement) -> Any:
    return and_(
        e.starts_at <= at,
        or_(e.expires_at.is_(None), e.expires_at > at),
        or_(e.revoked_at.is_(None), e.revoked_at > at),
    )


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


async def _plans(
    session: AsyncSession,
    plan_ids: list[int],
    creator_id: int,
    spans: Spans,
    now: datetime,
) -> list[Plans]:
    """Members, churn and MRR summed in the database over the memberships that reach
    into the periods (or never end): their cost follows the members of the periods, not
    every member there ever was, and only a row per currency comes back."""
    e, upto = Entitlement, min(spans.end, now)
    columns = (
        e.starts_at.label("starts_at"),
        e.expires_at.label("expires_at"),
        e.revoked_at.label("revoked_at"),
        Order.currency.label("currency"),
        Order.amount_minor.label("amount"),
        Plan.period_days.label("period_days"),
    )

    def members(reach: Any) -> Any:
        # Both halves read the (product, expires_at, …) index by range; an OR would not.
        return (
            select(*columns)
            .select_from(e)
            .join(Plan, Plan.id == e.product_id)
            .outerjoin(Order, Order.id == e.source_order_id)
            .where(
                e.product_kind == ProductKind.PLAN,
                e.product_id.in_(plan_ids),
                e.starts_at <= upto,
                reach,
            )
        )

    m = union_all(members(e.expires_at >= spans.low), members(e.expires_at.is_(None))).subquery()
    sums: list[Any] = []
    for i in range(spans.count):
        start, end = spans.bounds(i)
        last = min(end, now)
        # A 30-day plan counts in full; any other length pro rata to 30 days; lifetime
        # plans and trials (no order) recur nothing.
        recurs = and_(_active_at(last, m.c), m.c.period_days > 0, m.c.currency.is_not(None))
        ended = and_(
            m.c.expires_at.is_not(None),
            m.c.expires_at >= start,
            m.c.expires_at < last,
            or_(m.c.revoked_at.is_(None), m.c.revoked_at > m.c.expires_at),
        )
        sums += [
            _count(_active_at(last, m.c)),
            _count(_active_at(start, m.c)),
            _count(ended),
            _count(recurs),
            func.sum(case((recurs, m.c.amount * MRR_DAYS // m.c.period_days), else_=0)),
        ]
    totals = [[0, 0, 0] for _i in range(spans.count)]
    mrr: list[dict[str, int]] = [{} for _i in range(spans.count)]
    query = select(m.c.currency, *sums).group_by(m.c.currency)
    for currency, *values in await session.execute(query):
        for i in range(spans.count):
            figures = [int(v or 0) for v in values[i * 5 : i * 5 + 5]]
            totals[i] = [a + b for a, b in zip(totals[i], figures[:3], strict=True)]
            if figures[3]:  # some member pays this currency on a recurring plan
                mrr[i][currency] = figures[4]

    p = PlanDaily
    which = spans.day_which(p).label("which")
    grew: list[tuple[int, int]] = [(0, 0)] * spans.count
    for w, joined, renewed in await session.execute(
        select(which, func.sum(p.joined), func.sum(p.renewed))
        .where(p.creator_id == creator_id, p.plan_id.in_(plan_ids), spans.days(p))
        .group_by(which)
    ):
        grew[int(w)] = (int(joined or 0), int(renewed or 0))
    return [
        Plans(
            totals[i][0],
            totals[i][1],
            *grew[i],
            totals[i][2],
            dict(sorted(mrr[i].items())),
        )
        for i in range(spans.count)
    ]


async def _lessons(
    session: AsyncSession, courses: dict[int, str], spans: Spans
) -> list[list[LessonRow]]:
    """Per lesson: deliveries sent in the period, and how many of those were marked done
    (by now). One read: the lessons in order, each with its counts (none: zeros)."""
    d, course_ids = Delivery, list(courses)
    which = spans.which(d.sent_at).label("which")
    # By the (lesson, sent_at, done_at) index: the creator's lessons' deliveries of the
    # periods, read from the index alone.
    counted = (
        select(
            which,
            d.lesson_id.label("lesson_id"),
            func.count().label("sent"),
            func.count(d.done_at).label("done"),
        )
        .where(
            d.lesson_id.in_(select(Lesson.id).where(Lesson.course_id.in_(course_ids))),
            d.sent_at >= spans.low,
            d.sent_at < spans.end,
        )
        .group_by(which, d.lesson_id)
        .subquery()
    )
    ordered: dict[int, tuple[int, str]] = {}  # lesson id: (course id, title)
    counts: list[dict[int, tuple[int, int]]] = [{} for _i in range(spans.count)]
    for course_id, lesson_id, title, w, sent, done in await session.execute(
        select(
            Lesson.course_id,
            Lesson.id,
            Lesson.title,
            counted.c.which,
            counted.c.sent,
            counted.c.done,
        )
        .outerjoin(counted, counted.c.lesson_id == Lesson.id)
        .where(Lesson.course_id.in_(course_ids))
        .order_by(Lesson.course_id, Lesson.position, Lesson.id)
    ):
        ordered[lesson_id] = (course_id, title)
        if w is not None:
            counts[int(w)][lesson_id] = (int(sent), int(done))
    out: list[list[LessonRow]] = []
    for i in range(spans.count):
        rows: list[LessonRow] = []
        number: dict[int, int] = {}
        for lesson_id, (course_id, title) in ordered.items():
            number[course_id] = number.get(course_id, 0) + 1
            sent, done = counts[i].get(lesson_id, (0, 0))
            rows.append(
                LessonRow(course_id, courses[course_id], number[course_id], title, sent, done)
            )
        out.append(rows)
    return out


def _scoped_products(everything: list[Product], scope: Scope) -> tuple[dict[int, str], list[int]]:
    if scope.kind == ProductKind.COURSE:
        assert scope.product_id is not None
        return {scope.product_id: scope.title}, []
    if scope.kind == ProductKind.PLAN:
        assert scope.product_id is not None
        return {}, [scope.product_id]
    return (
        {p.id: p.title for p in everything if p.kind == ProductKind.COURSE},
        [p.id for p in everything if p.kind == ProductKind.PLAN],
    )


async def figures(
    session: AsyncSession,
    creator_id: int,
    scope: Scope,
    spans: Spans,
    now: datetime,
    everything: list[Product] | None = None,
) -> list[Figures]:
    """The figures of the period and (when `spans` has one) of the period before."""
    if scope.kind is None and everything is None:
        everything = await products(session, creator_id)
    courses, plan_ids = _scoped_products(everything or [], scope)
    money, revenue = await _money(session, creator_id, scope, spans)
    funnel = await _funnel(session, creator_id, scope, spans)
    sources = await _sources(session, creator_id, scope, spans, revenue)
    plans = await _plans(session, plan_ids, creator_id, spans, now) if plan_ids else None
    lessons = await _lessons(session, courses, spans) if courses else None
    return [
        Figures(
            money=money[i],
            funnel=funnel[i],
            sources=sources[i],
            plans=plans[i] if plans else None,
            lessons=lessons[i] if lessons else None,
        )
        for i in range(spans.count)
    ]


async def dashboard(
    session: AsyncSession, creator_id: int, period: Period, scope: Scope, now: datetime
) -> Dashboard:
    # The creator's products are read once per press, for every figure below.
    everything = await products(session, creator_id) if scope.kind is None else []
    spans = Spans(period.start, period.end, period.prev_start)
    both = await figures(session, creator_id, scope, spans, now, everything)
    at_risk = None
    if scope.kind != ProductKind.PLAN:
        courses, _unused = _scoped_products(everything, scope)
        at_risk = await count_at_risk(session, list(courses), now)
    return Dashboard(
        creator_id, period, scope, both[0], both[1] if len(both) > 1 else None, at_risk
    )


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
    # By the (lesson, sent_at, done_at, enrollment) index: the waiting lessons of these
    # courses sent in the window, read from the index alone.
    candidates = select(d.enrollment_id).where(
        d.lesson_id.in_(select(Lesson.id).where(Lesson.course_id.in_(course_ids))),
        d.sent_at >= now - timedelta(days=AT_RISK_WINDOW_DAYS),
        d.done_at.is_(None),
    )
    last_done = (
        select(func.max(d.done_at)).where(d.enrollment_id == Enrollment.id).scalar_subquery()
    )
    quiet_since = func.coalesce(last_done, Enrollment.started_at)
    return select(
        Enrollment.user_id,
        Enrollment.course_id,
        quiet_since.label("quiet_since"),
    ).where(
        Enrollment.id.in_(candidates),
        Enrollment.completed_at.is_(None),
        Enrollment.paused_at.is_(None),
        # EXISTS, not a join: the candidates drive the query, one entitlement look-up
        # each (a join lets SQLite, without statistics, start from every entitlement).
        select(Entitlement.id)
        .where(
            Entitlement.user_id == Enrollment.user_id,
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.product_id == Enrollment.course_id,
            _active_at(now),
        )
        .exists(),
        quiet_since < now - timedelta(days=AT_RISK_DAYS),
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
