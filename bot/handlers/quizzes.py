"""Quizzes in chat: /addquiz (step by step, or forwarded Telegram quizzes), /quizpass,
/quizstats; the learner's Start / answer / Retry, poll answers; certificates (/certificate,
the `v_<serial>` check, and the scheduler job that sends the picture)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InputPollOption,
    Message,
    PollAnswer,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.analytics.certificate_image import CertificateFacts, CertificateTexts, render_async
from bot.config import Settings
from bot.handlers.authoring import creator_or_say, not_found, own_course_arg
from bot.handlers.common import Command, has_text, is_private
from bot.handlers.growth import bot_link
from bot.i18n import pick_locale
from bot.keyboards.quizzes import (
    LETTER_MODE,
    QuizAnswerCB,
    QuizDraftCB,
    QuizStartCB,
    answer_keyboard,
    finish_keyboard,
    retry_keyboard,
)
from bot.models import Certificate, Job, QuizMode, User
from bot.scheduler.clock import Clock
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.worker import Scheduler
from bot.services import authoring, certificates, drip, quizzes
from bot.services.quizzes import Ask, DraftError, QuestionDraft, Refusal, Result, Score
from bot.telegram.sender import map_error

log = logging.getLogger(__name__)

router = Router(name=__name__)

MAX_RETRY_HOURS = quizzes.MAX_RETRY_HOURS


class QuizInput(StatesGroup):
    title = State()
    question = State()
    options = State()
    answer = State()


def _first_id(command: CommandObject) -> int | None:
    parts = (command.args or "").split()
    return parsing.record_id(parts[0]) if parts else None


# --- authoring: /addquiz ------------------------------------------------------------------


def draft_error_text(error: DraftError) -> str:
    return {
        DraftError.QUESTION_EMPTY: _("The question is empty. Send the question's text."),
        DraftError.QUESTION_LONG: _("A question has at most {n} characters.").format(
            n=quizzes.QUESTION_LIMIT
        ),
        DraftError.OPTIONS_COUNT: _("Send {low} to {high} options, one per line.").format(
            low=quizzes.MIN_OPTIONS, high=quizzes.MAX_OPTIONS
        ),
        DraftError.OPTION_LONG: _("An option has at most {n} characters.").format(
            n=quizzes.OPTION_LIMIT
        ),
        DraftError.CORRECT: _(
            "Send the number of the right option (e.g. 2), optionally followed by an explanation."
        ),
        DraftError.EXPLANATION_LONG: _("An explanation has at most {n} characters.").format(
            n=quizzes.EXPLANATION_LIMIT
        ),
        DraftError.NOT_QUIZ: _(
            "That poll is not a quiz with one right answer. Forward a quiz, or type the question."
        ),
    }[error]


def _question_prompt(count: int) -> str:
    return _(
        "Question {n}: send its text, or forward a Telegram quiz. /cancel stops without saving."
    ).format(n=count + 1)


@router.message(Command("addquiz"), is_private)
async def cmd_add_quiz(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
) -> None:
    course = await own_course_arg(
        message, command, session, user, settings, _("Usage: /addquiz <i>course id</i>")
    )
    if course is None:
        return
    await state.set_state(QuizInput.title)
    await state.set_data({"course_id": course.id, "questions": []})
    await message.answer(
        _("A new quiz for «{title}». Send its title. /cancel to stop.").format(
            title=escape(course.title)
        )
    )


async def is_command(message: Message) -> bool:
    return bool(message.text and message.text.startswith("/"))


@router.message(StateFilter(QuizInput), is_command)
async def on_command_while_writing(message: Message) -> None:
    # /cancel is answered before this router (bot.handlers.authoring); any other command
    # would be taken for a question or a title.
    await message.answer(_("You are writing a quiz: go on, press Finish, or /cancel to drop it."))


@router.message(StateFilter(QuizInput.title), has_text)
async def on_quiz_title(message: Message, state: FSMContext) -> None:
    title = (message.text or "").strip()
    if not title or len(title) > 200:
        await message.answer(_("Send a title of 1 to 200 characters, or /cancel."))
        return
    await state.update_data(title=title)
    await state.set_state(QuizInput.question)
    await message.answer(_question_prompt(0))


async def has_poll(message: Message) -> bool:
    # A coroutine, not F.poll: a plain filter would run in a thread (see test_learner_flows).
    return message.poll is not None


@router.message(StateFilter(QuizInput.question), has_poll)
async def on_forwarded_quiz(message: Message, state: FSMContext) -> None:
    poll = message.poll
    assert poll is not None
    correct = list(poll.correct_option_ids or [])
    if not correct and poll.correct_option_id is not None:
        correct = [poll.correct_option_id]
    draft = quizzes.draft_from_poll(
        poll.question, [o.text for o in poll.options], poll.type, correct, poll.explanation
    )
    if isinstance(draft, DraftError):
        await message.answer(draft_error_text(draft))
        return
    await _add_question(message, state, draft)


@router.message(StateFilter(QuizInput.question), has_text)
async def on_question(message: Message, state: FSMContext) -> None:
    text = (message.text or "").strip()
    problem = quizzes.check_question(text)
    if problem is not None:
        await message.answer(draft_error_text(problem))
        return
    await state.update_data(current={"question": text})
    await state.set_state(QuizInput.options)
    await message.answer(
        _("Now the options, one per line ({low} to {high}).").format(
            low=quizzes.MIN_OPTIONS, high=quizzes.MAX_OPTIONS
        )
    )


@router.message(StateFilter(QuizInput.options), has_text)
async def on_options(message: Message, state: FSMContext) -> None:
    options = quizzes.parse_options(message.text or "")
    if isinstance(options, DraftError):
        await message.answer(draft_error_text(options))
        return
    data = await state.get_data()
    await state.update_data(current={**data.get("current", {}), "options": list(options)})
    await state.set_state(QuizInput.answer)
    listing = "\n".join(f"{i}. {escape(o)}" for i, o in enumerate(options, start=1))
    await message.answer(
        _("Which one is right? Send its number; an explanation may follow (e.g. «2 Because…»).")
        + "\n\n"
        + listing
    )


@router.message(StateFilter(QuizInput.answer), has_text)
async def on_answer(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    current = data.get("current") or {}
    options = tuple(current.get("options") or ())
    parsed = quizzes.parse_answer(message.text or "", options)
    if not options or "question" not in current:
        await state.clear()
        await message.answer(_("Cancelled."))
        return
    if isinstance(parsed, DraftError):
        await message.answer(draft_error_text(parsed))
        return
    correct, explanation = parsed
    await _add_question(
        message, state, QuestionDraft(current["question"], options, correct, explanation)
    )


async def _add_question(message: Message, state: FSMContext, draft: QuestionDraft) -> None:
    data = await state.get_data()
    if "course_id" not in data:
        await state.clear()
        await message.answer(_("Cancelled."))
        return
    questions = [*data.get("questions", []), _dump(draft)]
    await state.update_data(questions=questions, current={})
    await state.set_state(QuizInput.question)
    if len(questions) >= quizzes.MAX_QUESTIONS:
        await message.answer(
            _("That is the most a quiz can have. Press Finish."), reply_markup=finish_keyboard()
        )
        return
    await message.answer(
        _("Saved question {n}.").format(n=len(questions)) + " " + _question_prompt(len(questions)),
        reply_markup=finish_keyboard(),
    )


def _dump(draft: QuestionDraft) -> dict[str, Any]:
    # FSM data may live in Redis: plain JSON only.
    return {
        "question": draft.question,
        "options": list(draft.options),
        "correct": draft.correct,
        "explanation": draft.explanation,
    }


def _load(raw: dict[str, Any]) -> QuestionDraft:
    return QuestionDraft(
        str(raw["question"]), tuple(raw["options"]), int(raw["correct"]), raw.get("explanation")
    )


@router.message(StateFilter(QuizInput))
async def on_quiz_other(message: Message) -> None:
    await message.answer(_("Please send text (or forward a quiz), or /cancel."))


@router.callback_query(QuizDraftCB.filter(F.action == "finish"))
async def on_finish_quiz(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    settings: Settings,
    state: FSMContext,
    clock: Clock,
) -> None:
    data = await state.get_data()
    raw = data.get("questions") or []
    creator = await authoring.creator_for(session, user, settings.admin_ids)
    if creator is None or "course_id" not in data or not raw:
        await callback.answer(
            _("There is no quiz being written. /addquiz starts one."), show_alert=True
        )
        return
    lesson = await quizzes.create_quiz(
        session, creator, int(data["course_id"]), str(data.get("title") or _("Quiz")),
        [_load(q) for q in raw], clock.now(),
    )  # fmt: skip
    await state.clear()
    await callback.answer()
    if lesson is None:
        await _reply(callback, not_found())
        return
    await _reply(
        callback,
        _(
            "Quiz #{id} added as lesson {position} with {n} questions. /quizpass {id} 70 "
            "makes it gate the next lesson; /quizstats {course} shows how learners do."
        ).format(id=lesson.id, position=lesson.position, n=len(raw), course=data["course_id"]),
    )


async def _reply(callback: CallbackQuery, text: str, **kwargs: Any) -> None:
    if isinstance(callback.message, Message):
        await callback.message.answer(text, **kwargs)


# --- authoring: /quizpass, /quizstats -----------------------------------------------------


@router.message(Command("quizpass"), is_private)
async def cmd_quiz_pass(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    usage = _("Usage: /quizpass <i>lesson id</i> <i>percent</i>|off [retry=<i>hours</i>]")
    parts = (command.args or "").split()
    lesson_id = parsing.record_id(parts[0]) if parts else None
    if lesson_id is None or len(parts) < 2:
        await message.answer(usage)
        return
    percent = None if parts[1].lower() == "off" else parsing.whole(parts[1].rstrip("%"), 1, 100)
    retry: int | None = 0
    for extra in parts[2:]:
        key, _sep, value = extra.partition("=")
        retry = parsing.whole(value, 0, MAX_RETRY_HOURS) if key.lower() == "retry" else None
    if (percent is None and parts[1].lower() != "off") or retry is None:
        await message.answer(usage)
        return
    quiz = await quizzes.set_pass_mark(session, creator, lesson_id, percent, retry, clock.now())
    if quiz is None:
        await message.answer(
            _("No such quiz among your lessons. /lessons <i>course id</i> lists them.")
        )
    elif percent is None:
        await message.answer(_("Quiz #{id} no longer gates the next lesson.").format(id=lesson_id))
    else:
        await message.answer(
            _(
                "Quiz #{id}: {percent}% right passes; the next lesson waits for a pass. A retry "
                "opens {hours} h after a failed attempt."
            ).format(id=lesson_id, percent=percent, hours=retry)
        )


@router.message(Command("quizstats"), is_private)
async def cmd_quiz_stats(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
) -> None:
    creator = await creator_or_say(message, session, user, settings)
    if creator is None:
        return
    course_id = _first_id(command)
    stats = await quizzes.course_stats(session, creator, course_id) if course_id else None
    if stats is None:
        await message.answer(not_found() if course_id else _("Usage: /quizstats <i>course id</i>"))
        return
    if not stats:
        await message.answer(
            _("This course has no quizzes. /addquiz {id} adds one.").format(id=course_id)
        )
        return
    await message.answer("\n\n".join(stats_block(s) for s in stats)[:4000])


def _rate(part: int, whole: int) -> str:
    return f"{part * 100 // whole}%" if whole else "—"


def stats_block(s: quizzes.QuizStats) -> str:
    mark = (
        _("pass mark {percent}%").format(percent=s.pass_percent)
        if s.pass_percent is not None
        else _("no pass mark")
    )
    lines = [
        f"<b>#{s.lesson_id} {escape(s.title)}</b> · {mark}",
        _(
            "Attempts finished: {finished}, passed: {passed} ({rate}). Learners: {learners}, "
            "passed: {learners_passed}."
        ).format(
            finished=s.finished,
            passed=s.passed,
            rate=_rate(s.passed, s.finished),
            learners=s.learners,
            learners_passed=s.learners_passed,
        ),
    ]
    for q in s.questions:
        lines.append(
            _("{n}. {question} — {rate} right ({correct} of {answers})").format(
                n=q.position,
                question=escape(q.question[:80]),
                rate=_rate(q.correct, q.answers),
                correct=q.correct,
                answers=q.answers,
            )
        )
    return "\n".join(lines)


# --- the learner: start, answer, retry ----------------------------------------------------


def refusal_text(result: Result) -> str:
    refusal = result.refusal
    if refusal == Refusal.NO_ACCESS:
        return _("You don't have access to this course any more, so the quiz is closed.")
    if refusal == Refusal.PASSED:
        return _("You already passed this quiz.")
    if refusal == Refusal.WAIT and result.retry_at is not None:
        return _("You can retry at {time} (UTC).").format(
            time=result.retry_at.strftime("%Y-%m-%d %H:%M")
        )
    if refusal == Refusal.ANSWERED:
        return _("You already answered this question.")
    if refusal == Refusal.FINISHED:
        return _("This attempt is over.")
    return _("This quiz is not available to you.")


@router.callback_query(QuizStartCB.filter())
async def on_start(
    callback: CallbackQuery,
    callback_data: QuizStartCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    bot: Bot,
) -> None:
    mode = LETTER_MODE.get(callback_data.m, "")
    result = await quizzes.start(session, user.id, callback_data.d, mode, clock.now())
    if result.ask is None:
        await callback.answer(refusal_text(result), show_alert=True)
        return
    await callback.answer()
    await put(bot, session, user.id, result.ask)


@router.callback_query(QuizAnswerCB.filter())
async def on_button_answer(
    callback: CallbackQuery,
    callback_data: QuizAnswerCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    bot: Bot,
    scheduler: Scheduler,
    after_commit: list[Callable[[], object]],
) -> None:
    result = await quizzes.answer_button(
        session, user.id, callback_data.a, callback_data.q, callback_data.o, clock.now()
    )
    if result.refusal is not None:
        await callback.answer(refusal_text(result), show_alert=True)
        return
    # A wrong answer's explanation is worth an alert the learner closes; a right one is not.
    wrong_with_reason = result.was_correct is False and bool(result.explanation)
    await callback.answer(feedback(result), show_alert=wrong_with_reason)
    await after_answer(bot, session, user.id, result, scheduler, after_commit)


@router.poll_answer()
async def on_poll_answer(
    poll_answer: PollAnswer,
    session: AsyncSession,
    user: User,
    clock: Clock,
    bot: Bot,
    scheduler: Scheduler,
    after_commit: list[Callable[[], object]],
) -> None:
    result = await quizzes.answer_poll(
        session, user.id, poll_answer.poll_id, list(poll_answer.option_ids), clock.now()
    )
    if result is None:
        return  # not one of our quiz polls for this user; a poll answer has no chat to reply in
    if result.refusal is not None:
        if result.refusal == Refusal.NO_ACCESS:
            await _tell(bot, user.id, refusal_text(result))
        return
    await after_answer(bot, session, user.id, result, scheduler, after_commit)


def feedback(result: Result) -> str:
    if result.was_correct:
        return _("✅ Right!")
    text = _("❌ Not quite.")
    return f"{text} {result.explanation}" if result.explanation else text


async def after_answer(
    bot: Bot,
    session: AsyncSession,
    chat_id: int,
    result: Result,
    scheduler: Scheduler,
    after_commit: list[Callable[[], object]],
) -> None:
    if result.ask is not None:
        await put(bot, session, chat_id, result.ask)
    elif result.score is not None:
        if result.score.certificate_id is not None:
            # The certificate job was booked with the pass: wake the scheduler once it is in.
            after_commit.append(scheduler.wake)
        score = result.score
        retry = None if score.passed else retry_keyboard(score.delivery_id)
        await _tell(bot, chat_id, score_text(score), reply_markup=retry)


def score_text(score: Score) -> str:
    text = _("Your score: {correct} of {total} ({percent}%).").format(
        correct=score.correct, total=score.total, percent=score.percent
    )
    if score.pass_percent is None:
        parts = [text, _("Quiz finished.")]
    elif score.passed:
        parts = [text, _("🎉 Passed!")]
    else:
        parts = [text, _("Not passed: {percent}% is needed.").format(percent=score.pass_percent)]
        if score.retry_at is not None:
            parts.append(
                _("You can retry from {time} (UTC).").format(
                    time=score.retry_at.strftime("%Y-%m-%d %H:%M")
                )
            )
    if score.certificate_id is not None:
        parts.append(_("🎓 You finished the course! Your certificate is on its way."))
    elif score.step is not None and score.step.next_due is not None:
        parts.append(
            _("Next lesson: {date}.").format(
                date=drip.local_time(score.step.next_due, score.step.tz)
            )
        )
    return " ".join(parts)


async def _tell(bot: Bot, chat_id: int, text: str, **kwargs: Any) -> None:
    try:
        await bot.send_message(chat_id, text, **kwargs)
    except TelegramAPIError as exc:
        log.info("could not message %s: %s", chat_id, exc)


async def put(bot: Bot, session: AsyncSession, chat_id: int, ask: Ask) -> None:
    """Send the question (a quiz poll or a message with buttons) and remember it."""
    q = ask.question
    if ask.mode == QuizMode.POLL:
        sent = await bot.send_poll(
            chat_id,
            question=q.question,
            options=[InputPollOption(text=o) for o in q.options],
            type="quiz",
            correct_option_ids=[q.correct],
            is_anonymous=False,
            explanation=q.explanation,
        )
        poll_id = sent.poll.id if sent.poll is not None else None
        await quizzes.asked(session, ask.attempt_id, q.id, poll_id)
        return
    heading = _("Question {n} of {total}").format(n=ask.number, total=ask.total)
    await bot.send_message(
        chat_id,
        f"<b>{heading}</b>\n\n{escape(q.question)}",
        reply_markup=answer_keyboard(ask.attempt_id, q),
    )
    await quizzes.asked(session, ask.attempt_id, q.id, None)


# --- certificates -------------------------------------------------------------------------


def certificate_texts(locale: str, i18n: I18n) -> CertificateTexts:
    return CertificateTexts(
        heading=i18n.gettext("Certificate of completion", locale=locale),
        awarded=i18n.gettext("awarded to", locale=locale),
        for_course=i18n.gettext("for completing the course", locale=locale),
        by_creator=i18n.gettext("by {creator}", locale=locale),
        issued=i18n.gettext("Issued {date} · Serial {serial}", locale=locale),
        verify=i18n.gettext("Verify: {link}", locale=locale),
    )


def certificate_caption(cert: Certificate, locale: str, i18n: I18n) -> str:
    return i18n.gettext(
        "🎓 Your certificate for «{course}». Serial {serial}: anyone can check it with the "
        "link on it.",
        locale=locale,
    ).format(course=escape(cert.course_title), serial=cert.serial)


async def certificate_photo(
    bot: Bot, cert: Certificate, locale: str, i18n: I18n
) -> str | BufferedInputFile:
    """The stored file_id; the first time, the picture itself."""
    if cert.file_id:
        return cert.file_id
    facts = CertificateFacts(
        learner=cert.learner_name,
        course=cert.course_title,
        creator=cert.creator_name,
        date=cert.issued_at.strftime("%Y-%m-%d"),
        serial=cert.serial,
        link=await bot_link(bot, f"v_{cert.serial}"),
    )
    png = await render_async(facts, certificate_texts(locale, i18n))
    return BufferedInputFile(png, filename=f"certificate-{cert.serial}.png")


async def send_certificate(
    bot: Bot, session: AsyncSession, cert: Certificate, user: User, i18n: I18n
) -> None:
    """Send it; the first send keeps Telegram's file_id, so it is drawn only once."""
    locale = pick_locale(user.language, user.language_code, i18n.default_locale)
    photo = await certificate_photo(bot, cert, locale, i18n)
    sent = await bot.send_photo(user.id, photo, caption=certificate_caption(cert, locale, i18n))
    if sent.photo:
        await certificates.remember_file_id(session, cert, sent.photo[-1].file_id)


def install(registry: JobRegistry, bot: Bot, i18n: I18n) -> None:
    """Called by app.create_scheduler: the job that sends a newly issued certificate."""

    async def run(ctx: JobContext, job: Job) -> datetime | None:
        cert = await ctx.session.get(Certificate, int(job.payload.get("certificate") or 0))
        if cert is None or cert.revoked_at is not None:
            return None
        user = await ctx.session.get(User, cert.user_id)
        if user is None:
            return None
        now = ctx.clock.now()
        prefs = drip.Prefs.of(user)
        if drip.in_quiet_hours(now, prefs):
            return drip.out_of_quiet_hours(now, prefs)  # the learner's night: send after it

        async def send() -> None:
            try:
                await send_certificate(bot, ctx.session, cert, user, i18n)
            except Exception as exc:
                raise map_error(exc) from exc

        try:
            await ctx.sender.call(send, user.id)
        except (Unreachable, ChatNotFound, Rejected) as exc:
            # Kept all the same: /certificate sends it when they are back.
            log.warning("certificate %s to %s not sent: %s", cert.id, user.id, exc)
        return None

    registry.register(certificates.JOB_KIND, run)


@router.message(Command("certificate"), is_private)
async def cmd_certificate(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    bot: Bot,
    i18n: I18n,
) -> None:
    owned = await certificates.mine(session, user.id)
    if not owned:
        await message.answer(
            _("No certificates yet: finish every lesson of a course (and pass its quizzes).")
        )
        return
    course_id = _first_id(command)
    if command.args and course_id is None:
        await message.answer(_("Usage: /certificate [<i>course number</i>]"))
        return
    chosen = [c for c in owned if course_id is None or c.course_id == course_id]
    if not chosen:
        await message.answer(
            _("You have no certificate for that course. /certificate lists yours.")
        )
        return
    if course_id is None and len(chosen) > 1:
        lines = [_("Your certificates:")] + [
            f"#{c.course_id} {escape(c.course_title)} · {c.serial}"
            + (" · " + _("revoked") if c.revoked_at else "")
            for c in chosen
        ]
        await message.answer(
            "\n".join(lines) + "\n\n" + _("Send /certificate <i>course number</i> to get one.")
        )
        return
    cert = chosen[0]
    if cert.revoked_at is not None:
        await message.answer(_("This certificate was revoked (the course was refunded)."))
        return
    await send_certificate(bot, session, cert, user, i18n)


async def verify_text(session: AsyncSession, serial: str) -> str:
    """What `start=v_<serial>` answers anyone."""
    cert = await certificates.by_serial(session, serial)
    if cert is None:
        return _("No certificate has this serial. Check that the link was copied whole.")
    facts = {
        "serial": cert.serial,
        "name": escape(cert.learner_name),
        "course": escape(cert.course_title),
        "creator": escape(cert.creator_name),
        "date": cert.issued_at.strftime("%Y-%m-%d"),
    }
    if cert.revoked_at is not None:
        return _(
            "❌ Certificate {serial} was revoked on {revoked}: {name}, «{course}» by {creator}."
        ).format(revoked=cert.revoked_at.strftime("%Y-%m-%d"), **facts)
    return _(
        "✅ Certificate {serial} is valid: {name} completed «{course}» by {creator} on {date}."
    ).format(**facts)
