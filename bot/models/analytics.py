"""Creator analytics: daily rollups and per-learner funnel progress.

Written as the raw rows are written (the event buffer's flush, the ledger, checkout,
Done presses) and rebuilt from the raw rows by `python -m bot stats-rebuild`. Days are
UTC dates. The dashboard reads only these tables (plus the current members and the
deliveries of the period, both by index range), so its cost follows the period asked
for, not the length of the history.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base


class MoneyDaily(Base):
    """Ledger sums per day and (product, currency, source). Refunds land on the day of the
    refund, attributed to the source of the order they undo."""

    __tablename__ = "stats_money_daily"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "creator_id",
            "product_kind",
            "product_id",
            "currency",
            "source",
            name="uq_stats_money_daily_key",
        ),
        # Covering: a creator's days are read from the index alone.
        Index(
            "ix_stats_money_daily_creator_day",
            "creator_id",
            "day",
            "product_kind",
            "product_id",
            "currency",
            "source",
            "sales",
            "sales_gross",
            "refunds",
            "refunds_gross",
            "gross",
            "fee",
            "net",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    creator_id: Mapped[int]
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(8))
    sales: Mapped[int] = mapped_column(default=0)
    sales_gross: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds: Mapped[int] = mapped_column(default=0)
    refunds_gross: Mapped[int] = mapped_column(BigInteger, default=0)  # positive
    # Ledger sums, refunds included (negative): gross = fee + net on every row.
    gross: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    net: Mapped[int] = mapped_column(BigInteger, default=0)


class ViewsDaily(Base):
    """Card views per day, product (a course's or a plan's card) and source."""

    __tablename__ = "stats_views_daily"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "creator_id",
            "product_kind",
            "product_id",
            "source",
            name="uq_stats_views_daily_key",
        ),
        Index(
            "ix_stats_views_daily_creator_day",
            "creator_id",
            "day",
            "product_kind",
            "product_id",
            "source",
            "views",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    creator_id: Mapped[int]
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    source: Mapped[str] = mapped_column(String(8))
    views: Mapped[int] = mapped_column(default=0)


class PlanDaily(Base):
    """Plan acquisitions per day: a learner's first credited purchase of a plan joins,
    every later one (a Stars renewal, a purchase that extends) renews."""

    __tablename__ = "stats_plan_daily"
    __table_args__ = (
        UniqueConstraint("day", "creator_id", "plan_id", name="uq_stats_plan_daily_key"),
        Index("ix_stats_plan_daily_creator_day", "creator_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    creator_id: Mapped[int]
    plan_id: Mapped[int]
    joined: Mapped[int] = mapped_column(default=0)
    renewed: Mapped[int] = mapped_column(default=0)


class FunnelProgress(Base):
    """When one learner first reached each step for one product.

    Unique learners over a period cannot be summed from daily uniques (someone who views
    on Monday and on Tuesday is one learner, not two), and counting distinct learners in
    the raw events would scan every event of the period on every press. One row per
    (product, learner) grows with learners, not with events; a period's funnel is the
    cohort that entered it in the period, read by an index range on entered_at.
    """

    __tablename__ = "stats_funnel"
    __table_args__ = (
        UniqueConstraint("product_kind", "product_id", "user_id", name="uq_stats_funnel_key"),
        # Both covering: a period's cohort and its buyers are read from the index alone.
        Index(
            "ix_stats_funnel_creator_entered",
            "creator_id",
            "entered_at",
            "product_kind",
            "product_id",
            "user_id",
            "viewed_at",
            "buy_at",
            "invoice_at",
            "paid_at",
            "first_done_at",
            "completed_at",
        ),
        Index(
            "ix_stats_funnel_creator_paid",
            "creator_id",
            "paid_at",
            "product_kind",
            "product_id",
            "paid_source",
            "user_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(BigInteger)
    creator_id: Mapped[int]
    entered_at: Mapped[datetime]
    viewed_at: Mapped[datetime | None]
    buy_at: Mapped[datetime | None]
    invoice_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    first_done_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # Where the first card view came from, and the source of the first paid order.
    source: Mapped[str | None] = mapped_column(String(8))
    paid_source: Mapped[str | None] = mapped_column(String(8))


class Nudge(Base):
    """The last gentle nudge a learner got for a course: at most one per 7 days."""

    __tablename__ = "stats_nudges"
    __table_args__ = (UniqueConstraint("user_id", "course_id", name="uq_stats_nudges_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    course_id: Mapped[int]
    sent_at: Mapped[datetime]
