"""Growth messages: abandoned-checkout reminders, their coupons, and win-back offers.

(Affiliates and gifts live in their own tables; these are only the messages that try
to bring a learner back.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, utcnow


class CheckoutReminder(Base):
    """One reminder per abandoned order, ever (the unique order_id). The latest one per
    (user, product) also keeps a second order from reminding within REMIND_GAP."""

    __tablename__ = "growth_reminders"
    __table_args__ = (
        Index("ix_growth_reminders_user_product", "user_id", "product_kind", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # Why it was not sent (paid, owned, blocked, off, recent, gone), when it was not.
    outcome: Mapped[str | None] = mapped_column(String(16))


class ReminderCoupon(Base):
    """The code a creator offers in abandoned-checkout reminders: for one course
    (product_id) or for all of theirs (product_id 0)."""

    __tablename__ = "growth_reminder_coupons"
    __table_args__ = (
        UniqueConstraint(
            "creator_id", "product_kind", "product_id", name="uq_growth_reminder_coupons_key"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int] = mapped_column(default=0)
    coupon_id: Mapped[int] = mapped_column(ForeignKey("coupons.id", ondelete="CASCADE"))


class WinbackOffer(Base):
    """A one-time renewal discount offered when a plan is cancelled or lapses: one row
    per (user, plan), ever, so nobody gets it twice."""

    __tablename__ = "growth_winbacks"
    __table_args__ = (UniqueConstraint("user_id", "plan_id", name="uq_growth_winbacks_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    percent: Mapped[int]
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(16))  # cancel | lapse
    offered_at: Mapped[datetime] = mapped_column(default=utcnow)
