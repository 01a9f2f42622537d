"""Money: orders, payments, the ledger and coupons."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class ProductKind(StrEnum):
    COURSE = "course"
    PLAN = "plan"
    # Several courses of one creator at one price (bot.marketplace.bundles).
    BUNDLE = "bundle"
    # A creator's top-up of a promotion campaign (bot.marketplace.promotions): paid like
    # a product, credited to the campaign's budget instead of granting access.
    PROMOTION = "promotion"
    # A paid question to a course's creator (bot.services.qa): no access, just an answer.
    QUESTION = "question"


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PaymentMethod(StrEnum):
    STARS = "stars"
    CARD = "card"  # a Telegram invoice with a payment provider token (Stripe)
    WEB = "web"  # Stripe Checkout outside Telegram
    FREE = "free"  # a 100% coupon: access with no invoice


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_status", "user_id", "status"),
        # Housekeeping looks for reservations to free; almost no order holds one.
        Index("ix_orders_coupon_reserved", "coupon_reserved", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The opaque invoice payload: unguessable, at most 128 bytes (Telegram's limit).
    public_ref: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    method: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    list_amount_minor: Mapped[int]
    amount_minor: Mapped[int]
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("coupons.id", ondelete="SET NULL"))
    # This order holds one of its coupon's reserved uses (Coupon.reserved_count): taken
    # when the invoice is opened, turned into a use when it is paid, freed by the
    # housekeeping job once the order has expired (bot.payments.coupons).
    coupon_reserved: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PENDING)
    paid_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    # Where the buyer came from (bot.analytics.sources), set once when the money arrives
    # from the learner's first card view within 30 days: later views never change it.
    source: Mapped[str | None] = mapped_column(String(8))
    # Bought for someone else (bot.growth.gifts): paid access waits behind a claim link.
    gift: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Payment(TimestampMixin, Base):
    """One credit from a provider. Uniqueness on the provider's ids makes redelivery harmless."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int]
    telegram_payment_charge_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    provider_payment_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Stripe webhook deliveries are deduplicated by their event id.
    external_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    is_recurring: Mapped[bool] = mapped_column(default=False)
    subscription_expires_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LedgerKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"


class LedgerEntry(TimestampMixin, Base):
    """Double-entry-ish split of every credit and refund: gross = fee + net + commission,
    always (commission: what an affiliate earns on the sale, bot.growth.affiliates)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_creator_created", "creator_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id", ondelete="RESTRICT"))
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    gross_minor: Mapped[int]
    fee_minor: Mapped[int]
    net_minor: Mapped[int]
    commission_minor: Mapped[int] = mapped_column(default=0)


class CouponKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


class Coupon(TimestampMixin, Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored upper-case; learners type codes in any case.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    # NULL product means creator-wide.
    product_kind: Mapped[str | None] = mapped_column(String(16))
    product_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(16))
    # Percent: 1..100. Fixed: minor units of `currency` (Stars when currency is XTR).
    value: Mapped[int]
    currency: Mapped[str | None] = mapped_column(String(3))
    max_uses: Mapped[int | None]
    used_count: Mapped[int] = mapped_column(default=0)
    # Uses held by open invoices (orders with coupon_reserved). A code has room while
    # used_count + reserved_count < max_uses; one conditional UPDATE checks and takes.
    reserved_count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)
