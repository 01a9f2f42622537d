"""Quizzes (a lesson of questions), the learners' attempts and answers, and certificates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class Quiz(TimestampMixin, Base):
    """The quiz behind a lesson whose content_type is "quiz"."""

    __tablename__ = "quizzes"

    id: Mapped[int] = mapped_column(primary_key=True)
    lesson_id: Mapped[int] = mapped_column(
        ForeignKey("lessons.id", ondelete="CASCADE"), unique=True
    )
    # The share of right answers that passes; None: the quiz does not gate the next lesson.
    pass_percent: Mapped[int | None]
    # How long a learner who failed waits before a retry.
    retry_hours: Mapped[int] = mapped_column(default=0)


class QuizQuestion(Base):
    __tablename__ = "quiz_questions"
    __table_args__ = (Index("ix_quiz_questions_quiz_position", "quiz_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    position: Mapped[int]
    question: Mapped[str] = mapped_column(String(300))
    options: Mapped[list[str]] = mapped_column(default=list)
    correct: Mapped[int]  # 0-based index into options
    explanation: Mapped[str | None] = mapped_column(String(200))


class QuizMode:
    POLL = "poll"  # Telegram quiz polls; answers arrive as poll_answer
    BUTTONS = "buttons"  # inline buttons, for clients where polls do not fit


class QuizAttempt(TimestampMixin, Base):
    """One run through a quiz by one learner; the score is kept per attempt."""

    __tablename__ = "quiz_attempts"
    __table_args__ = (Index("ix_quiz_attempts_user_quiz", "user_id", "quiz_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8), default=QuizMode.POLL)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    correct: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    passed: Mapped[bool | None]


class QuizAnswer(Base):
    """A question put to a learner in an attempt; `poll_id` maps a poll_answer back to it."""

    __tablename__ = "quiz_answers"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(
        ForeignKey("quiz_questions.id", ondelete="CASCADE"), index=True
    )
    poll_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    chosen: Mapped[int | None]
    is_correct: Mapped[bool | None]
    answered_at: Mapped[datetime | None]


class Certificate(TimestampMixin, Base):
    """Issued once per learner and course; the picture is rendered once, then re-sent by
    `file_id`. A refund revokes it (`revoked_at`), and `start=v_<serial>` says so."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("user_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    # What the picture says, frozen at issue: a later rename does not change a certificate.
    learner_name: Mapped[str] = mapped_column(String(200))
    course_title: Mapped[str] = mapped_column(String(200))
    creator_name: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    file_id: Mapped[str | None] = mapped_column(String(256))
    revoked_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
