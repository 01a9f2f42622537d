"""Abandoned checkout: one reminder for an invoice a learner opened and did not pay.

A ticker (one job row, forever) looks every few minutes for orders opened
ABANDONED_REMINDER_HOURS ago and never paid. Each such order gets one CheckoutReminder
row, ever (unique order_id), written in the ticker's commit with the message job, so a
crash or a second worker cannot remind twice. The message job re-checks at send time:
nothing if the learner paid meanwhile, owns the product, blocked the bot or turned
reminders off; it waits out their quiet hours like a lesson. A learner hears about one
product at most once per REMIND_GAP, whatever number of invoices they opened.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.growth.texts import Discount, GrowthTexts
from bot.i18n import pick_locale
from bot.models import (
    CheckoutReminder,
    Coupon,
    Creator,
    Job,
    JobStatus,
    Order,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    ReminderCoupon,
    User,
)
from bot.payments.coupons import coupon_problem
from bot.payments.products import load_product
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.services import access
from bot.services.drip import Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)

TICKER = "growth.abandoned"
KIND = "growth.remind"
SCAN_EVERY = timedelta(minutes=10)
REMIND_GAP = timedelta(days=7)
# Orders older than this past their reminder time are left alone (say, the first run
# after an upgrade must not remind a year of old invoices).
LOOKBACK = timedelta(days=2)
ALL = ""  # ReminderCoupon.product_kind for "every product of the creator"


class Outcome:
    QUEUED = "queued"
    SENT = "sent"
    PAID = "paid"
    OFF = "off"
    BLOCKED = "blocked"
    RECENT = "recent"
    GONE = "gone"


async def scan(session: AsyncSession, now: datetime, hours: int) -> int:
    """Queue reminders for orders opened `hours` ago and not paid. Returns how many."""
    due = now - timedelta(hours=hours)
    rows = list(
        await session.scalars(
            select(Order)
            .where(
                Order.status.in_((OrderStatus.PENDING, OrderStatus.EXPIRED, OrderStatus.CANCELLED)),
                Order.method != PaymentMethod.FREE,
                # A question left unpaid is not a product to come back for.
                Order.product_kind != ProductKind.QUESTION,
                Order.created_at <= due,
                Order.created_at > due - LOOKBACK,
                ~exists().where(CheckoutReminder.order_id == Order.id),
            )
            .order_by(Order.created_at.desc(), Order.id.desc())
        )
    )
    queued = 0
    seen: set[tuple[int, str, int]] = set()
    for order in rows:
        key = (order.user_id, order.product_kind, order.product_id)
        outcome: str | None = Outcome.QUEUED
        if key in seen or await _recent(session, key, now):
            outcome = Outcome.RECENT  # one reminder per product per REMIND_GAP
        seen.add(key)
        session.add(
            CheckoutReminder(
                order_id=order.id,
                user_id=order.user_id,
                product_kind=order.product_kind,
                product_id=order.product_id,
                queued_at=now,
                outcome=outcome,
            )
        )
        if outcome != Outcome.QUEUED:
            continue
        session.add(
            Job(
                kind=KIND,
                dedupe_key=f"gr:{order.id}",
                payload={"order": order.id},
                run_at=now,
                status=JobStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
        )
        queued += 1
    await session.flush()
    return queued


async def _recent(session: AsyncSession, key: tuple[int, str, int], now: datetime) -> bool:
    user_id, kind, product_id = key
    return (
        await session.scalar(
            select(CheckoutReminder.id)
            .where(
                CheckoutReminder.user_id == user_id,
                CheckoutReminder.product_kind == kind,
                CheckoutReminder.product_id == product_id,
                CheckoutReminder.queued_at > now - REMIND_GAP,
                CheckoutReminder.outcome.in_((Outcome.QUEUED, Outcome.SENT)),
            )
            .limit(1)
        )
        is not None
    )


async def _paid_since(session: AsyncSession, order: Order) -> bool:
    """Any order of the same learner and product paid after this one was opened (a
    refunded one counts too: they bought it, and nagging them would be rude)."""
    return (
        await session.scalar(
            select(Order.id)
            .where(
                Order.user_id == order.user_id,
                Order.product_kind == order.product_kind,
                Order.product_id == order.product_id,
                Order.paid_at.is_not(None),
                Order.paid_at >= order.created_at,
            )
            .limit(1)
        )
        is not None
    )


async def reminder_coupon(
    session: AsyncSession, creator_id: int, kind: str, product_id: int
) -> Coupon | None:
    """The creator's code for this product, else their code for every product."""
    rows = await session.execute(
        select(ReminderCoupon, Coupon)
        .join(Coupon, Coupon.id == ReminderCoupon.coupon_id)
        .where(
            ReminderCoupon.creator_id == creator_id,
            or_(
                and_(ReminderCoupon.product_kind == kind, ReminderCoupon.product_id == product_id),
                ReminderCoupon.product_kind == ALL,
            ),
        )
    )
    ranked = sorted(rows, key=lambda row: row[0].product_kind == ALL)
    return ranked[0][1] if ranked else None


def learner_locale(user: User) -> str:
    return pick_locale(user.language, user.language_code, "en")


async def run_reminder(ctx: JobContext, job: Job, texts: GrowthTexts) -> datetime | None:
    now = ctx.clock.now()
    reminder = await ctx.session.scalar(
        select(CheckoutReminder).where(CheckoutReminder.order_id == int(job.payload["order"]))
    )
    order = await ctx.session.get(Order, int(job.payload["order"]))
    if reminder is None or order is None or reminder.outcome != Outcome.QUEUED:
        return None
    user = await ctx.session.get(User, order.user_id)
    product = await load_product(ctx.session, order.product_kind, order.product_id)
    outcome: str | None = None
    if user is None or product is None or not product.published:
        outcome = Outcome.GONE
    elif user.reminders_off:
        outcome = Outcome.OFF
    elif user.is_blocked:
        outcome = Outcome.BLOCKED
    elif await _paid_since(ctx.session, order) or await access.has_access(
        ctx.session, order.user_id, order.product_kind, order.product_id, now
    ):
        outcome = Outcome.PAID
    if outcome is not None or user is None or product is None:
        reminder.outcome = outcome
        return None
    prefs = Prefs.of(user)
    if in_quiet_hours(now, prefs):
        return out_of_quiet_hours(now, prefs)
    coupon = await reminder_coupon(ctx.session, product.creator_id, product.kind, product.id)
    discount = None
    if coupon is not None and coupon_problem(coupon, product, now) is None:
        discount = Discount(coupon.code, coupon.kind, coupon.value, coupon.currency)
    message = texts.reminder(
        learner_locale(user), product.kind, product.id, product.title, discount
    )
    try:
        await ctx.sender.send(user.id, message)
    except Unreachable as exc:
        user.is_blocked = True
        user.blocked_at = now
        reminder.outcome = Outcome.BLOCKED
        job.last_error = f"blocked: {exc}"[:500]
        return None
    except (ChatNotFound, Rejected) as exc:
        log.info("reminder to %s dropped: %s", user.id, exc)
        reminder.outcome = Outcome.GONE
        job.last_error = str(exc)[:500]
        return None
    reminder.outcome = Outcome.SENT
    reminder.sent_at = now
    return None


async def set_coupon(
    session: AsyncSession, creator: Creator, coupon: Coupon | None, kind: str, product_id: int
) -> None:
    """The code reminders for this scope offer (kind ALL: every product); None removes it."""
    row = await session.scalar(
        select(ReminderCoupon).where(
            ReminderCoupon.creator_id == creator.id,
            ReminderCoupon.product_kind == kind,
            ReminderCoupon.product_id == product_id,
        )
    )
    if coupon is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(
            ReminderCoupon(
                creator_id=creator.id, product_kind=kind, product_id=product_id, coupon_id=coupon.id
            )
        )
    else:
        row.coupon_id = coupon.id
    await session.flush()


async def coupons_of(session: AsyncSession, creator: Creator) -> list[tuple[str, int, str]]:
    """(kind, product id, code) of every reminder coupon the creator set."""
    rows = await session.execute(
        select(ReminderCoupon.product_kind, ReminderCoupon.product_id, Coupon.code)
        .join(Coupon, Coupon.id == ReminderCoupon.coupon_id)
        .where(ReminderCoupon.creator_id == creator.id)
        .order_by(ReminderCoupon.product_kind, ReminderCoupon.product_id)
    )
    return [(k, p, c) for k, p, c in rows]


async def set_reminders(session: AsyncSession, user: User, on: bool) -> None:
    user.reminders_off = not on
    await session.flush()


def register(registry: JobRegistry, texts: GrowthTexts, hours: int) -> None:
    async def tick(ctx: JobContext, job: Job) -> datetime:
        await scan(ctx.session, ctx.clock.now(), hours)
        return ctx.clock.now() + SCAN_EVERY

    async def remind(ctx: JobContext, job: Job) -> datetime | None:
        return await run_reminder(ctx, job, texts)

    registry.register(TICKER, tick)
    registry.register(KIND, remind)


async def ensure_scheduled(session: AsyncSession, now: datetime) -> None:
    """Create the ticker once; every start after that finds it by its dedupe key."""
    if await session.scalar(select(Job.id).where(Job.dedupe_key == TICKER)) is None:
        session.add(Job(kind=TICKER, dedupe_key=TICKER, payload={}, run_at=now))
        await session.flush()
