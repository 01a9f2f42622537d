"""Check-in challenges (打卡): a creator's challenge on a course or plan, its members and
their daily check-ins, counted in each member's own local days."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin


class Challenge(TimestampMixin, Base):
    __tablename__ = "challenges"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    # Exactly one of the two: who may join (holders of the course, or of the plan).
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), index=True
    )
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    days: Mapped[int]
    # The creator's linked group or channel the weekly leaderboard goes to.
    group_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    ends_at: Mapped[datetime]


class ChallengeMember(Base):
    __tablename__ = "challenge_members"
    __table_args__ = (
        UniqueConstraint("challenge_id", "user_id", name="uq_challenge_members_key"),
        Index("ix_challenge_members_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime]
    # The daily reminder, in minutes after the member's local midnight; None: no reminder.
    remind_minute: Mapped[int | None]
    # The run of consecutive local days up to last_day (a frozen day keeps it going).
    streak: Mapped[int] = mapped_column(default=0)
    best: Mapped[int] = mapped_column(default=0)
    check_ins: Mapped[int] = mapped_column(default=0)
    last_day: Mapped[date | None]
    # The Monday of the (ISO) week whose one freeze was used.
    freeze_week: Mapped[date | None]


class CheckIn(Base):
    __tablename__ = "check_ins"
    __table_args__ = (
        # Once per local day, held by the database too (two fast messages, two workers).
        UniqueConstraint("challenge_id", "user_id", "day", name="uq_check_ins_day"),
        Index("ix_check_ins_challenge_day", "challenge_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date]  # the member's local date
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    featured: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
