"""Who may have what: entitlements, linked chats, the plans that sell them, and the members
the bot has seen."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class Entitlement(TimestampMixin, Base):
    """One row per (user, product). Renewals extend it; refunds revoke it."""

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("user_id", "product_kind", "product_id"),
        # Covering the dashboard's plan figures: a plan's memberships that reach into a
        # period, read from the index alone.
        Index(
            "ix_entitlements_product_expires",
            "product_kind",
            "product_id",
            "expires_at",
            "starts_at",
            "revoked_at",
            "source_order_id",
        ),
        Index("ix_entitlements_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    product_kind: Mapped[str] = mapped_column(String(16))
    product_id: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    # NULL means lifetime.
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    source_order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL")
    )
    is_trial: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def is_active(self, now: datetime) -> bool:
        if self.revoked_at is not None or self.starts_at > now:
            return False
        return self.expires_at is None or self.expires_at > now


class ChatKind:
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"


class Group(TimestampMixin, Base):
    """A Telegram group or channel a creator linked to sell access to."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(255), default="")
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    whitelist: Mapped[list[int]] = mapped_column(default=list)


class PlanChat(TimestampMixin, Base):
    """A plan sells access to a chat. Many to many: one chat may be sold by several plans
    (monthly, yearly, lifetime), and whoever holds any of them may be in it."""

    __tablename__ = "plan_chats"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GroupMember(Base):
    """The last membership status the bot saw for a user in a linked chat."""

    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
