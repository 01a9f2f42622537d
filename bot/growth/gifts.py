"""Gifts: a course bought for someone else, waiting behind a one-time claim link.

The gift is made in the transaction that books its payment (bot.payments.checkout):
the buyer pays, no access is granted to them, and a Gift row with an unguessable token
is open. A claim is one conditional UPDATE (open → claimed), so of two claims at once
exactly one wins; the winner's entitlement points at the gift's order, so a refund of
that order takes it back (access follows money). A refund of an open gift voids it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Creator, Event, EventKind, Gift, GiftStatus, Order
from bot.payments.products import already_owned, load_product
from bot.services import access

TOKEN_BYTES = 18  # 24 url-safe characters, 144 random bits
MAX_TOKEN = 32


async def open_gift(session: AsyncSession, order: Order, now: datetime) -> Gift:
    gift = Gift(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        order_id=order.id,
        buyer_id=order.user_id,
        creator_id=order.creator_id,
        product_kind=order.product_kind,
        product_id=order.product_id,
        status=GiftStatus.OPEN,
        created_at=now,
    )
    session.add(gift)
    await session.flush()
    return gift


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    FORGED = "forged"  # no such link
    VOID = "void"  # refunded before anyone claimed it
    TAKEN = "taken"  # claimed already (perhaps a moment ago, by someone else)
    OWN = "own"  # the buyer cannot claim their own gift
    OWNED = "owned"  # the learner has the course already: the gift stays open


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    gift_id: int | None = None
    buyer_id: int | None = None
    product_kind: str | None = None
    product_id: int | None = None
    title: str = ""


async def claim(session: AsyncSession, token: str, user_id: int, now: datetime) -> Claim:
    if not token or len(token) > MAX_TOKEN:
        return Claim(ClaimOutcome.FORGED)
    gift = await session.scalar(select(Gift).where(Gift.token == token))
    if gift is None:
        return Claim(ClaimOutcome.FORGED)
    product = await load_product(session, gift.product_kind, gift.product_id)
    base = Claim(
        ClaimOutcome.TAKEN,
        gift.id,
        gift.buyer_id,
        gift.product_kind,
        gift.product_id,
        product.title if product else "",
    )
    if gift.status == GiftStatus.VOID:
        return _with(base, ClaimOutcome.VOID)
    if gift.status == GiftStatus.CLAIMED:
        return base
    if gift.buyer_id == user_id:
        return _with(base, ClaimOutcome.OWN)
    # The course's own creator has it already (without an entitlement): same answer.
    creator_user = await session.scalar(
        select(Creator.user_id).where(Creator.id == gift.creator_id)
    )
    if creator_user == user_id or await already_owned(
        session, user_id, gift.product_kind, gift.product_id, now
    ):
        return _with(base, ClaimOutcome.OWNED)
    won = await session.execute(
        update(Gift)
        .where(Gift.id == gift.id, Gift.status == GiftStatus.OPEN)
        .values(status=GiftStatus.CLAIMED, claimed_by=user_id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(won, "rowcount", 0):
        return base  # another claim (or a refund) got there first
    await access.grant(
        session,
        user_id,
        gift.product_kind,
        gift.product_id,
        days=product.period_days if product else None,
        now=now,
        source_order_id=gift.order_id,
    )
    session.add(
        Event(
            user_id=user_id,
            kind=EventKind.GIFT_CLAIMED,
            course_id=gift.product_id if gift.product_kind == "course" else None,
            creator_id=gift.creator_id,
            data={"gift": gift.id, "order": gift.order_id},
            created_at=now,
        )
    )
    await session.flush()
    return _with(base, ClaimOutcome.CLAIMED)


def _with(claim_: Claim, outcome: ClaimOutcome) -> Claim:
    return Claim(
        outcome,
        claim_.gift_id,
        claim_.buyer_id,
        claim_.product_kind,
        claim_.product_id,
        claim_.title,
    )


async def on_refund(session: AsyncSession, order: Order, now: datetime) -> bool:
    """The gift's order was refunded: an open link is void, a claimed gift's access ends.
    True when a recipient lost access."""
    gift = await session.scalar(select(Gift).where(Gift.order_id == order.id))
    if gift is None:
        return False
    voided = await session.execute(
        update(Gift)
        .where(Gift.id == gift.id, Gift.status == GiftStatus.OPEN)
        .values(status=GiftStatus.VOID)
        .execution_options(synchronize_session=False)
    )
    if getattr(voided, "rowcount", 0):
        return False
    await session.refresh(gift)
    if gift.status != GiftStatus.CLAIMED or gift.claimed_by is None:
        return False
    ent = await access.get_entitlement(session, gift.claimed_by, gift.product_kind, gift.product_id)
    if ent is not None and ent.source_order_id == order.id and ent.revoked_at is None:
        await access.revoke(session, gift.claimed_by, gift.product_kind, gift.product_id, now)
        return True
    return False


async def gift_of_order(session: AsyncSession, order_id: int) -> Gift | None:
    return await session.scalar(select(Gift).where(Gift.order_id == order_id))
