"""The affiliate's "your commission is payable" message, once per commission.

The message job is written with the commission itself (bot.growth.affiliates
.book_commission, in the sale's transaction), due when the hold ends; its dedupe key is
the commission's id, so no restart, redelivery or second worker can make a second one.
When it runs it re-checks: nothing if the sale was refunded meanwhile (cancelled in the
hold or clawed back), if the affiliate turned these messages off or blocked the bot;
it waits out their quiet hours like a lesson, and goes through the rate-limited sender
in their language, with a button that turns such messages off.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.growth.texts import GrowthTexts
from bot.i18n import pick_locale
from bot.models import AffiliateEntry, AffiliateEntryKind, Creator, Job, JobStatus, User
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.services.drip import Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)

KIND = "growth.payable"


def schedule(session: AsyncSession, entry: AffiliateEntry, now: datetime) -> None:
    """In the transaction that books the commission: its message, due at payable_at."""
    session.add(
        Job(
            kind=KIND,
            dedupe_key=f"gp:{entry.id}",
            payload={"entry": entry.id},
            run_at=entry.payable_at,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )


async def _undone(session: AsyncSession, entry: AffiliateEntry) -> bool:
    """The sale behind it was refunded: cancelled in the hold, or clawed back since."""
    return (
        await session.scalar(
            select(AffiliateEntry.id)
            .where(
                AffiliateEntry.payment_id == entry.payment_id,
                AffiliateEntry.kind.in_((AffiliateEntryKind.CANCEL, AffiliateEntryKind.CLAWBACK)),
            )
            .limit(1)
        )
        is not None
    )


async def run_notice(ctx: JobContext, job: Job, texts: GrowthTexts) -> datetime | None:
    now = ctx.clock.now()
    entry = await ctx.session.get(AffiliateEntry, int(job.payload.get("entry") or 0))
    if entry is None or entry.kind != AffiliateEntryKind.COMMISSION:
        return None
    if entry.payable_at > now:
        return entry.payable_at  # not yet (a clock moved back, a job run early)
    if await _undone(ctx.session, entry):
        job.last_error = "refunded"
        return None
    user = await ctx.session.get(User, entry.affiliate_id)
    if user is None or user.is_blocked or user.earnings_notices_off:
        job.last_error = "off" if user is not None and user.earnings_notices_off else "skipped"
        return None
    prefs = Prefs.of(user)
    if in_quiet_hours(now, prefs):
        return out_of_quiet_hours(now, prefs)
    creator = await ctx.session.get(Creator, entry.creator_id)
    locale = pick_locale(user.language, user.language_code, "en")
    message = texts.payable(
        locale, entry.amount_minor, entry.currency, creator.display_name if creator else ""
    )
    try:
        await ctx.sender.send(user.id, message)
    except Unreachable as exc:
        user.is_blocked = True
        user.blocked_at = now
        job.last_error = f"blocked: {exc}"[:500]
    except (ChatNotFound, Rejected) as exc:
        log.info("payable notice to %s dropped: %s", user.id, exc)
        job.last_error = str(exc)[:500]
    return None


async def set_notices(session: AsyncSession, user: User, on: bool) -> None:
    user.earnings_notices_off = not on
    await session.flush()


def register(registry: JobRegistry, texts: GrowthTexts) -> None:
    async def run(ctx: JobContext, job: Job) -> datetime | None:
        return await run_notice(ctx, job, texts)

    registry.register(KIND, run)
