"""Q&A: a learner's question to a course's creator, its answer, and the course's FAQ."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin


class QuestionStatus:
    # A priced question waits for its Stars invoice to be paid; nobody sees it yet.
    AWAITING_PAYMENT = "awaiting_payment"
    OPEN = "open"  # with the creator, waiting for an answer
    ANSWERED = "answered"
    # Unanswered within the deadline: the Stars went back; it can no longer be answered.
    REFUNDED = "refunded"


class CourseOptions(Base):
    """A creator's per-course switches that are not part of the course's card."""

    __tablename__ = "course_options"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    # What a question costs in Stars; 0: questions are free.
    question_stars: Mapped[int] = mapped_column(default=0)
    # The automatic at-risk nudge (bot.analytics.nudges); the creator may switch it off.
    auto_nudges: Mapped[bool] = mapped_column(default=True)


class Question(TimestampMixin, Base):
    __tablename__ = "questions"
    __table_args__ = (
        Index("ix_questions_creator_status", "creator_id", "status"),
        Index("ix_questions_course_published", "course_id", "published"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(ForeignKey("creators.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    # The learner's message, copied to the creator (copyMessage) rather than re-built.
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    # Its text or caption, for the FAQ and /questions ("" for a photo without caption).
    text: Mapped[str] = mapped_column(Text, default="")
    content_type: Mapped[str] = mapped_column(String(16), default="text")
    status: Mapped[str] = mapped_column(String(20), default=QuestionStatus.OPEN)
    stars: Mapped[int] = mapped_column(default=0)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    # When it reached the creator (paid, or asked for free): the 72 hours count from here.
    asked_at: Mapped[datetime | None]
    answer_text: Mapped[str | None] = mapped_column(Text)
    answer_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    answer_message_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    # In the course's FAQ, shown on the card to everyone.
    published: Mapped[bool] = mapped_column(default=False)
