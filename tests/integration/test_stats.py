"""/stats against an independent computation from the raw rows, and its bad input.

The synthetic history (bot.analytics.fake) is written as raw rows and rolled up by
bot.analytics.rollups; `expected()` below recomputes every dashboard figure from the
raw rows in plain Python, without the rollups or their queries.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import fake
from bot.analytics.dashboard import (
    AT_RISK_DAYS,
    AT_RISK_WINDOW_DAYS,
    Figures,
    dashboard,
    learners_at_risk,
)
from bot.analytics.periods import (
    Period,
    PeriodProblem,
    Scope,
    ScopeProblem,
    parse_period,
    resolve_scope,
)
from bot.analytics.rollups import STEPS
from bot.analytics.sources import Source
from bot.app import App
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.models import (
    Course,
    Delivery,
    Enrollment,
    Entitlement,
    Event,
    EventKind,
    LedgerEntry,
    Lesson,
    Order,
    Payment,
    PaymentMethod,
    Plan,
    ProductKind,
)
from tests.support.updates import Harness, tg_user

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


async def _all(db: AsyncSession, model: Any) -> list[Any]:
    return list(await db.scalars(select(model)))


async def raw(db: AsyncSession) -> dict[str, list[Any]]:
    return {
        name: await _all(db, model)
        for name, model in (
            ("events", Event),
            ("orders", Order),
            ("payments", Payment),
            ("ledger", LedgerEntry),
            ("entitlements", Entitlement),
            ("enrollments", Enrollment),
            ("deliveries", Delivery),
            ("lessons", Lesson),
            ("courses", Course),
            ("plans", Plan),
        )
    }


def expected(
    r: dict[str, list[Any]],
    creator: int,
    scope: Scope,
    start: datetime,
    end: datetime,
    now: datetime,
) -> dict[str, Any]:
    """Every dashboard figure, from the raw rows, in plain Python."""
    orders = {o.id: o for o in r["orders"]}
    pay_order = {p.id: orders[p.order_id] for p in r["payments"]}

    def in_scope(kind: str, pid: int) -> bool:
        return scope.kind is None or (kind, pid) == (scope.kind, scope.product_id)

    money: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    revenue: dict[tuple[str, str], int] = defaultdict(int)
    for e in r["ledger"]:
        o = pay_order[e.payment_id]
        if e.creator_id != creator or not in_scope(o.product_kind, o.product_id):
            continue
        if not start.date() <= e.created_at.date() < end.date():
            continue
        m = money[e.currency]
        sale = e.kind == "sale"
        m[0] += sale
        m[1] += e.gross_minor if sale else 0
        m[2] += not sale
        m[3] += 0 if sale else -e.gross_minor
        m[4] += e.gross_minor
        m[5] += e.fee_minor
        m[6] += e.net_minor
        revenue[(o.source or "direct", e.currency)] += e.gross_minor

    # Funnel: first time each learner reached each step of each product.
    first: dict[tuple[str, int, int], dict[str, datetime]] = defaultdict(dict)
    creator_of: dict[tuple[str, int, int], int] = {}
    paid_source: dict[tuple[str, int, int], str] = {}

    def reach(key: tuple[str, int, int], cid: int, step: str, at: datetime) -> None:
        creator_of[key] = cid
        if step not in first[key] or at < first[key][step]:
            first[key][step] = at

    views: dict[str, int] = defaultdict(int)
    for ev in r["events"]:
        if ev.kind == EventKind.VIEW:
            # A course card's view has the course; a plan card's names the plan in its data.
            if ev.course_id is not None:
                product = ("course", ev.course_id)
            elif ev.data.get("kind") == "plan":
                product = ("plan", int(ev.data["id"]))
            else:
                continue
            reach((*product, ev.user_id), ev.creator_id, "viewed", ev.created_at)
            if (
                ev.creator_id == creator
                and in_scope(*product)
                and start.date() <= ev.created_at.date() < end.date()
            ):
                views[ev.data.get("src") or "direct"] += 1
        elif ev.kind == EventKind.BUY:
            reach((ev.data["kind"], ev.data["id"], ev.user_id), ev.creator_id, "buy", ev.created_at)
    for o in r["orders"]:
        if o.method != PaymentMethod.FREE:
            reach((o.product_kind, o.product_id, o.user_id), o.creator_id, "invoice", o.created_at)
    acquisitions = sorted(
        [(p.created_at, p.id, pay_order[p.id]) for p in r["payments"] if p.raw.get("credited")],
        key=lambda a: (a[0], a[1]),
    )
    joined: dict[int, int] = defaultdict(int)
    renewed: dict[int, int] = defaultdict(int)
    for at, _pid, o in acquisitions:
        key = (o.product_kind, o.product_id, o.user_id)
        if "paid" not in first[key]:
            paid_source[key] = o.source
            if o.product_kind == "plan" and start.date() <= at.date() < end.date():
                joined[o.product_id] += 1
        elif o.product_kind == "plan" and start.date() <= at.date() < end.date():
            renewed[o.product_id] += 1
        reach(key, o.creator_id, "paid", at)
    course_creator = {c.id: c.creator_id for c in r["courses"]}
    enrollments = {e.id: e for e in r["enrollments"]}
    for d in r["deliveries"]:
        if d.done_at is not None:
            e = enrollments[d.enrollment_id]
            reach(
                ("course", e.course_id, e.user_id),
                course_creator[e.course_id],
                "first_done",
                d.done_at,
            )
    for e in r["enrollments"]:
        if e.completed_at is not None:
            reach(
                ("course", e.course_id, e.user_id),
                course_creator[e.course_id],
                "completed",
                e.completed_at,
            )
    depth: dict[int, int] = {}
    buyers: dict[str, set[int]] = defaultdict(set)
    for key, steps in first.items():
        if creator_of[key] != creator or not in_scope(key[0], key[1]):
            continue
        paid = steps.get("paid")
        if paid is not None and start <= paid < end:
            buyers[paid_source[key]].add(key[2])
        if not start <= min(steps.values()) < end:
            continue
        reached = [i + 1 for i, s in enumerate(STEPS) if s in steps and steps[s] < end] or [1]
        depth[key[2]] = max(depth.get(key[2], 0), max(reached))
    funnel = [sum(1 for d in depth.values() if d >= k) for k in range(1, len(STEPS) + 1)]

    out: dict[str, Any] = {
        "money": {c: tuple(v) for c, v in money.items()},
        "funnel": funnel,
        "views": {s: n for s, n in views.items() if n},
        "buyers": {s: len(u) for s, u in buyers.items()},
        "revenue": {k: v for k, v in revenue.items()},
    }
    plan_ids = [p.id for p in r["plans"] if p.creator_id == creator and in_scope("plan", p.id)]
    if plan_ids:
        upto = min(end, now)
        plans = {p.id: p for p in r["plans"]}

        def active(e: Any, at: datetime) -> bool:
            return (
                e.starts_at <= at
                and (e.expires_at is None or e.expires_at > at)
                and (e.revoked_at is None or e.revoked_at > at)
            )

        ents = [
            e for e in r["entitlements"] if e.product_kind == "plan" and e.product_id in plan_ids
        ]
        mrr: dict[str, int] = defaultdict(int)
        members = [e for e in ents if active(e, upto)]
        for e in members:
            o = orders[e.source_order_id]
            days = plans[e.product_id].period_days
            if days:
                mrr[o.currency] += o.amount_minor * 30 // days
        out["plans"] = (
            len(members),
            sum(active(e, start) for e in ents),
            sum(joined[p] for p in plan_ids),
            sum(renewed[p] for p in plan_ids),
            sum(
                1
                for e in ents
                if e.expires_at is not None
                and start <= e.expires_at < upto
                and (e.revoked_at is None or e.revoked_at > e.expires_at)
            ),
            dict(mrr),
        )
    courses = [c.id for c in r["courses"] if c.creator_id == creator and in_scope("course", c.id)]
    if courses:
        lesson_course = {le.id: le.course_id for le in r["lessons"]}
        table: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for d in r["deliveries"]:
            if lesson_course[d.lesson_id] in courses and d.sent_at and start <= d.sent_at < end:
                table[d.lesson_id][0] += 1
                table[d.lesson_id][1] += d.done_at is not None
        out["lessons"] = {k: tuple(v) for k, v in table.items()}
    return out


def observed(f: Figures) -> dict[str, Any]:
    out: dict[str, Any] = {
        "money": {
            m.currency: (m.orders, m.sales_gross, m.refunds, m.refunds_gross, m.gross, m.fee, m.net)
            for m in f.money
        },
        "funnel": f.funnel,
        "views": {r.source.value: r.views for r in f.sources if r.views},
        "buyers": {r.source.value: r.buyers for r in f.sources if r.buyers},
        "revenue": {(r.source.value, c): v for r in f.sources for c, v in r.revenue.items()},
    }
    if f.plans is not None:
        p = f.plans
        out["plans"] = (p.active, p.active_at_start, p.joined, p.renewed, p.expired, p.mrr)
    if f.lessons is not None:
        out["lessons"] = {
            # lesson ids by (course, number): the test world numbers lessons by position
            (row.course_id - 1) * fake.LESSONS_PER_COURSE + row.number: (row.delivered, row.done)
            for row in f.lessons
            if row.delivered or row.done
        }
    return out


@pytest.fixture
async def world(db: AsyncSession) -> fake.World:
    w = await fake.generate(db, seed=3, events=6_000, days=150, now=NOW)
    await db.commit()
    return w


PERIODS = ["7", "30", "90", "all", "m2026-06", "m2026-05", "m2026-02"]


async def test_every_dashboard_figure_matches_the_raw_rows(
    db: AsyncSession, world: fake.World
) -> None:
    r = await raw(db)
    checked = 0
    for creator in world.creator_ids:
        scopes = ["a", f"c{(creator - 1) * 3 + 1}", f"p{(creator - 1) * 2 + 1}", f"p{creator * 2}"]
        for code in scopes:
            scope = await resolve_scope(db, creator, code)
            assert isinstance(scope, Scope)
            for p in PERIODS:
                period = parse_period(p, NOW)
                assert isinstance(period, Period)
                d = await dashboard(db, creator, period, scope, NOW)
                want = expected(r, creator, scope, period.start, period.end, NOW)
                assert observed(d.current) == want, (creator, code, p)
                if period.prev_start is not None and period.prev_end is not None:
                    assert d.previous is not None
                    prev = expected(r, creator, scope, period.prev_start, period.prev_end, NOW)
                    assert observed(d.previous) == prev, (creator, code, p, "previous")
                checked += 1
    assert checked == len(world.creator_ids) * 4 * len(PERIODS)
    # The history is not trivial: money in three currencies, refunds, renewals.
    d = await dashboard(db, 1, parse_period("all", NOW), Scope(1), NOW)  # type: ignore[arg-type]
    assert {m.currency for m in d.current.money} >= {"XTR", "USD", "EUR"}
    assert any(m.refunds for m in d.current.money)
    assert d.current.plans is not None and d.current.plans.renewed > 0
    # Plan cards are viewed too, and their views count per source.
    plan = await resolve_scope(db, 1, "p1")
    assert isinstance(plan, Scope)
    d = await dashboard(db, 1, parse_period("all", NOW), plan, NOW)  # type: ignore[arg-type]
    assert sum(r.views for r in d.current.sources) > 0 and d.current.funnel[0] > 0


async def test_learners_at_risk_match_the_raw_rows(db: AsyncSession, world: fake.World) -> None:
    r = await raw(db)
    at_risk = await learners_at_risk(db, world.course_ids, NOW)
    ents = {
        (e.user_id, e.product_id)
        for e in r["entitlements"]
        if e.product_kind == "course" and e.revoked_at is None
    }
    by_enrollment: dict[int, list[Any]] = defaultdict(list)
    for d in r["deliveries"]:
        by_enrollment[d.enrollment_id].append(d)
    want = set()
    for e in r["enrollments"]:
        rows = by_enrollment[e.id]
        if e.completed_at or (e.user_id, e.course_id) not in ents:
            continue
        window = NOW - timedelta(days=AT_RISK_WINDOW_DAYS)
        if not any(d.status == "sent" and d.done_at is None and d.sent_at >= window for d in rows):
            continue
        last = max((d.done_at for d in rows if d.done_at), default=e.started_at)
        if last < NOW - timedelta(days=AT_RISK_DAYS):
            want.add((e.user_id, e.course_id))
    assert {(a.user_id, a.course_id) for a in at_risk} == want
    assert want


@hsettings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), period=st.sampled_from(PERIODS))
async def test_properties_hold_on_any_history(seed: int, period: str, engine: Any) -> None:
    from sqlalchemy import delete

    from bot.db import create_sessionmaker
    from bot.models import Base

    async with create_sessionmaker(engine)() as db:
        for table in reversed(Base.metadata.sorted_tables):
            await db.execute(delete(table))
        await fake.generate(db, seed=seed, events=1_500, days=120, now=NOW)
        for creator in (1, 2, 3):
            p = parse_period(period, NOW)
            assert isinstance(p, Period)
            d = await dashboard(db, creator, p, Scope(creator), NOW)
            for m in d.current.money:
                assert m.gross == m.fee + m.net  # per currency, refunds included
                assert m.gross == m.sales_gross - m.refunds_gross
            assert all(a >= b for a, b in zip(d.current.funnel, d.current.funnel[1:], strict=False))
        await db.rollback()


async def test_a_refund_moves_money_out_of_the_period_it_happened_in(
    db: AsyncSession, world: fake.World
) -> None:
    """Every refund counts in the 7 days around its own date, and the sale in the sale's."""
    refunds = [e for e in await _all(db, LedgerEntry) if e.kind == "refund"]
    late = [e for e in refunds if (e.created_at - NOW).days < -10]
    sales = {e.payment_id: e for e in await _all(db, LedgerEntry) if e.kind == "sale"}
    moved = [e for e in late if e.created_at.date() != sales[e.payment_id].created_at.date()]
    assert moved, "the synthetic history has refunds later than their sale"
    e = moved[0]
    day = e.created_at.date()
    month = f"m{day.year:04d}-{day.month:02d}"
    period = parse_period(month, NOW)
    assert isinstance(period, Period)
    d = await dashboard(db, e.creator_id, period, Scope(e.creator_id), NOW)
    row = next(m for m in d.current.money if m.currency == e.currency)
    in_month = [
        x
        for x in refunds
        if x.creator_id == e.creator_id
        and x.currency == e.currency
        and x.created_at.date().replace(day=1) == day.replace(day=1)
    ]
    assert row.refunds == len(in_month)
    assert row.refunds_gross == -sum(x.gross_minor for x in in_month)


# --- the chat -----------------------------------------------------------------------------


def alerts(harness: Harness) -> list[str]:
    from aiogram.methods import AnswerCallbackQuery

    return [a.text or "" for a in harness.session.of_type(AnswerCallbackQuery) if a.text]


CREATOR_1 = tg_user(101, "Creator 1")  # fake.py: creator c is user 100 + c
CREATOR_2 = tg_user(102, "Creator 2")
OWNER = tg_user(7, "Olga")


async def test_stats_in_the_chat(
    harness: Harness, db: AsyncSession, world: fake.World, app: App
) -> None:
    from bot.scheduler.clock import ManualClock

    clock = ManualClock(NOW)
    app.dp["clock"] = clock
    await harness.send("/stats", CREATOR_1)
    text = harness.last_text()
    assert "Money" in text and "Funnel" in text and "Sources" in text and "Plans" in text
    # Period and scope buttons edit the same message.
    await harness.click("90 d", CREATOR_1)
    assert "Last 90 days" in harness.last_text()
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="30", s="c1").pack(), CREATOR_1)
    assert "Course 1" in harness.last_text()
    # Another creator's course, a forged creator, an unknown scope, a future month.
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="30", s="c4").pack(), CREATOR_1)
    assert "not one of this creator's" in alerts(harness)[-1]
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="30", s="a").pack(), CREATOR_2)
    assert "not yours" in alerts(harness)[-1]
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="30", s="zz").pack(), CREATOR_1)
    assert "do not know" in alerts(harness)[-1]
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="m2026-09", s="a").pack(), CREATOR_1)
    assert "not begun" in alerts(harness)[-1]
    await harness.press("st:v:1:30", CREATOR_1)  # truncated: nobody answers it but fallback
    # A period with no data: zeros and a sentence.
    await harness.press(StatsCB(a=StatsAction.VIEW, c=1, p="m2025-01", s="a").pack(), CREATOR_1)
    assert "Nothing happened in this period" in harness.last_text()
    # The platform owner may look at any creator; a creator may not name another.
    await harness.send("/stats 2", OWNER)
    assert "Creator 2" in harness.last_text()
    # To a creator a bare number is a period (the last 2 days of their own numbers).
    await harness.send("/stats 2", CREATOR_1)
    assert "Creator 1" in harness.last_text() and "Last 2 days" in harness.last_text()
    await harness.send("/stats 2 30", CREATOR_1)
    assert "Usage" in harness.last_text()
    # Learners at risk, listed and nudged once a week at most.
    await harness.press(StatsCB(a=StatsAction.RISK, c=1, p="30", s="a").pack(), CREATOR_1)
    assert "Learners at risk" in harness.last_text()
    await harness.press(StatsCB(a=StatsAction.NUDGE, c=1, p="30", s="a").pack(), CREATOR_1)
    first = harness.last_text()
    await harness.press(StatsCB(a=StatsAction.NUDGE, c=1, p="30", s="a").pack(), CREATOR_1)
    assert "Nudges queued: 0" in harness.last_text() and "Nudges queued: 0" not in first


def test_periods() -> None:
    assert parse_period("m2026-13", NOW) == PeriodProblem.UNKNOWN
    assert parse_period("m2026-07", NOW) == PeriodProblem.FUTURE
    assert parse_period("0", NOW) == parse_period("0d", NOW) == PeriodProblem.UNKNOWN
    assert parse_period("weekly", NOW) == PeriodProblem.UNKNOWN
    # One vocabulary: 30 and 30d, m2026-03 and 2026-03 are the same period.
    assert parse_period("30", NOW) == parse_period("30d", NOW)
    assert parse_period("45", NOW) == parse_period("45d", NOW) != PeriodProblem.UNKNOWN
    p = parse_period("m2026-03", NOW)
    assert p == parse_period("2026-03", NOW)
    assert isinstance(p, Period) and p.prev_start == datetime(2026, 2, 1, tzinfo=UTC)
    assert (p.code, p.label) == ("m2026-03", "2026-03")
    assert ScopeProblem.NOT_YOURS != ScopeProblem.UNKNOWN
    assert Source("catalog") == Source.CATALOG
    assert ProductKind.PLAN == "plan"


async def test_the_chart_draws_the_dashboards_figures(
    harness: Harness, db: AsyncSession, world: fake.World, app: App, monkeypatch: Any
) -> None:
    """📈 Chart draws the dashboard's six-step funnel, step for step the numbers /stats
    shows, and daily revenue that sums to the dashboard's gross per currency; both also
    equal the plain-Python computation from the raw rows."""
    from bot.analytics import charts
    from bot.scheduler.clock import ManualClock

    app.dp["clock"] = ManualClock(NOW)
    drawn: list[tuple[Any, Any]] = []

    async def keep(title: str, daily: Any, funnel: Any, *_rest: Any) -> bytes:
        drawn.append((daily, funnel))
        return b"\x89PNG fake"

    monkeypatch.setattr(charts, "render_async", keep)
    r = await raw(db)
    for creator, user in ((1, CREATOR_1), (2, CREATOR_2)):
        for code in ("a", f"c{(creator - 1) * 3 + 1}", f"p{creator * 2}"):
            for p in ("7", "30", "m2026-05", "all"):
                button = StatsCB(a=StatsAction.CHART, c=creator, p=p, s=code)
                await harness.press(button.pack(), user)
                period = parse_period(p, NOW)
                scope = await resolve_scope(db, creator, code)
                assert isinstance(period, Period) and isinstance(scope, Scope)
                d = await dashboard(db, creator, period, scope, NOW)
                if d.current.empty:
                    continue
                daily, funnel = drawn.pop()
                # The six steps, labelled as on the dashboard, with the dashboard's numbers.
                assert [label for label, _n in funnel] == [
                    "Card viewed",
                    "Buy pressed",
                    "Invoice shown",
                    "Paid",
                    "First lesson done",
                    "Course completed",
                ]
                assert [n for _label, n in funnel] == d.current.funnel, (creator, code, p)
                want = expected(r, creator, scope, period.start, period.end, NOW)
                assert d.current.funnel == want["funnel"]
                # Daily revenue: every day of the period, summing to the dashboard's gross.
                totals: dict[str, int] = defaultdict(int)
                for _day, amounts in daily:
                    for currency, amount in amounts.items():
                        totals[currency] += amount
                gross = {m.currency: m.gross for m in d.current.money}
                assert {c: v for c, v in totals.items() if v or c in gross} == gross
                assert gross == {c: v[4] for c, v in want["money"].items()}
                if period.kind != "all":
                    days_so_far = (NOW.date() - period.start.date()).days + 1
                    assert len(daily) == min(period.days, days_so_far)
    assert not drawn
