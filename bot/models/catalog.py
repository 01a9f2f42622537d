"""What creators sell: courses with lessons, and plans that grant access to chats."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.models.base import Base, TimestampMixin, utcnow
from bot.models.users import Creator


class Course(TimestampMixin, Base):
    __tablename__ = "courses"
    __table_args__ = (Index("ix_courses_published_id", "published", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(default=list)
    language: Mapped[str] = mapped_column(String(8), default="en")
    # Card price in minor units of `currency` (cents; yen have no minor unit).
    price_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stars_price: Mapped[int] = mapped_column(default=0)
    accepts_stars: Mapped[bool] = mapped_column(default=True)
    accepts_card: Mapped[bool] = mapped_column(default=True)
    published: Mapped[bool] = mapped_column(default=False)
    protect_content: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    creator: Mapped[Creator] = relationship(lazy="raise")


class ContentType(StrEnum):
    TEXT = "text"
    PHOTO = "photo"
    VIDEO = "video"
    DOCUMENT = "document"
    VOICE = "voice"
    QUIZ = "quiz"  # questions in bot.models.quizzes


class ReleaseRule(StrEnum):
    AFTER_DAYS = "after_days"  # release_days after enrollment
    AT_DATE = "at_date"  # a fixed moment, release_at
    AFTER_PREVIOUS = "after_previous"  # once the previous lesson is marked done


class Lesson(TimestampMixin, Base):
    __tablename__ = "lessons"
    __table_args__ = (Index("ix_lessons_course_position", "course_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(16), default=ContentType.TEXT)
    text: Mapped[str | None] = mapped_column(Text)
    file_id: Mapped[str | None] = mapped_column(String(256))
    caption: Mapped[str | None] = mapped_column(Text)
    release_rule: Mapped[str] = mapped_column(String(16), default=ReleaseRule.AFTER_DAYS)
    release_days: Mapped[int] = mapped_column(default=0)
    release_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Plan(TimestampMixin, Base):
    """Paid access to one or more chats (and optionally courses) for a period or for life."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stars_price: Mapped[int] = mapped_column(default=0)
    accepts_stars: Mapped[bool] = mapped_column(default=True)
    accepts_card: Mapped[bool] = mapped_column(default=True)
    # NULL means lifetime access.
    period_days: Mapped[int | None]
    trial_days: Mapped[int] = mapped_column(default=0)
    # Monthly plans may renew as Telegram Stars subscriptions (subscription_period 30 days).
    stars_subscription: Mapped[bool] = mapped_column(default=False)
    published: Mapped[bool] = mapped_column(default=False)
    course_ids: Mapped[list[int]] = mapped_column(default=list)
    # Percent off one renewal, offered once per learner when they cancel or lapse.
    winback_percent: Mapped[int | None]
