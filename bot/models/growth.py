"""Growth money: affiliate programmes, links, first-click attributions, the affiliates'
own ledger (commissions, their cancellations and clawbacks, payouts) and gifts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin


class AffiliateProgram(TimestampMixin, Base):
    """A creator's offer to affiliates: creator-wide (product NULL) or for one product.
    A product's own row wins over the creator-wide one, also when it is switched off."""

    __tablename__ = "affiliate_programs"
    __table_args__ = (Index("ix_affiliate_programs_creator", "creator_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    product_kind: Mapped[str | None] = mapped_column(String(16))
    product_id: Mapped[int | None]
    percent: Mapped[int]
    hold_days: Mapped[int] = mapped_column(default=0)
    # The smallest payout the creator makes, in `min_currency` (0: any amount).
    min_payout_minor: Mapped[int] = mapped_column(default=0)
    min_currency: Mapped[str | None] = mapped_column(String(3))
    active: Mapped[bool] = mapped_column(default=True)


class AffiliateLink(TimestampMixin, Base):
    """One learner's personal link for one product: t.me/<bot>?start=a_<code>."""

    __tablename__ = "affiliate_links"
    __table_args__ = (UniqueConstraint("user_id", "product_kind", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    clicks: Mapped[int] = mapped_column(default=0)


class AffiliateAttribution(TimestampMixin, Base):
    """Who brought a learner to a product: the first click within 30 days wins."""

    __tablename__ = "affiliate_attributions"
    __table_args__ = (UniqueConstraint("user_id", "product_kind", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    link_id: Mapped[int] = mapped_column(ForeignKey("affiliate_links.id", ondelete="CASCADE"))
    affiliate_id: Mapped[int] = mapped_column(BigInteger)
    clicked_at: Mapped[datetime]


class AffiliateEntryKind(StrEnum):
    COMMISSION = "commission"  # + on a sale, payable from payable_at
    CANCEL = "cancel"  # − a refund within the hold: same payable_at, nets to nothing
    CLAWBACK = "clawback"  # − a refund after the hold: payable at once, may go below zero
    PAYOUT = "payout"  # − money the creator paid the affiliate


class AffiliateEntry(TimestampMixin, Base):
    """The affiliates' ledger. Balances are sums: pending = entries whose payable_at is
    still ahead, payable = the rest (payouts included), paid = −payouts."""

    __tablename__ = "affiliate_entries"
    __table_args__ = (
        # One commission, and one undoing of it, per payment: redelivery books nothing twice.
        UniqueConstraint("payment_id", "kind"),
        Index("ix_affiliate_entries_creator_affiliate", "creator_id", "affiliate_id"),
        Index("ix_affiliate_entries_affiliate", "affiliate_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    affiliate_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int]
    # The sale it came from (0 for payouts): "revenue brought".
    base_minor: Mapped[int] = mapped_column(default=0)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    order_id: Mapped[int | None]
    buyer_id: Mapped[int | None] = mapped_column(BigInteger)
    payable_at: Mapped[datetime]


class GiftStatus(StrEnum):
    OPEN = "open"  # paid, waiting for its recipient
    CLAIMED = "claimed"
    VOID = "void"  # refunded before anyone claimed it


class Gift(TimestampMixin, Base):
    """A paid course waiting behind a one-time link: t.me/<bot>?start=g_<token>."""

    __tablename__ = "gifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), unique=True)
    buyer_id: Mapped[int] = mapped_column(BigInteger)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default=GiftStatus.OPEN)
    claimed_by: Mapped[int | None] = mapped_column(BigInteger)
    claimed_at: Mapped[datetime | None]
