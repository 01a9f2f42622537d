"""Q&A without money: who may ask, the creator's answer, the FAQ and /questions.

The paid side (the Stars invoice, the 72-hour refund) is bot.payments.questions. A
question's status only moves forward through conditional UPDATEs (open → answered,
open → refunded), so an answer and the refund job can never both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, CourseOptions, Creator, ProductKind, Question, QuestionStatus
from bot.services import access
from bot.services.changes import Tracker

# What a creator may ask for one question (Telegram's own ceiling is far higher).
MAX_STARS = 10_000
FAQ_SHOWN = 10
TEXT_KEPT = 1000


class Refusal(StrEnum):
    NO_COURSE = "no_course"
    NOT_BUYER = "not_buyer"
    OWN_COURSE = "own_course"
    NOT_YOURS = "not_yours"  # another creator's question
    NOT_FOUND = "not_found"
    NOT_OPEN = "not_open"  # still waiting for its payment
    ANSWERED = "answered"
    REFUNDED = "refunded"
    NOT_ANSWERED = "not_answered"  # publish before an answer
    BAD_PRICE = "bad_price"


async def options(session: AsyncSession, course_id: int) -> CourseOptions:
    """The course's options row, made (with the defaults) on first use."""
    row = await session.get(CourseOptions, course_id)
    if row is None:
        row = CourseOptions(course_id=course_id, question_stars=0, auto_nudges=True)
        session.add(row)
    return row


async def question_price(session: AsyncSession, course_id: int) -> int:
    stars = await session.scalar(
        select(CourseOptions.question_stars).where(CourseOptions.course_id == course_id)
    )
    return int(stars or 0)


async def set_price(
    session: AsyncSession, creator: Creator, course_id: int, stars: int
) -> Course | Refusal:
    course = await session.get(Course, course_id)
    if course is None or course.creator_id != creator.id:
        return Refusal.NO_COURSE
    if not 0 <= stars <= MAX_STARS:
        return Refusal.BAD_PRICE
    (await options(session, course_id)).question_stars = stars
    await session.flush()
    return course


async def can_ask(
    session: AsyncSession, user_id: int, course_id: int, now: datetime
) -> Course | Refusal:
    course = await session.get(Course, course_id)
    if course is None:
        return Refusal.NO_COURSE
    owner = await session.scalar(select(Creator.user_id).where(Creator.id == course.creator_id))
    if owner == user_id:
        return Refusal.OWN_COURSE
    if not await access.has_access(session, user_id, ProductKind.COURSE, course_id, now):
        return Refusal.NOT_BUYER
    return course


@dataclass(frozen=True, slots=True)
class Asked:
    chat_id: int
    message_id: int
    content_type: str
    text: str


async def ask(
    session: AsyncSession, user_id: int, course: Course, asked: Asked, now: datetime
) -> Question:
    """Book a question: open at once when questions are free, else waiting for its Stars."""
    stars = await question_price(session, course.id)
    question = Question(
        course_id=course.id,
        creator_id=course.creator_id,
        user_id=user_id,
        chat_id=asked.chat_id,
        message_id=asked.message_id,
        content_type=asked.content_type,
        text=asked.text[:TEXT_KEPT],
        status=QuestionStatus.AWAITING_PAYMENT if stars > 0 else QuestionStatus.OPEN,
        stars=stars,
        asked_at=None if stars > 0 else now,
        published=False,
        created_at=now,
    )
    session.add(question)
    await session.flush()
    return question


async def creator_question(
    session: AsyncSession, question_id: int, creator_user_id: int
) -> Question | Refusal:
    """A question the creator behind `creator_user_id` owns (any status)."""
    question = await session.get(Question, question_id)
    if question is None:
        return Refusal.NOT_FOUND
    owner = await session.scalar(select(Creator.user_id).where(Creator.id == question.creator_id))
    if owner != creator_user_id:
        return Refusal.NOT_YOURS
    return question


def _closed(question: Question) -> Refusal | None:
    if question.status == QuestionStatus.ANSWERED:
        return Refusal.ANSWERED
    if question.status == QuestionStatus.REFUNDED:
        return Refusal.REFUNDED
    if question.status != QuestionStatus.OPEN:
        return Refusal.NOT_OPEN
    return None


async def answerable(
    session: AsyncSession, question_id: int, creator_user_id: int
) -> Question | Refusal:
    question = await creator_question(session, question_id, creator_user_id)
    if isinstance(question, Refusal):
        return question
    return _closed(question) or question


async def answer(
    session: AsyncSession,
    question_id: int,
    creator_user_id: int,
    reply: Asked,
    now: datetime,
) -> Question | Refusal:
    """Record the answer, only if the question is still open (not refunded meanwhile)."""
    question = await answerable(session, question_id, creator_user_id)
    if isinstance(question, Refusal):
        return question
    won = await session.execute(
        update(Question)
        .where(Question.id == question.id, Question.status == QuestionStatus.OPEN)
        .values(
            status=QuestionStatus.ANSWERED,
            answer_chat_id=reply.chat_id,
            answer_message_id=reply.message_id,
            answer_text=reply.text[:TEXT_KEPT],
            answered_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.refresh(question)
    if not getattr(won, "rowcount", 0):
        return _closed(question) or Refusal.NOT_OPEN
    return question


async def publish(
    session: AsyncSession, question_id: int, creator_user_id: int
) -> Question | Refusal:
    question = await creator_question(session, question_id, creator_user_id)
    if isinstance(question, Refusal):
        return question
    if question.status != QuestionStatus.ANSWERED:
        return Refusal.NOT_ANSWERED
    question.published = True
    await session.flush()
    return question


async def faq(session: AsyncSession, course_id: int, limit: int = FAQ_SHOWN) -> list[Question]:
    """Published answers, newest first."""
    return list(
        await session.scalars(
            select(Question)
            .where(
                Question.course_id == course_id,
                Question.published.is_(True),
                Question.status == QuestionStatus.ANSWERED,
            )
            .order_by(Question.answered_at.desc(), Question.id.desc())
            .limit(limit)
        )
    )


# What a card counts, kept in memory with the card's other extras
# (bot.marketplace.card_extras): a commit that changes a question drops its course's count.
QUESTIONS = Tracker(Question, key=lambda obj: obj.course_id)


def _published() -> tuple[Any, ...]:
    return (Question.published.is_(True), Question.status == QuestionStatus.ANSWERED)


async def faq_counts(session: AsyncSession) -> dict[int, int]:
    """Course id → its published answers, for every course that has some."""
    rows = await session.execute(
        select(Question.course_id, func.count()).where(*_published()).group_by(Question.course_id)
    )
    return {int(c): int(n) for c, n in rows.tuples()}


async def faq_count(session: AsyncSession, course_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Question)
        .where(Question.course_id == course_id, *_published())
    )
    return int(count or 0)


@dataclass(frozen=True, slots=True)
class Waiting:
    id: int
    course_title: str
    text: str
    content_type: str
    stars: int
    asked_at: datetime


async def unanswered(session: AsyncSession, creator_id: int, limit: int = 50) -> list[Waiting]:
    """The creator's open questions, oldest first (the paid ones run out after 72 h)."""
    rows = await session.execute(
        select(Question, Course.title)
        .join(Course, Course.id == Question.course_id)
        .where(Question.creator_id == creator_id, Question.status == QuestionStatus.OPEN)
        .order_by(Question.asked_at, Question.id)
        .limit(limit)
    )
    return [
        Waiting(q.id, title, q.text, q.content_type, q.stars, q.asked_at or q.created_at)
        for q, title in rows.tuples()
    ]
