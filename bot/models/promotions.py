"""Promoted listings: campaigns, the sponsored slots shown (impressions), the charged
clicks, and the promotion ledger (bot.marketplace.promotions)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class CampaignStatus(StrEnum):
    PENDING = "pending"  # its top-up invoice is not paid yet
    ACTIVE = "active"
    PAUSED = "paused"  # by the creator; resumable
    ENDED = "ended"  # its unused budget no longer covers a click at its bid


class PromoCampaign(TimestampMixin, Base):
    """One course promoted at one max bid per click, funded by one or more top-ups.

    unused = budget - spent - withdrawn, always >= 0 (conditional UPDATEs keep it so)."""

    __tablename__ = "promo_campaigns"
    __table_args__ = (Index("ix_promo_campaigns_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    bid_minor: Mapped[int]  # Stars, the most one click may cost
    budget_minor: Mapped[int] = mapped_column(default=0)  # Stars paid in
    spent_minor: Mapped[int] = mapped_column(default=0)
    withdrawn_minor: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.PENDING)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def unused(self) -> int:
        return self.budget_minor - self.spent_minor - self.withdrawn_minor


class PromoImpression(Base):
    """One sponsored slot shown to one learner. Its unguessable token is what the slot's
    button carries: a click is charged only against a real impression of that learner."""

    __tablename__ = "promo_impressions"
    __table_args__ = (Index("ix_promo_impressions_campaign", "campaign_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="CASCADE"))
    course_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    placement: Mapped[str] = mapped_column(String(8))  # catalog | search | rec
    # The second price this slot won at: what a click on it costs (at most the bid).
    price_minor: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromoClick(Base):
    """A charged click: at most one per campaign, learner and (UTC) day."""

    __tablename__ = "promo_clicks"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id", "day", name="uq_promo_clicks_once_a_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("promo_campaigns.id", ondelete="CASCADE"))
    impression_id: Mapped[int] = mapped_column(
        ForeignKey("promo_impressions.id", ondelete="CASCADE")
    )
    course_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date]
    price_minor: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromoEntryKind(StrEnum):
    TOPUP = "topup"  # Stars paid in: +gross, +promo
    SPEND = "spend"  # a charged click: +fee (platform income), -promo
    WITHDRAW = "withdraw"  # unused budget back: +net (the creator's balance), -promo


class PromoEntry(Base):
    """The promotion ledger, kept apart from the sales ledger (ledger_entries) so no sale
    figure ever counts a top-up. gross = fee + net + promo, always:

    - fee: the platform's promotion income (never the sale fee);
    - net: what moves to the creator's balance (Σ net of both ledgers);
    - promo: what moves on the creator's promotion balance (Σ promo)."""

    __tablename__ = "promo_entries"
    __table_args__ = (Index("ix_promo_entries_creator_created", "creator_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("promo_campaigns.id", ondelete="CASCADE"), index=True
    )
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), unique=True
    )
    click_id: Mapped[int | None] = mapped_column(
        ForeignKey("promo_clicks.id", ondelete="SET NULL"), unique=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    gross_minor: Mapped[int] = mapped_column(default=0)
    fee_minor: Mapped[int] = mapped_column(default=0)
    net_minor: Mapped[int] = mapped_column(default=0)
    promo_minor: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
