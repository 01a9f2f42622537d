"""A deterministic synthetic history, written through the real tables, then rolled up.

    python -m bot.analytics.fake --seed 7 --events 100000 [--days 90] [--database-url …]

Learners view courses from every source, press Buy, get invoices, pay in Stars, USD and
EUR, get refunded (sometimes weeks later), join plans, renew and let them expire, get
lessons and press Done. Raw rows go in with bulk Core inserts (a million events in
minutes, not hours); the rollups are then rebuilt from them by bot.analytics.rollups,
so tests can compare the dashboard with figures computed from the raw rows directly.
The catalog (creators, courses, plans) depends on the seed only, not on --events, so
two histories of different lengths have the same creators and products.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.analytics.sources import ATTRIBUTION_DAYS, Source
from bot.models import (
    Course,
    Creator,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Entitlement,
    Event,
    EventKind,
    LedgerEntry,
    LedgerKind,
    Lesson,
    Order,
    OrderStatus,
    Payment,
    PaymentMethod,
    Plan,
    ProductKind,
    User,
)
from bot.payments.pricing import split_fee

FEE_BPS = 1000
CREATORS = 3
COURSES_PER_CREATOR = 3
LESSONS_PER_COURSE = 4
VIEW_SOURCES = [s for s in Source if s != Source.DIRECT] + [Source.DIRECT]


@dataclass
class World:
    now: datetime
    creator_ids: list[int] = field(default_factory=list)
    course_ids: list[int] = field(default_factory=list)
    plan_ids: list[int] = field(default_factory=list)
    events: int = 0
    orders: int = 0


@dataclass
class _Rows:
    users: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    entitlements: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _user(uid: int, at: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "id": uid,
        "first_name": f"L{uid}",
        "interests": [],
        "onboarded": True,
        "quiet_start": 22 * 60,
        "quiet_end": 8 * 60,
        "is_blocked": False,
        "referral_code": f"f{uid}",
        "last_seen_at": at,
        "created_at": at,
        "timezone": rng.choice(["UTC", "Asia/Shanghai", "Europe/Berlin"]),
    }


async def _catalog(session: AsyncSession, seed: int, start: datetime, world: World) -> None:
    rng = random.Random(seed * 7919)
    course_id = lesson_id = plan_id = 0
    for c in range(1, CREATORS + 1):
        uid = 100 + c
        await session.execute(insert(User), [_user(uid, start, rng)])
        await session.execute(
            insert(Creator),
            [
                {
                    "id": c,
                    "user_id": uid,
                    "display_name": f"Creator {c}",
                    "role": "creator",
                    "created_at": start,
                }
            ],
        )
        world.creator_ids.append(c)
        for k in range(COURSES_PER_CREATOR):
            course_id += 1
            currency = "USD" if k % 2 == 0 else "EUR"
            await session.execute(
                insert(Course),
                [
                    {
                        "id": course_id,
                        "creator_id": c,
                        "title": f"课程 Course {course_id}",
                        "description": "",
                        "tags": [],
                        "language": "en",
                        "price_minor": rng.choice([990, 1990, 4900]),
                        "currency": currency,
                        "stars_price": rng.choice([100, 250, 500]),
                        "accepts_stars": True,
                        "accepts_card": True,
                        "published": True,
                        "protect_content": True,
                        "created_at": start,
                        "updated_at": start,
                    }
                ],
            )
            world.course_ids.append(course_id)
            for pos in range(1, LESSONS_PER_COURSE + 1):
                lesson_id += 1
                await session.execute(
                    insert(Lesson),
                    [
                        {
                            "id": lesson_id,
                            "course_id": course_id,
                            "position": pos,
                            "title": f"Lesson {pos}",
                            "content_type": "text",
                            "text": "…",
                            "release_rule": "after_days",
                            "release_days": pos - 1,
                            "created_at": start,
                            "updated_at": start,
                        }
                    ],
                )
        for period in (30, 90):
            plan_id += 1
            await session.execute(
                insert(Plan),
                [
                    {
                        "id": plan_id,
                        "creator_id": c,
                        "title": f"Club {plan_id} ({period} d)",
                        "description": "",
                        "price_minor": 900 if period == 30 else 2400,
                        "currency": "USD",
                        "stars_price": 300 if period == 30 else 800,
                        "accepts_stars": True,
                        "accepts_card": True,
                        "period_days": period,
                        "trial_days": 0,
                        "stars_subscription": False,
                        "published": True,
                        "course_ids": [],
                        "created_at": start,
                    }
                ],
            )
            world.plan_ids.append(plan_id)


class _Ids:
    def __init__(self) -> None:
        self.order = self.payment = self.ledger = self.enrollment = self.delivery = 0
        self.entitlement = 0


def _pay(
    rows: _Rows, ids: _Ids, order: dict[str, Any], at: datetime, *, credited: bool
) -> dict[str, Any]:
    ids.payment += 1
    method = order["method"]
    payment = {
        "id": ids.payment,
        "order_id": order["id"],
        "user_id": order["user_id"],
        "method": method,
        "currency": order["currency"],
        "amount_minor": order["amount_minor"],
        "telegram_payment_charge_id": f"tg{ids.payment}",
        "provider_payment_charge_id": f"pv{ids.payment}",
        "external_event_id": None,
        "is_recurring": False,
        "subscription_expires_at": None,
        "refunded_at": None,
        "raw": {"credited": credited},
        "created_at": at,
    }
    rows.payments.append(payment)
    fee, net = split_fee(order["amount_minor"], FEE_BPS)
    ids.ledger += 1
    rows.ledger.append(
        {
            "id": ids.ledger,
            "payment_id": ids.payment,
            "creator_id": order["creator_id"],
            "kind": LedgerKind.SALE,
            "currency": order["currency"],
            "gross_minor": order["amount_minor"],
            "fee_minor": fee,
            "net_minor": net,
            "created_at": at,
        }
    )
    return payment


def _refund(rows: _Rows, ids: _Ids, payment: dict[str, Any], creator_id: int, at: datetime) -> None:
    payment["refunded_at"] = at
    sale = next(e for e in reversed(rows.ledger) if e["payment_id"] == payment["id"])
    ids.ledger += 1
    rows.ledger.append(
        {
            "id": ids.ledger,
            "payment_id": payment["id"],
            "creator_id": creator_id,
            "kind": LedgerKind.REFUND,
            "currency": payment["currency"],
            "gross_minor": -sale["gross_minor"],
            "fee_minor": -sale["fee_minor"],
            "net_minor": -sale["net_minor"],
            "created_at": at,
        }
    )


async def generate(
    session: AsyncSession,
    *,
    seed: int,
    events: int,
    days: int = 90,
    now: datetime | None = None,
    rebuild: bool = True,
) -> World:
    """Write a history of about `events` funnel events over the `days` before `now`."""
    now = now or datetime(2026, 6, 15, 12, tzinfo=UTC)
    start = now - timedelta(days=days)
    world = World(now)
    await _catalog(session, seed, start, world)
    rng = random.Random(seed)
    ids = _Ids()
    rows = _Rows()
    creator_of_course = {cid: (cid - 1) // COURSES_PER_CREATOR + 1 for cid in world.course_ids}
    creator_of_plan = {pid: (pid - 1) // 2 + 1 for pid in world.plan_ids}
    lessons_of = {
        cid: list(range((cid - 1) * LESSONS_PER_COURSE + 1, cid * LESSONS_PER_COURSE + 1))
        for cid in world.course_ids
    }
    span = (now - start).total_seconds()
    uid = 10_000
    written = 0

    async def flush(final: bool = False) -> None:
        nonlocal rows
        if not final and len(rows.events) < 20_000:
            return
        for model, batch in (
            (User, rows.users),
            (Event, rows.events),
            (Order, rows.orders),
            (Payment, rows.payments),
            (LedgerEntry, rows.ledger),
            (Entitlement, rows.entitlements),
            (Enrollment, rows.enrollments),
            (Delivery, rows.deliveries),
        ):
            for i in range(0, len(batch), 2_000):
                await session.execute(insert(model), batch[i : i + 2_000])
        rows = _Rows()

    while written < events:
        uid += 1
        # Learners arrive in time order, as they do in a live bot (whose rows are written
        # as things happen), spread evenly over the days: the share of the events written
        # so far says how far into the history this one arrives, give or take a day.
        progress = span * 0.98 * min(1.0, written / events)
        first = start + timedelta(seconds=progress + rng.random() * min(86_400, span * 0.02))
        rows.users.append(_user(uid, first, rng))
        plan = rng.random() < 0.2
        if plan:
            product_kind, pid = ProductKind.PLAN, rng.choice(world.plan_ids)
            creator_id = creator_of_plan[pid]
        else:
            product_kind, pid = ProductKind.COURSE, rng.choice(world.course_ids)
            creator_id = creator_of_course[pid]
        at = first
        views: list[tuple[datetime, Source]] = []
        for _ in range(rng.choice([1, 1, 2, 3, 5]) if not plan else rng.choice([0, 1, 1, 2])):
            src = rng.choice(VIEW_SOURCES)
            views.append((at, src))
            rows.events.append(
                {
                    "kind": EventKind.VIEW,
                    "user_id": uid,
                    # A plan's card view names the plan in its data, as /plans writes it.
                    "course_id": pid if not plan else None,
                    "creator_id": creator_id,
                    "data": {"src": src} if not plan else {"src": src, "kind": "plan", "id": pid},
                    "created_at": at,
                }
            )
            at += timedelta(hours=rng.random() * 24 * rng.choice([0.1, 1, 5, 40]))
        # Filler that every bot records: starts and searches (not in the funnel).
        for _ in range(rng.choice([0, 1, 2])):
            rows.events.append(
                {
                    "kind": EventKind.SEARCH,
                    "user_id": uid,
                    "course_id": None,
                    "creator_id": None,
                    "data": {"q": "x"},
                    "created_at": first,
                }
            )
        written += len(views) + 1
        if rng.random() > (0.7 if plan else 0.35) or at >= now:
            written += 0
            await flush()
            continue
        rows.events.append(
            {
                "kind": EventKind.BUY,
                "user_id": uid,
                "course_id": pid if not plan else None,
                "creator_id": creator_id,
                "data": {"kind": product_kind, "id": pid},
                "created_at": at,
            }
        )
        written += 1
        method = rng.choice([PaymentMethod.STARS, PaymentMethod.CARD])
        if plan:
            currency = "XTR" if method == PaymentMethod.STARS else "USD"
            amount = (300 if pid % 2 else 800) if currency == "XTR" else (900 if pid % 2 else 2400)
            period = 30 if pid % 2 else 90
        else:
            currency = "XTR" if method == PaymentMethod.STARS else ("USD" if pid % 2 else "EUR")
            amount = rng.choice([100, 250, 500]) if currency == "XTR" else rng.choice([990, 1990])
            period = 0
        at += timedelta(minutes=rng.random() * 30)
        if at >= now:
            continue
        ids.order += 1
        order = {
            "id": ids.order,
            "public_ref": f"o{ids.order}",
            "user_id": uid,
            "creator_id": creator_id,
            "product_kind": product_kind,
            "product_id": pid,
            "method": method,
            "currency": currency,
            "list_amount_minor": amount,
            "amount_minor": amount,
            "coupon_id": None,
            "status": OrderStatus.PENDING,
            "paid_at": None,
            "expires_at": at + timedelta(minutes=30),
            "source": None,
            "created_at": at,
            "updated_at": at,
        }
        rows.orders.append(order)
        rows.events.append(
            {
                "kind": EventKind.INVOICE,
                "user_id": uid,
                "course_id": pid if not plan else None,
                "creator_id": creator_id,
                "data": {"method": method},
                "created_at": at,
            }
        )
        written += 1
        if rng.random() < 0.3:
            order["status"] = OrderStatus.EXPIRED
            continue
        at += timedelta(minutes=rng.random() * 10)
        if at >= now:
            continue
        # First touch within 30 days decides, as bot.analytics.rollups.attribute does.
        window = [v for v in views if at - timedelta(days=ATTRIBUTION_DAYS) <= v[0] <= at]
        order["source"] = window[0][1] if window else Source.DIRECT
        order["status"] = OrderStatus.PAID
        order["paid_at"] = at
        payment = _pay(rows, ids, order, at, credited=True)
        rows.events.append(
            {
                "kind": EventKind.PAID,
                "user_id": uid,
                "course_id": pid if not plan else None,
                "creator_id": creator_id,
                "data": {"order": order["id"]},
                "created_at": at,
            }
        )
        written += 1
        ids.entitlement += 1
        ent: dict[str, Any] = {
            "id": ids.entitlement,
            "user_id": uid,
            "product_kind": product_kind,
            "product_id": pid,
            "starts_at": at,
            "expires_at": at + timedelta(days=period) if period else None,
            "revoked_at": None,
            "source_order_id": order["id"],
            "is_trial": False,
            "created_at": at,
            "updated_at": at,
        }
        rows.entitlements.append(ent)
        if rng.random() < 0.12:
            # Refunded: the same day or weeks later, in another period than the sale.
            when = at + timedelta(days=rng.choice([0.2, 3, 20, 45]))
            if when < now:
                _refund(rows, ids, payment, creator_id, when)
                order["status"] = OrderStatus.REFUNDED
                ent["revoked_at"] = when
                rows.events.append(
                    {
                        "kind": EventKind.REFUNDED,
                        "user_id": uid,
                        "course_id": None,
                        "creator_id": creator_id,
                        "data": {},
                        "created_at": when,
                    }
                )
                written += 1
                await flush()
                continue
        if plan:
            # Renewals: each one more period, paid on the day the last one ends.
            expires = ent["expires_at"]
            while rng.random() < 0.5 and expires < now:
                renew_at = expires - timedelta(hours=rng.random() * 20)
                _pay(rows, ids, order, renew_at, credited=True)
                expires = expires + timedelta(days=period)
                written += 1
            ent["expires_at"] = expires
            await flush()
            continue
        ids.enrollment += 1
        rows.enrollments.append(
            {
                "id": ids.enrollment,
                "user_id": uid,
                "course_id": pid,
                "started_at": at,
                "paused_at": None,
                "completed_at": None,
                "created_at": at,
            }
        )
        done_until = at
        finished = True
        for n, lesson_id in enumerate(lessons_of[pid]):
            sent = max(at + timedelta(days=n), done_until) + timedelta(minutes=1)
            if sent >= now:
                finished = False
                break
            ids.delivery += 1
            done = None
            if rng.random() < 0.75 - 0.1 * n:
                done = sent + timedelta(hours=rng.random() * 24 * rng.choice([0.2, 2, 9]))
                if done >= now:
                    done = None
            rows.deliveries.append(
                {
                    "id": ids.delivery,
                    "enrollment_id": ids.enrollment,
                    "lesson_id": lesson_id,
                    "user_id": uid,
                    "due_at": sent,
                    "status": DeliveryStatus.SENT,
                    "claimed_until": None,
                    "attempts": 1,
                    "sent_at": sent,
                    "message_id": 1,
                    "done_at": done,
                    "last_error": None,
                    "created_at": at,
                }
            )
            if done is None:
                finished = False
                break
            done_until = done
            rows.events.append(
                {
                    "kind": EventKind.LESSON_DONE,
                    "user_id": uid,
                    "course_id": pid,
                    "creator_id": creator_id,
                    "data": {},
                    "created_at": done,
                }
            )
            written += 1
        if finished:
            rows.enrollments[-1]["completed_at"] = done_until
        await flush()
    await flush(final=True)
    world.events = written
    world.orders = ids.order
    if rebuild:
        await rollups.rebuild(session)
    return world


async def _main(args: argparse.Namespace) -> None:
    from bot.config import get_settings
    from bot.db import create_engine, create_sessionmaker
    from bot.migrate import upgrade

    url = args.database_url or get_settings().database_url
    await upgrade(url)
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        async with create_sessionmaker(engine)() as session:
            world = await generate(session, seed=args.seed, events=args.events, days=args.days)
            await session.commit()
    finally:
        await engine.dispose()
    print(
        json.dumps(
            {
                "events": world.events,
                "orders": world.orders,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--database-url", default="")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
