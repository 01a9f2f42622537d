"""The funnel: what learners did, append-only."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin


class EventKind(StrEnum):
    START = "start"
    VIEW = "view"
    BUY = "buy"  # Buy pressed on a card
    SEARCH = "search"
    INVOICE = "invoice"
    PAID = "paid"
    JOINED = "joined"
    REFUNDED = "refunded"
    LESSON_DONE = "lesson_done"
    GIFT_CLAIMED = "gift_claimed"


class Event(TimestampMixin, Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_kind_created", "kind", "created_at"),
        Index("ix_events_course_kind", "course_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys: events outlive what they mention and are written in bulk.
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    course_id: Mapped[int | None]
    creator_id: Mapped[int | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
