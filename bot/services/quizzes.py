"""Quizzes: a lesson made of questions, the learners' attempts, the pass mark that gates the
next lesson, and the creator's pass rates per question.

A quiz lesson is delivered on the drip schedule like any lesson (its message offers Start).
Each attempt puts the questions one at a time, as Telegram quiz polls (answers come back
as `poll_answer`, mapped by `QuizAnswer.poll_id`) or as inline buttons. The last answer
scores the attempt; a pass (or simply finishing, for a quiz without a pass mark) marks the
quiz's delivery done through drip, which releases the next lesson and, after the last
one, issues the certificate. Starting and answering re-check the entitlement: access
follows money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    ContentType,
    Creator,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Lesson,
    Quiz,
    QuizAnswer,
    QuizAttempt,
    QuizMode,
    QuizQuestion,
    ReleaseRule,
)
from bot.services import authoring, drip

QUESTION_LIMIT = 300
OPTION_LIMIT = 100
EXPLANATION_LIMIT = 200
# Telegram takes up to 12 poll options; 10 still fit as buttons on a phone.
MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_QUESTIONS = 50
MAX_RETRY_HOURS = 24 * 30


# --- authoring ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionDraft:
    question: str
    options: tuple[str, ...]
    correct: int
    explanation: str | None = None


class DraftError(StrEnum):
    QUESTION_EMPTY = "question_empty"
    QUESTION_LONG = "question_long"
    OPTIONS_COUNT = "options_count"
    OPTION_LONG = "option_long"
    CORRECT = "correct"
    EXPLANATION_LONG = "explanation_long"
    NOT_QUIZ = "not_quiz"


def check_question(question: str) -> DraftError | None:
    if not question.strip():
        return DraftError.QUESTION_EMPTY
    if len(question) > QUESTION_LIMIT:
        return DraftError.QUESTION_LONG
    return None


def parse_options(text: str) -> tuple[str, ...] | DraftError:
    """One option a line; blank lines are skipped."""
    options = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        return DraftError.OPTIONS_COUNT
    if any(len(o) > OPTION_LIMIT for o in options):
        return DraftError.OPTION_LONG
    return options


def parse_answer(text: str, options: tuple[str, ...]) -> tuple[int, str | None] | DraftError:
    """ "2" or "2 because …": the right option's number (1-based) and an explanation."""
    number, _sep, rest = text.strip().partition(" ")
    if not (number.isascii() and number.isdigit()) or not 1 <= int(number) <= len(options):
        return DraftError.CORRECT
    explanation = rest.strip() or None
    if explanation is not None and len(explanation) > EXPLANATION_LIMIT:
        return DraftError.EXPLANATION_LONG
    return int(number) - 1, explanation


def draft_from_poll(
    question: str,
    options: list[str],
    poll_type: str,
    correct_ids: list[int] | None,
    explanation: str | None,
) -> QuestionDraft | DraftError:
    """A native Telegram quiz the creator forwarded: one right answer, known to the bot."""
    if poll_type != "quiz" or not correct_ids or len(correct_ids) != 1:
        return DraftError.NOT_QUIZ
    problem = check_question(question)
    if problem is not None:
        return problem
    checked = parse_options("\n".join(options))
    if isinstance(checked, DraftError):
        return checked
    if len(checked) != len(options) or not 0 <= correct_ids[0] < len(options):
        return DraftError.CORRECT
    if explanation is not None and len(explanation) > EXPLANATION_LIMIT:
        return DraftError.EXPLANATION_LONG
    return QuestionDraft(question.strip(), checked, correct_ids[0], explanation or None)


async def create_quiz(
    session: AsyncSession,
    creator: Creator,
    course_id: int,
    title: str,
    questions: list[QuestionDraft],
    now: datetime,
) -> Lesson | None:
    """Append a quiz lesson (released like /addlesson's: one day after the lesson before)."""
    course = await authoring.own_course(session, creator, course_id)
    if course is None or not 1 <= len(questions) <= MAX_QUESTIONS:
        return None
    existing = await authoring.lessons_of(session, course_id)
    lesson = Lesson(
        course_id=course_id,
        position=(existing[-1].position + 1) if existing else 1,
        title=title[:200],
        content_type=ContentType.QUIZ,
        release_rule=ReleaseRule.AFTER_DAYS,
        release_days=len(existing),
    )
    session.add(lesson)
    await session.flush()
    quiz = Quiz(lesson_id=lesson.id, created_at=now)
    session.add(quiz)
    await session.flush()
    for position, q in enumerate(questions, start=1):
        session.add(
            QuizQuestion(
                quiz_id=quiz.id,
                position=position,
                question=q.question,
                options=list(q.options),
                correct=q.correct,
                explanation=q.explanation,
            )
        )
    await session.flush()
    await drip.reschedule_course(session, course_id, now)
    return lesson


async def set_pass_mark(
    session: AsyncSession,
    creator: Creator,
    lesson_id: int,
    percent: int | None,
    retry_hours: int,
    now: datetime,
) -> Quiz | None:
    """The pass mark (None: no gate) and the pause before a retry. The schedule of every
    learner follows at once: a new gate holds back lessons not sent yet."""
    owned = await authoring.own_lesson(session, creator, lesson_id)
    if owned is None:
        return None
    lesson, course = owned
    quiz = await session.scalar(select(Quiz).where(Quiz.lesson_id == lesson.id))
    if quiz is None:
        return None
    quiz.pass_percent = percent
    quiz.retry_hours = retry_hours
    await session.flush()
    await drip.reschedule_course(session, course.id, now)
    return quiz


async def questions_of(session: AsyncSession, quiz_id: int) -> list[QuizQuestion]:
    rows = await session.scalars(
        select(QuizQuestion)
        .where(QuizQuestion.quiz_id == quiz_id)
        .order_by(QuizQuestion.position, QuizQuestion.id)
    )
    return list(rows)


async def quiz_of_lesson(session: AsyncSession, lesson_id: int) -> Quiz | None:
    return await session.scalar(select(Quiz).where(Quiz.lesson_id == lesson_id))


# --- the learner's attempts ---------------------------------------------------------------


class Refusal(StrEnum):
    NOT_YOURS = "not_yours"  # forged or stale: not this learner's quiz
    NO_ACCESS = "no_access"  # refunded or expired
    PASSED = "passed"  # already passed (or finished): nothing to retry
    WAIT = "wait"  # failed; the retry opens at `retry_at`
    ANSWERED = "answered"  # this question was answered already
    FINISHED = "finished"  # the attempt is over


@dataclass(frozen=True, slots=True)
class Ask:
    """The question to put now."""

    attempt_id: int
    mode: str
    question: QuizQuestion
    number: int
    total: int


@dataclass(frozen=True, slots=True)
class Score:
    """A finished attempt."""

    correct: int
    total: int
    percent: int
    pass_percent: int | None
    passed: bool
    retry_at: datetime | None  # when a failed learner may retry
    step: drip.StepResult | None  # what passing released (None: nothing changed)
    delivery_id: int = 0  # the quiz lesson's delivery (what Retry starts again)
    certificate_id: int | None = None


@dataclass(frozen=True, slots=True)
class Result:
    refusal: Refusal | None = None
    ask: Ask | None = None
    score: Score | None = None
    was_correct: bool | None = None
    explanation: str | None = None
    retry_at: datetime | None = None


async def _quiz_delivery(
    session: AsyncSession, user_id: int, delivery_id: int
) -> tuple[Delivery, Enrollment, Quiz] | None:
    row = (
        await session.execute(
            select(Delivery, Enrollment, Quiz)
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .join(Quiz, Quiz.lesson_id == Delivery.lesson_id)
            .where(
                Delivery.id == delivery_id,
                Delivery.user_id == user_id,
                Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.SENDING)),
            )
        )
    ).first()
    return None if row is None else (row[0], row[1], row[2])


async def _last_attempt(session: AsyncSession, user_id: int, quiz_id: int) -> QuizAttempt | None:
    return await session.scalar(
        select(QuizAttempt)
        .where(QuizAttempt.user_id == user_id, QuizAttempt.quiz_id == quiz_id)
        .order_by(QuizAttempt.id.desc())
        .limit(1)
    )


def retry_time(attempt: QuizAttempt, quiz: Quiz) -> datetime | None:
    if attempt.finished_at is None:
        return None
    return attempt.finished_at + timedelta(hours=quiz.retry_hours)


async def start(
    session: AsyncSession, user_id: int, delivery_id: int, mode: str, now: datetime
) -> Result:
    """Start (or retry) the quiz of this delivery; an attempt in progress is continued."""
    owned = await _quiz_delivery(session, user_id, delivery_id)
    if owned is None or mode not in (QuizMode.POLL, QuizMode.BUTTONS):
        return Result(Refusal.NOT_YOURS)
    delivery, enrollment, quiz = owned
    if not await drip.entitled(session, enrollment, now):
        return Result(Refusal.NO_ACCESS)
    if delivery.done_at is not None:
        return Result(Refusal.PASSED)
    last = await _last_attempt(session, user_id, quiz.id)
    if last is not None and last.finished_at is None:
        last.mode = mode
        return await _next(session, last)
    if last is not None:
        opens = retry_time(last, quiz)
        if opens is not None and opens > now:
            return Result(Refusal.WAIT, retry_at=opens)
    questions = await questions_of(session, quiz.id)
    attempt = QuizAttempt(
        quiz_id=quiz.id,
        user_id=user_id,
        delivery_id=delivery.id,
        mode=mode,
        started_at=now,
        total=len(questions),
        created_at=now,
    )
    session.add(attempt)
    await session.flush()
    return await _next(session, attempt)


async def _next(session: AsyncSession, attempt: QuizAttempt) -> Result:
    """The first question of the attempt not answered yet."""
    questions = await questions_of(session, attempt.quiz_id)
    answered = set(
        await session.scalars(
            select(QuizAnswer.question_id).where(
                QuizAnswer.attempt_id == attempt.id, QuizAnswer.chosen.is_not(None)
            )
        )
    )
    for number, q in enumerate(questions, start=1):
        if q.id not in answered:
            return Result(ask=Ask(attempt.id, attempt.mode, q, number, len(questions)))
    return Result(Refusal.FINISHED)


async def asked(
    session: AsyncSession, attempt_id: int, question_id: int, poll_id: str | None
) -> None:
    """The question went out (as the poll `poll_id`, or as buttons): remember it, so the
    answer can be mapped back (a poll_answer carries only the poll's id)."""
    row = await session.scalar(
        select(QuizAnswer).where(
            QuizAnswer.attempt_id == attempt_id, QuizAnswer.question_id == question_id
        )
    )
    if row is None:
        session.add(QuizAnswer(attempt_id=attempt_id, question_id=question_id, poll_id=poll_id))
    elif row.chosen is None and poll_id is not None:
        row.poll_id = poll_id  # put again (continued): the newest poll counts
    await session.flush()


async def answer_poll(
    session: AsyncSession, user_id: int, poll_id: str, option_ids: list[int], now: datetime
) -> Result | None:
    """A poll_answer. None: not a poll of ours for this user (ignored: it has no chat)."""
    row = (
        await session.execute(
            select(QuizAnswer, QuizAttempt)
            .join(QuizAttempt, QuizAttempt.id == QuizAnswer.attempt_id)
            .where(QuizAnswer.poll_id == poll_id)
        )
    ).first()
    if row is None or row[1].user_id != user_id or len(option_ids) != 1:
        return None
    return await _answer(session, row[1], row[0], option_ids[0], now)


async def answer_button(
    session: AsyncSession,
    user_id: int,
    attempt_id: int,
    question_id: int,
    option: int,
    now: datetime,
) -> Result:
    """An inline-button answer; every id in the button is re-checked against the learner."""
    attempt = await session.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.user_id != user_id:
        return Result(Refusal.NOT_YOURS)
    row = await session.scalar(
        select(QuizAnswer).where(
            QuizAnswer.attempt_id == attempt_id, QuizAnswer.question_id == question_id
        )
    )
    if row is None:
        return Result(Refusal.NOT_YOURS)
    return await _answer(session, attempt, row, option, now)


async def _answer(
    session: AsyncSession, attempt: QuizAttempt, row: QuizAnswer, option: int, now: datetime
) -> Result:
    question = await session.get(QuizQuestion, row.question_id)
    if question is None or not 0 <= option < len(question.options):
        return Result(Refusal.NOT_YOURS)
    if attempt.finished_at is not None:
        return Result(Refusal.FINISHED)
    if row.chosen is not None:
        return Result(Refusal.ANSWERED)
    delivery = await session.get(Delivery, attempt.delivery_id)
    enrollment = await session.get(Enrollment, delivery.enrollment_id) if delivery else None
    if delivery is None or enrollment is None:
        return Result(Refusal.NOT_YOURS)
    if not await drip.entitled(session, enrollment, now):
        return Result(Refusal.NO_ACCESS)
    row.chosen = option
    row.is_correct = option == question.correct
    row.answered_at = now
    if row.is_correct:
        attempt.correct += 1
    await session.flush()
    following = await _next(session, attempt)
    if following.ask is not None:
        return Result(
            ask=following.ask, was_correct=row.is_correct, explanation=question.explanation
        )
    score = await _finish(session, attempt, delivery, enrollment, now)
    return Result(score=score, was_correct=row.is_correct, explanation=question.explanation)


async def _finish(
    session: AsyncSession,
    attempt: QuizAttempt,
    delivery: Delivery,
    enrollment: Enrollment,
    now: datetime,
) -> Score:
    quiz = await session.get(Quiz, attempt.quiz_id)
    pass_percent = quiz.pass_percent if quiz else None
    total = max(attempt.total, 1)
    percent = attempt.correct * 100 // total
    # Compared in integers: 2 of 3 right is 66.7%, which passes a 66% mark and fails 67%.
    passed = pass_percent is None or attempt.correct * 100 >= pass_percent * total
    attempt.finished_at = now
    attempt.passed = passed
    await session.flush()
    step = None
    certificate_id = None
    if passed and delivery.done_at is None:
        step, certificate_id = await drip.complete(session, delivery, enrollment, now)
    retry_at = None if passed or quiz is None else retry_time(attempt, quiz)
    return Score(
        attempt.correct, attempt.total, percent, pass_percent, passed, retry_at, step,
        delivery.id, certificate_id,
    )  # fmt: skip


# --- the creator's figures ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuestionStats:
    position: int
    question: str
    answers: int
    correct: int


@dataclass(frozen=True, slots=True)
class QuizStats:
    lesson_id: int
    title: str
    pass_percent: int | None
    finished: int  # finished attempts
    passed: int
    learners: int  # learners who finished at least one attempt
    learners_passed: int
    questions: list[QuestionStats]


async def course_stats(
    session: AsyncSession, creator: Creator, course_id: int
) -> list[QuizStats] | None:
    """Per quiz of the course: attempts and passes, and per question how many answered and
    how many were right (every answer of every attempt counts)."""
    course = await authoring.own_course(session, creator, course_id)
    if course is None:
        return None
    quizzes = (
        await session.execute(
            select(Quiz, Lesson)
            .join(Lesson, Lesson.id == Quiz.lesson_id)
            .where(Lesson.course_id == course.id)
            .order_by(Lesson.position, Lesson.id)
        )
    ).all()
    out = []
    for quiz, lesson in quizzes:
        finished = QuizAttempt.finished_at.is_not(None)
        a = (
            await session.execute(
                select(
                    func.count(QuizAttempt.id).filter(finished),
                    func.count(QuizAttempt.id).filter(QuizAttempt.passed.is_(True)),
                    func.count(func.distinct(QuizAttempt.user_id)).filter(finished),
                    func.count(func.distinct(QuizAttempt.user_id)).filter(
                        QuizAttempt.passed.is_(True)
                    ),
                ).where(QuizAttempt.quiz_id == quiz.id)
            )
        ).one()
        per_q = (
            await session.execute(
                select(
                    QuizQuestion.position,
                    QuizQuestion.question,
                    func.count(QuizAnswer.id).filter(QuizAnswer.chosen.is_not(None)),
                    func.count(QuizAnswer.id).filter(QuizAnswer.is_correct.is_(True)),
                )
                .outerjoin(QuizAnswer, QuizAnswer.question_id == QuizQuestion.id)
                .where(QuizQuestion.quiz_id == quiz.id)
                .group_by(QuizQuestion.id, QuizQuestion.position, QuizQuestion.question)
                .order_by(QuizQuestion.position)
            )
        ).all()
        out.append(
            QuizStats(
                lesson_id=lesson.id,
                title=lesson.title,
                pass_percent=quiz.pass_percent,
                finished=int(a[0] or 0),
                passed=int(a[1] or 0),
                learners=int(a[2] or 0),
                learners_passed=int(a[3] or 0),
                questions=[QuestionStats(int(p), str(q), int(n), int(c)) for p, q, n, c in per_q],
            )
        )
    return out
