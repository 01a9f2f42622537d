"""Quizzes and certificates through the real Dispatcher and the app's own scheduler:
/addquiz step by step (and a forwarded Telegram quiz), quiz polls answered by poll_answer,
the pass mark gating the next lesson, Retry after the pause, buttons for clients without
polls, bad input, pass rates checked against a plain count of the raw rows, and the
certificate: issued with the completion, sent after the commit, re-sent by file_id,
verified by v_<serial>, revoked when the course is taken back."""

from __future__ import annotations

import io
import itertools
from datetime import timedelta

import pytest
from aiogram.exceptions import TelegramForbiddenError
from aiogram.methods import AnswerCallbackQuery, SendMessage, SendPhoto, SendPoll
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardMarkup,
    Poll,
    PollAnswer,
    PollOption,
    Update,
)
from aiogram.types import User as TgUser
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.models import (
    Certificate,
    ContentType,
    Creator,
    Delivery,
    DeliveryStatus,
    Job,
    Lesson,
    ProductKind,
    Quiz,
    QuizAnswer,
    QuizAttempt,
    QuizQuestion,
)
from bot.scheduler.clock import ManualClock
from bot.services import access, authoring, quizzes
from bot.services.authoring import LessonContent
from bot.services.quizzes import QuestionDraft
from tests.support.courses import OWNER, T0, enroll
from tests.support.updates import Harness, message_update, tg_user

ANN = tg_user(1001, "小明")
BO = tg_user(1002, "Bo")
_ids = itertools.count(90_000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


QUESTIONS = [
    QuestionDraft("2 + 2 = ?", ("3", "4", "5"), 1, "Count them"),
    QuestionDraft("Capital of France?", ("Paris", "Rome"), 0, None),
]


async def setup_course(
    h: Harness, db: AsyncSession, pass_percent: int | None = 100, retry_hours: int = 1
) -> tuple[int, int, int]:
    """Olga's course: a text lesson (day 0), a quiz (day 1), a text lesson (day 2)."""
    await h.send("/start", OWNER)
    creator = Creator(user_id=OWNER.id, display_name="王老师")
    db.add(creator)
    await db.flush()
    course_id = (await authoring.create_course(db, creator, course_draft())).id
    await authoring.add_lesson(db, creator, course_id, LessonContent("text", text="Body 1"), T0)
    quiz = await quizzes.create_quiz(db, creator, course_id, "Check", QUESTIONS, T0)
    assert quiz is not None
    await authoring.add_lesson(db, creator, course_id, LessonContent("text", text="Body 3"), T0)
    await quizzes.set_pass_mark(db, creator, quiz.id, pass_percent, retry_hours, T0)
    await db.commit()
    last = await db.scalar(select(Lesson.id).where(Lesson.position == 3))
    assert last is not None
    ids = (course_id, quiz.id, last)
    await db.close()
    return ids


def course_draft() -> authoring.CourseDraft:
    return authoring.CourseDraft(title="Python 入门", description="d", stars_price=10)


def poll_answer(poll_id: str, user: TgUser, option: int) -> Update:
    answer = PollAnswer(
        poll_id=poll_id, user=user, option_ids=[option], option_persistent_ids=[str(option)]
    )
    return Update(update_id=next(_ids), poll_answer=answer)


def polls_to(h: Harness, chat_id: int) -> list[SendPoll]:
    return [p for p in h.session.of_type(SendPoll) if p.chat_id == chat_id]


def last_poll_id(h: Harness) -> str:
    assert h.session.poll_ids, "no poll was sent"
    return h.session.poll_ids[-1]


def buttons(markup: object) -> list[tuple[str, str]]:
    assert isinstance(markup, InlineKeyboardMarkup)
    return [(b.text, b.callback_data or "") for row in markup.inline_keyboard for b in row]


def texts_to(h: Harness, chat_id: int) -> list[str]:
    return [r.text for r in h.session.of_type(SendMessage) if r.chat_id == chat_id]


def alerts(h: Harness) -> list[str]:
    return [a.text or "" for a in h.session.of_type(AnswerCallbackQuery)]


async def delivery_of(db: AsyncSession, lesson_id: int, user_id: int) -> Delivery | None:
    row = await db.scalar(
        select(Delivery).where(Delivery.lesson_id == lesson_id, Delivery.user_id == user_id)
    )
    await db.close()
    return row


async def start_quiz(h: Harness, db: AsyncSession, quiz_lesson: int, mode: str = "p") -> int:
    delivery = await delivery_of(db, quiz_lesson, ANN.id)
    assert delivery is not None and delivery.status == DeliveryStatus.SENT
    await h.press(f"qs:{delivery.id}:{mode}", ANN)
    return delivery.id


async def answer_polls(h: Harness, options: list[int]) -> None:
    for option in options:
        await h.feed(poll_answer(last_poll_id(h), ANN, option))


# --- authoring --------------------------------------------------------------------------


async def test_addquiz_step_by_step_with_a_forwarded_quiz(
    app: App, h: Harness, db: AsyncSession
) -> None:
    course_id, _quiz, _last = await setup_course(h, db)
    await h.send(f"/addquiz {course_id}", OWNER)
    assert "Send its title" in h.last_text()
    await h.send("Week 1 check", OWNER)
    await h.send("Which is a prime?", OWNER)
    await h.send("4", OWNER)  # one option is not enough
    assert "2 to 10 options" in h.last_text()
    await h.send("4\n7\n9", OWNER)
    await h.send("5", OWNER)  # no option 5
    assert "number of the right option" in h.last_text()
    await h.send("2 Seven has no divisors but 1 and 7", OWNER)
    assert "Saved question 1" in h.last_text()
    regular = Poll(
        id="p1", question="Tea?", options=[option("Yes"), option("No")], total_voter_count=0,
        is_closed=False, is_anonymous=True, type="regular", allows_multiple_answers=False,
        allows_revoting=True, members_only=False,
    )  # fmt: skip
    await h.feed(message_update(None, OWNER, poll=regular))
    assert "not a quiz" in h.last_text()
    forwarded = regular.model_copy(
        update={"type": "quiz", "question": "Capital of Italy?", "correct_option_ids": [1],
                "options": [option("Paris"), option("Rome")], "explanation": "Roma"}
    )  # fmt: skip
    await h.feed(message_update(None, OWNER, poll=forwarded))
    assert "Saved question 2" in h.last_text()
    await h.press("qd:finish", OWNER)
    assert "added as lesson 4 with 2 questions" in h.last_text()

    lesson = await db.scalar(select(Lesson).where(Lesson.position == 4))
    assert lesson is not None and lesson.content_type == ContentType.QUIZ
    rows = (
        await db.scalars(
            select(QuizQuestion)
            .join(Quiz, Quiz.id == QuizQuestion.quiz_id)
            .where(Quiz.lesson_id == lesson.id)
            .order_by(QuizQuestion.position)
        )
    ).all()
    assert [(q.question, q.options, q.correct, q.explanation) for q in rows] == [
        ("Which is a prime?", ["4", "7", "9"], 1, "Seven has no divisors but 1 and 7"),
        ("Capital of Italy?", ["Paris", "Rome"], 1, "Roma"),
    ]
    lesson_id = lesson.id
    await db.close()

    await h.send(f"/quizpass {lesson_id} 70 retry=2", OWNER)
    assert "70% right passes" in h.last_text()
    quiz = await db.scalar(select(Quiz).where(Quiz.lesson_id == lesson_id))
    assert quiz is not None and (quiz.pass_percent, quiz.retry_hours) == (70, 2)
    await db.close()
    for bad in ("", f"{lesson_id}", f"{lesson_id} 170", f"{lesson_id} 70 retry=-1", "x 50"):
        await h.send(f"/quizpass {bad}", OWNER)
        assert "Usage" in h.last_text()
    await h.send(f"/quizpass {_last} 50", OWNER)  # a text lesson is no quiz
    assert "No such quiz" in h.last_text()
    await h.send(f"/quizpass {lesson_id} 50", ANN)
    assert "Only creators" in h.last_text()
    quiz = await db.scalar(select(Quiz).where(Quiz.lesson_id == lesson_id))
    assert quiz is not None and (quiz.pass_percent, quiz.retry_hours) == (70, 2)


def option(text: str) -> PollOption:
    return PollOption(persistent_id=text, text=text, voter_count=0)


# --- learning -------------------------------------------------------------------------


async def test_a_quiz_gates_the_next_lesson_until_passed_then_a_certificate(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id, quiz_lesson, last = await setup_course(h, db, pass_percent=100, retry_hours=1)
    await enroll(h, db, ANN, course_id, T0)
    await app.scheduler.drain()
    first = await delivery_of(db, (await first_lesson(db, course_id)), ANN.id)
    assert first is not None
    await h.press(f"ls:done:{first.id}", ANN)
    clock.advance(days=1)
    await app.scheduler.drain()
    intro = [r for r in h.session.of_type(SendMessage) if "Lesson 2 of 3" in r.text]
    assert len(intro) == 1 and "quiz" in intro[0].text
    assert [label for label, _data in buttons(intro[0].reply_markup)] == [
        "▶️ Start the quiz",
        "🔘 With buttons",
    ]
    # Not passed yet: the lesson after it is not even planned.
    assert await delivery_of(db, last, ANN.id) is None
    # Done cannot be pressed on a quiz (a forged button): still not done.
    quiz_delivery = await delivery_of(db, quiz_lesson, ANN.id)
    assert quiz_delivery is not None
    await h.press(f"ls:done:{quiz_delivery.id}", ANN)
    assert (await delivery_of(db, quiz_lesson, ANN.id)).done_at is None  # type: ignore[union-attr]

    await start_quiz(h, db, quiz_lesson)
    poll = polls_to(h, ANN.id)[-1]
    assert (poll.type, poll.is_anonymous, poll.correct_option_ids) == ("quiz", False, [1])
    assert poll.question == "2 + 2 = ?" and poll.explanation == "Count them"
    await answer_polls(h, [0])  # wrong
    assert polls_to(h, ANN.id)[-1].question == "Capital of France?"
    first_poll = h.session.poll_ids[0]
    await answer_polls(h, [0])  # right: 1 of 2, the mark is 100%
    score = texts_to(h, ANN.id)[-1]
    assert "1 of 2 (50%)" in score and "Not passed: 100% is needed" in score
    retry = h.session.of_type(SendMessage)[-1].reply_markup
    assert ("🔁 Retry", f"qs:{quiz_delivery.id}:p") in buttons(retry)
    assert await delivery_of(db, last, ANN.id) is None

    # The same poll answered again: nothing changes, nothing is said.
    before = len(h.session.requests)
    await h.feed(poll_answer(first_poll, ANN, 1))
    assert len(h.session.requests) == before
    attempt = await db.scalar(select(QuizAttempt).order_by(QuizAttempt.id))
    assert attempt is not None and (attempt.correct, attempt.passed) == (1, False)
    await db.close()

    await h.press(f"qs:{quiz_delivery.id}:p", ANN)  # the retry opens an hour later
    assert "You can retry at 2026-03-03 11:00" in alerts(h)[-1]
    clock.advance(hours=1)
    await h.press(f"qs:{quiz_delivery.id}:p", ANN)
    await answer_polls(h, [1, 0])
    passed = texts_to(h, ANN.id)[-1]
    assert "2 of 2 (100%)" in passed and "Passed" in passed
    third = await delivery_of(db, last, ANN.id)
    # Day 2 at the enrollment's 10:00: after the pass (day 1, 11:00), as planned.
    assert third is not None and third.due_at == T0 + timedelta(days=2)

    clock.advance(days=1)
    await app.scheduler.drain()
    await h.press(f"ls:done:{third.id}", ANN)
    assert "finished the course" in alerts(h)[-1]
    cert = await db.scalar(select(Certificate))
    assert cert is not None and cert.file_id is None and cert.learner_name == "小明"
    assert (cert.course_title, cert.creator_name) == ("Python 入门", "王老师")
    serial = cert.serial
    await db.close()
    # Booked with the completion, sent by the scheduler after the commit.
    assert h.session.of_type(SendPhoto) == []
    await app.scheduler.drain()
    photos = h.session.of_type(SendPhoto)
    assert len(photos) == 1 and photos[0].chat_id == ANN.id
    assert isinstance(photos[0].photo, BufferedInputFile) and serial in (photos[0].caption or "")
    image = Image.open(io.BytesIO(photos[0].photo.data))
    assert image.format == "PNG" and image.width >= 1000
    cert = await db.scalar(select(Certificate))
    assert cert is not None and cert.file_id and cert.file_id.startswith("PHOTO-")
    file_id = cert.file_id
    await db.close()
    # Asked again: the same picture by its file_id, not drawn again.
    await h.send("/certificate", ANN)
    again = h.session.of_type(SendPhoto)[-1]
    assert again.photo == file_id

    await h.send(f"/start v_{serial}", BO)
    assert f"Certificate {serial} is valid: 小明 completed «Python 入门» by 王老师" in h.last_text()
    await h.send("/start v_NOTASERIAL", BO)
    assert "No certificate has this serial" in h.last_text()
    # The course is taken back (a refund's revoke): the certificate no longer verifies.
    await access.revoke(db, ANN.id, ProductKind.COURSE, course_id, clock.now())
    await db.commit()
    await db.close()
    await h.send(f"/start v_{serial}", BO)
    assert f"Certificate {serial} was revoked" in h.last_text()
    await h.send("/certificate", ANN)
    assert "revoked" in h.last_text()


async def first_lesson(db: AsyncSession, course_id: int) -> int:
    lesson_id = await db.scalar(
        select(Lesson.id).where(Lesson.course_id == course_id, Lesson.position == 1)
    )
    await db.close()
    assert lesson_id is not None
    return lesson_id


async def reach_quiz(
    h: Harness, app: App, db: AsyncSession, clock: ManualClock
) -> tuple[int, int, int]:
    ids = await setup_course(h, db, pass_percent=50, retry_hours=0)
    await enroll(h, db, ANN, ids[0], T0)
    await app.scheduler.drain()
    first = await delivery_of(db, await first_lesson(db, ids[0]), ANN.id)
    assert first is not None
    await h.press(f"ls:done:{first.id}", ANN)
    clock.advance(days=1)
    await app.scheduler.drain()
    return ids


async def test_buttons_for_clients_without_polls_and_forged_presses(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    _course, quiz_lesson, last = await reach_quiz(h, app, db, clock)
    delivery_id = await start_quiz(h, db, quiz_lesson, mode="b")
    question = h.session.of_type(SendMessage)[-1]
    assert "Question 1 of 2" in question.text and "2 + 2 = ?" in question.text
    choices = buttons(question.reply_markup)
    assert [label for label, _d in choices] == ["3", "4", "5"]
    attempt_id, question_id = (int(x) for x in choices[0][1].split(":")[1:3])

    # Someone else pressing Ann's buttons, forged data, a start that is not theirs.
    for data, who in ((choices[1][1], BO), (f"qa:{attempt_id}:{question_id}:7", ANN),
                      (f"qa:{attempt_id + 5}:{question_id}:1", ANN),
                      (f"qs:{delivery_id}:p", BO), (f"qs:{delivery_id}:z", ANN),
                      ("qa:x:y:z", ANN)):  # fmt: skip
        await h.press(data, who)
    assert await db.scalar(select(func.count(QuizAnswer.id)).where(
        QuizAnswer.chosen.is_not(None))) == 0  # fmt: skip
    await db.close()

    await h.press(choices[1][1], ANN)  # right
    assert alerts(h)[-1] == "✅ Right!"
    await h.press(choices[2][1], ANN)  # the same question again
    assert "already answered" in alerts(h)[-1]
    second = buttons(h.session.of_type(SendMessage)[-1].reply_markup)
    await h.press(second[1][1], ANN)  # wrong: Rome; 1 of 2 = 50% passes a 50% mark
    assert "1 of 2 (50%)" in texts_to(h, ANN.id)[-1] and "Passed" in texts_to(h, ANN.id)[-1]
    assert await delivery_of(db, last, ANN.id) is not None
    await h.press(f"qs:{delivery_id}:b", ANN)
    assert "already passed" in alerts(h)[-1]


async def test_access_follows_money_and_unknown_polls_are_ignored(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id, quiz_lesson, _last = await reach_quiz(h, app, db, clock)
    delivery_id = await start_quiz(h, db, quiz_lesson)
    poll_id = last_poll_id(h)
    before = len(h.session.requests)
    await h.feed(poll_answer("no-such-poll", ANN, 0))
    await h.feed(poll_answer(poll_id, BO, 1))  # Bo cannot answer Ann's poll
    assert len(h.session.requests) == before

    await access.revoke(db, ANN.id, ProductKind.COURSE, course_id, clock.now())
    await db.commit()
    await db.close()
    await h.feed(poll_answer(poll_id, ANN, 1))
    assert "don't have access" in texts_to(h, ANN.id)[-1]
    await h.press(f"qs:{delivery_id}:p", ANN)
    assert "don't have access" in alerts(h)[-1]
    assert await db.scalar(select(func.count(QuizAnswer.id)).where(
        QuizAnswer.chosen.is_not(None))) == 0  # fmt: skip


async def test_pass_rates_per_question_match_the_raw_answers(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id, quiz_lesson, _last = await reach_quiz(h, app, db, clock)
    await start_quiz(h, db, quiz_lesson)
    await answer_polls(h, [0, 0])  # 1 of 2: passes 50%
    await h.send(f"/quizstats {course_id}", OWNER)
    shown = h.last_text()

    # The same figures from the raw rows, in plain Python.
    answers = (
        await db.execute(select(QuizAnswer.question_id, QuizAnswer.chosen, QuizAnswer.is_correct))
    ).all()
    questions = (
        await db.execute(
            select(QuizQuestion.id, QuizQuestion.position).order_by(QuizQuestion.position)
        )
    ).all()
    attempts = (await db.execute(select(QuizAttempt.finished_at, QuizAttempt.passed))).all()
    await db.close()
    finished = [a for a in attempts if a.finished_at is not None]
    passed = [a for a in finished if a.passed]
    assert f"Attempts finished: {len(finished)}, passed: {len(passed)} " in shown
    for qid, position in questions:
        given = [a for a in answers if a.question_id == qid and a.chosen is not None]
        right = [a for a in given if a.is_correct]
        rate = f"{len(right) * 100 // len(given)}%" if given else "—"
        assert f"{position}. " in shown
        assert f"{rate} right ({len(right)} of {len(given)})" in shown
    await h.send(f"/quizstats {course_id}", ANN)
    assert "Only creators" in h.last_text()


async def test_a_certificate_send_that_fails_keeps_the_certificate(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    course_id, quiz_lesson, last = await reach_quiz(h, app, db, clock)
    await start_quiz(h, db, quiz_lesson)
    await answer_polls(h, [1, 0])
    clock.advance(days=1)
    await app.scheduler.drain()
    third = await delivery_of(db, last, ANN.id)
    assert third is not None
    await h.press(f"ls:done:{third.id}", ANN)
    await app.bot.me()  # known already: the next call Telegram answers is the photo
    h.session.add_result(
        TelegramForbiddenError(method=None, message="Forbidden: bot was blocked by the user")  # type: ignore[arg-type]
    )
    await app.scheduler.drain()
    cert = await db.scalar(select(Certificate))
    job = await db.scalar(select(Job).where(Job.kind == "certificate"))
    await db.close()
    # Completion and certificate are booked; the failed send changed neither.
    assert cert is not None and cert.revoked_at is None and cert.file_id is None
    assert job is not None and job.status == "done"
    await h.send(f"/certificate {course_id}", ANN)
    sent = h.session.of_type(SendPhoto)[-1]
    assert isinstance(sent.photo, BufferedInputFile)
    cert = await db.scalar(select(Certificate))
    assert cert is not None and cert.file_id


async def test_a_command_while_writing_a_quiz_is_not_taken_for_a_question(
    app: App, h: Harness, db: AsyncSession
) -> None:
    course_id, _quiz, _last = await setup_course(h, db)
    await h.send(f"/addquiz {course_id}", OWNER)
    await h.send("Title", OWNER)
    await h.send("/my", OWNER)
    assert "You are writing a quiz" in h.last_text()
    await h.press("qd:finish", OWNER)  # nothing written yet
    assert "no quiz being written" in alerts(h)[-1]
    await h.send("/cancel", OWNER)
    await h.press("qd:finish", OWNER)
    assert "no quiz being written" in alerts(h)[-1]
    assert await db.scalar(select(func.count(Quiz.id))) == 1


async def test_the_certificate_waits_out_the_learners_quiet_hours(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    _course, quiz_lesson, last = await reach_quiz(h, app, db, clock)
    await start_quiz(h, db, quiz_lesson)
    await answer_polls(h, [1, 0])
    clock.advance(days=1)
    await app.scheduler.drain()
    third = await delivery_of(db, last, ANN.id)
    assert third is not None
    await h.send("/quiet 09:00-12:00", ANN)  # it is 10:00 for Ann (UTC)
    await h.press(f"ls:done:{third.id}", ANN)
    await app.scheduler.drain()
    assert h.session.of_type(SendPhoto) == []
    job = await db.scalar(select(Job).where(Job.kind == "certificate"))
    assert job is not None and job.run_at == clock.now().replace(hour=12, minute=0)
    await db.close()
    clock.advance(hours=2)
    await app.scheduler.drain()
    assert [p.chat_id for p in h.session.of_type(SendPhoto)] == [ANN.id]


async def test_preview_shows_a_quiz_lesson(app: App, h: Harness, db: AsyncSession) -> None:
    course_id, _quiz, _last = await setup_course(h, db)
    await h.send(f"/preview {course_id} 1", OWNER)
    await h.click("📖 2", OWNER)
    assert "A quiz: answer the questions" in h.last_text()
