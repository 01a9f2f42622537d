"""The win-back offer: a creator-set discount on one renewal, offered when a learner
cancels a Stars subscription or lets a plan lapse, at most once per learner per plan,
ever (growth_winbacks is unique on the pair; the insert is what decides, so two
triggers racing cannot both offer).

The discount is a personal one-use code (a coupon limited to the plan) that the learner
types at checkout; it expires after OFFER_DAYS. The message goes through the scheduler's
rate-limited sender, outside the learner's quiet hours, and not at all if they renewed
meanwhile, blocked the bot or turned offers off.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.growth.texts import Discount, GrowthTexts
from bot.i18n import pick_locale
from bot.models import (
    Coupon,
    CouponKind,
    Job,
    JobStatus,
    Plan,
    ProductKind,
    User,
    WinbackOffer,
)
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.services import access
from bot.services.drip import Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)

KIND = "growth.winback"
OFFER_DAYS = 14
MIN_PERCENT, MAX_PERCENT = 1, 90


class Reason:
    CANCEL = "cancel"
    LAPSE = "lapse"


async def offer(
    session: AsyncSession, user_id: int, plan: Plan, reason: str, now: datetime
) -> bool:
    """Queue the plan's win-back offer for this learner, unless the plan has none or
    they were offered it before. True when queued (in the caller's transaction)."""
    percent = plan.winback_percent
    if not percent:
        return False
    if await session.scalar(
        select(WinbackOffer.id).where(
            WinbackOffer.user_id == user_id, WinbackOffer.plan_id == plan.id
        )
    ):
        return False
    # A cancelled subscription runs on to the end of its paid period: the offer (and
    # its code's OFFER_DAYS) starts when access ends.
    ent = await access.get_entitlement(session, user_id, ProductKind.PLAN, plan.id)
    start = now
    if ent is not None and ent.is_active(now) and ent.expires_at is not None:
        start = ent.expires_at
    coupon = Coupon(
        code=f"BACK{secrets.token_hex(5).upper()}",
        creator_id=plan.creator_id,
        product_kind=ProductKind.PLAN,
        product_id=plan.id,
        kind=CouponKind.PERCENT,
        value=percent,
        max_uses=1,
        expires_at=start + timedelta(days=OFFER_DAYS),
    )
    try:
        async with session.begin_nested():
            session.add(coupon)
            await session.flush()
            row = WinbackOffer(
                user_id=user_id,
                plan_id=plan.id,
                percent=percent,
                coupon_id=coupon.id,
                reason=reason,
                offered_at=now,
            )
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False  # offered a moment ago by the other trigger
    session.add(
        Job(
            kind=KIND,
            dedupe_key=f"wb:{row.id}",
            payload={"offer": row.id},
            run_at=start,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    return True


async def run_offer(ctx: JobContext, job: Job, texts: GrowthTexts) -> datetime | None:
    now = ctx.clock.now()
    row = await ctx.session.get(WinbackOffer, int(job.payload["offer"]))
    if row is None:
        return None
    user = await ctx.session.get(User, row.user_id)
    plan = await ctx.session.get(Plan, row.plan_id)
    coupon = await ctx.session.get(Coupon, row.coupon_id) if row.coupon_id else None
    if user is None or plan is None or coupon is None or not plan.published:
        return None
    if user.is_blocked or user.reminders_off:
        return None
    if coupon.expires_at is not None and coupon.expires_at <= now:
        return None
    # A cancelled subscription runs to the end of its period: the offer is for the
    # renewal, so it waits until access has ended (and is dropped if they renewed).
    ent = await access.get_entitlement(ctx.session, user.id, ProductKind.PLAN, plan.id)
    if ent is not None and ent.is_active(now):
        if ent.expires_at is None:
            return None  # they bought it for life meanwhile
        return max(ent.expires_at, now + timedelta(minutes=1))
    prefs = Prefs.of(user)
    if in_quiet_hours(now, prefs):
        return out_of_quiet_hours(now, prefs)
    discount = Discount(coupon.code, coupon.kind, coupon.value, coupon.currency)
    days = max(1, (coupon.expires_at - now).days) if coupon.expires_at else OFFER_DAYS
    locale = pick_locale(user.language, user.language_code, "en")
    try:
        await ctx.sender.send(user.id, texts.winback(locale, plan.id, plan.title, discount, days))
    except Unreachable as exc:
        user.is_blocked = True
        user.blocked_at = now
        job.last_error = f"blocked: {exc}"[:500]
    except (ChatNotFound, Rejected) as exc:
        log.info("win-back offer to %s dropped: %s", user.id, exc)
        job.last_error = str(exc)[:500]
    return None


def register(registry: JobRegistry, texts: GrowthTexts) -> None:
    async def run(ctx: JobContext, job: Job) -> datetime | None:
        return await run_offer(ctx, job, texts)

    registry.register(KIND, run)
