"""Q&A: /ask, the creator's Reply and Publish buttons, the FAQ, /askprice, /questions;
and the scheduler job that refunds a paid question left unanswered.

Thin: the rules are bot.services.qa (who may ask and answer) and bot.payments.questions
(the Stars and the refund). Whatever reaches the other side is queued as a notice in the
transaction that books it and sent after the commit (bot.scheduler.notices).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from html import escape

from aiogram import Bot, Router
from aiogram.filters import CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
)
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import parsing
from bot.config import Settings
from bot.handlers import commands
from bot.handlers.common import Command, clip, current_locale, is_private, show
from bot.handlers.payments import Notifier, commit_before_invoice, gateways
from bot.i18n import pick_locale
from bot.keyboards.menus import callback_button, home_button
from bot.models import Course, Creator, Job, Question, User
from bot.money import STARS, format_money
from bot.payments import questions as paid
from bot.payments.checkout import PaymentResult
from bot.payments.refunds import RefundStatus
from bot.scheduler import notices
from bot.scheduler.clock import Clock
from bot.scheduler.errors import Transient
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.scheduler.worker import Scheduler
from bot.services import qa
from bot.services.users import get_creator
from bot.text import shorten

log = logging.getLogger(__name__)

router = Router(name=__name__)
router.message.filter(is_private)

CONTENT_TYPES = ("text", "photo", "video", "document", "voice")


class QaCB(CallbackData, prefix="qa"):
    a: str  # a: ask (id: the course), r: reply, p: publish to the FAQ (id: the question)
    id: int


class FaqCB(CallbackData, prefix="faq"):
    c: int


class AskSteps(StatesGroup):
    question = State()
    answer = State()


# --- texts ---------------------------------------------------------------------------


def refusal_text(refusal: qa.Refusal) -> str:
    texts = {
        qa.Refusal.NO_COURSE: _("There is no such course. Check the number in /my."),
        qa.Refusal.NOT_BUYER: _("Only learners who have this course can ask its creator."),
        qa.Refusal.OWN_COURSE: _("This is your own course: you answer its questions."),
        qa.Refusal.NOT_YOURS: _("This question is for another creator."),
        qa.Refusal.NOT_FOUND: _("This question no longer exists."),
        qa.Refusal.NOT_OPEN: _("This question is not paid yet, so it cannot be answered."),
        qa.Refusal.ANSWERED: _("This question has been answered already."),
        qa.Refusal.REFUNDED: _(
            "This question was not answered within 72 hours and its Stars went back to "
            "the learner, so it can no longer be answered."
        ),
        qa.Refusal.NOT_ANSWERED: _("Answer the question first, then publish it."),
        qa.Refusal.BAD_PRICE: _("A question costs 0 (free) to {n} Stars.").format(n=qa.MAX_STARS),
    }
    return texts[refusal]


def _content(message: Message) -> qa.Asked | None:
    kind = next((k for k in CONTENT_TYPES if getattr(message, k, None)), None)
    if kind is None or (kind == "text" and (message.text or "").startswith("/")):
        return None
    text = message.text if kind == "text" else message.caption
    return qa.Asked(message.chat.id, message.message_id, kind, text or "")


def _preview(text: str, content_type: str, limit: int = 300) -> str:
    if text.strip():
        return escape(shorten(text.strip(), limit))
    return {
        "photo": _("[photo]"),
        "video": _("[video]"),
        "document": _("[document]"),
        "voice": _("[voice message]"),
    }.get(content_type, "…")


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours < 48:
        return ngettext("{n} hour", "{n} hours", hours).format(n=hours)
    days = hours // 24
    return ngettext("{n} day", "{n} days", days).format(n=days)


def _creator_buttons(question_id: int) -> tuple[tuple[Button, ...], ...]:
    return (
        (
            Button(_("✍️ Reply"), QaCB(a="r", id=question_id).pack()),
            Button(_("📌 Publish to FAQ"), QaCB(a="p", id=question_id).pack()),
        ),
    )


# --- the way to the creator and back ---------------------------------------------------


async def _locale_of(session: AsyncSession, user_id: int, settings: Settings) -> str:
    user = await session.get(User, user_id)
    return pick_locale(
        user.language if user else None,
        user.language_code if user else None,
        settings.default_language,
    )


async def queue_to_creator(
    session: AsyncSession,
    question: Question,
    i18n: I18n,
    settings: Settings,
    now: datetime,
) -> list[notices.Notice]:
    """The question for its creator, in the creator's language: a heading, then the
    learner's own message copied, under it Reply and Publish."""
    creator = await session.get(Creator, question.creator_id)
    course_title = await _course_title(session, question.course_id)
    if creator is None:
        return []
    locale = await _locale_of(session, creator.user_id, settings)
    with i18n.context(), i18n.use_locale(locale):
        head = _("❓ Question #{id} about «{title}»").format(
            id=question.id, title=escape(course_title)
        )
        if question.stars:
            head += "\n" + _("Paid {amount}; answer within 72 hours or it is refunded.").format(
                amount=format_money(question.stars, STARS, locale)
            )
        buttons = _creator_buttons(question.id)
    lease = settings.scheduler_lease
    return [
        await notices.queue(session, creator.user_id, Outgoing(text=head), now=now, lease=lease),
        await notices.queue(
            session,
            creator.user_id,
            Outgoing(copy_from=question.chat_id, copy_id=question.message_id, buttons=buttons),
            now=now,
            lease=lease,
        ),
    ]


async def _course_title(session: AsyncSession, course_id: int) -> str:
    course = await session.get(Course, course_id)
    return course.title if course else ""


def _send_after_commit(
    after_commit: list[Callable[[], object]], notifier: Notifier, queued: list[notices.Notice]
) -> None:
    async def send_all() -> None:
        for notice in queued:
            await notifier.send(notice)

    after_commit.append(send_all)


async def paid_receipt(
    session: AsyncSession,
    result: PaymentResult,
    i18n: I18n,
    settings: Settings,
    now: datetime,
) -> tuple[str, list[notices.Notice]]:
    """For bot.handlers.payments: the learner's receipt and the question for the creator,
    queued in the booking's transaction."""
    question = await session.get(Question, result.product_id or 0)
    queued = await queue_to_creator(session, question, i18n, settings, now) if question else []
    text = _(
        "✅ Paid {amount}. Your question about «{title}» is with the creator. If it is not "
        "answered within 72 hours, the Stars come back to you automatically."
    ).format(
        amount=format_money(result.amount, result.currency, current_locale()),
        title=escape(result.title),
    )
    return text, queued


# --- /ask ------------------------------------------------------------------------------


@router.message(Command("ask"))
async def cmd_ask(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    clock: Clock,
    state: FSMContext,
) -> None:
    course_id = parsing.record_id(command.args or "")
    if course_id is None:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("ask")))
        return
    course = await qa.can_ask(session, user.id, course_id, clock.now())
    if isinstance(course, qa.Refusal):
        await message.answer(refusal_text(course))
        return
    await message.answer(await _start_asking(session, state, course))


async def _start_asking(session: AsyncSession, state: FSMContext, course: Course) -> str:
    """The next message is the question; what to tell the learner (and its price)."""
    stars = await qa.question_price(session, course.id)
    await state.set_state(AskSteps.question)
    await state.update_data(course=course.id)
    text = _(
        "Send your question about «{title}» as one message: text, photo, video, document "
        "or voice. /cancel to stop."
    ).format(title=escape(course.title))
    if stars:
        text += "\n" + _(
            "A question costs {amount}, paid before it is sent; if the creator does not "
            "answer within 72 hours, it is refunded."
        ).format(amount=format_money(stars, STARS, current_locale()))
    return text


@router.message(StateFilter(AskSteps.question))
async def on_question(
    message: Message,
    session: AsyncSession,
    user: User,
    clock: Clock,
    state: FSMContext,
    settings: Settings,
    bot: Bot,
    i18n: I18n,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    asked = _content(message)
    if asked is None:
        await message.answer(
            _("Please send the question as text, photo, video, document or voice, or /cancel.")
        )
        return
    course_id = int((await state.get_data()).get("course") or 0)
    await state.clear()
    now = clock.now()
    course = await qa.can_ask(session, user.id, course_id, now)
    if isinstance(course, qa.Refusal):
        await message.answer(refusal_text(course))
        return
    question = await qa.ask(session, user.id, course, asked, now)
    if question.stars > 0:
        await _invoice(message, session, question, course.title, settings, bot, now)
        return
    queued = await queue_to_creator(session, question, i18n, settings, now)
    _send_after_commit(after_commit, Notifier(bot, sessionmaker, settings, scheduler), queued)
    await message.answer(
        _("📨 Sent to the creator of «{title}». The answer will come here.").format(
            title=escape(course.title)
        )
    )


async def _invoice(
    message: Message,
    session: AsyncSession,
    question: Question,
    title: str,
    settings: Settings,
    bot: Bot,
    now: datetime,
) -> None:
    order = await paid.open_order(session, question, settings, now)
    await commit_before_invoice(session)
    label = shorten(_("Question: {title}").format(title=title), 32)
    await bot.send_invoice(
        chat_id=message.chat.id,
        title=label,
        description=_("Answered by the creator within 72 hours, or the Stars come back."),
        payload=order.public_ref,
        currency=STARS,
        prices=[LabeledPrice(label=label, amount=order.amount_minor)],
        provider_token="",
    )


# --- the creator's side ----------------------------------------------------------------


@router.callback_query(QaCB.filter())
async def on_qa_button(
    callback: CallbackQuery,
    callback_data: QaCB,
    session: AsyncSession,
    user: User,
    state: FSMContext,
    clock: Clock,
) -> None:
    if callback_data.a == "a":  # the card's Ask button: id is the course
        course = await qa.can_ask(session, user.id, callback_data.id, clock.now())
        if isinstance(course, qa.Refusal):
            await callback.answer(refusal_text(course), show_alert=True)
            return
        text = await _start_asking(session, state, course)
        await callback.answer()
        await callback.bot.send_message(user.id, text)  # type: ignore[union-attr]
        return
    if callback_data.a == "p":
        published = await qa.publish(session, callback_data.id, user.id)
        if isinstance(published, qa.Refusal):
            await callback.answer(refusal_text(published), show_alert=True)
        else:
            await callback.answer(_("Published in the course's FAQ."), show_alert=True)
        return
    if callback_data.a != "r":
        await callback.answer(_("This button no longer works."), show_alert=True)
        return
    question = await qa.answerable(session, callback_data.id, user.id)
    if isinstance(question, qa.Refusal):
        await callback.answer(refusal_text(question), show_alert=True)
        return
    await state.set_state(AskSteps.answer)
    await state.update_data(question=question.id)
    await callback.answer()
    if callback.message is not None:
        await callback.bot.send_message(  # type: ignore[union-attr]
            user.id,
            _(
                "Send your answer to question #{id} as one message: text, photo, video, "
                "document or voice. /cancel to stop."
            ).format(id=question.id),
        )


@router.message(StateFilter(AskSteps.answer))
async def on_answer(
    message: Message,
    session: AsyncSession,
    user: User,
    clock: Clock,
    state: FSMContext,
    settings: Settings,
    bot: Bot,
    i18n: I18n,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    reply = _content(message)
    if reply is None:
        await message.answer(
            _("Please send the answer as text, photo, video, document or voice, or /cancel.")
        )
        return
    question_id = int((await state.get_data()).get("question") or 0)
    await state.clear()
    now = clock.now()
    question = await qa.answer(session, question_id, user.id, reply, now)
    if isinstance(question, qa.Refusal):
        await message.answer(refusal_text(question))
        return
    queued = await _queue_answer(session, question, i18n, settings, now)
    _send_after_commit(after_commit, Notifier(bot, sessionmaker, settings, scheduler), queued)
    await message.answer(
        _("✅ Sent to the learner. Publish it in the course's FAQ?"),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [callback_button(_("📌 Publish to FAQ"), QaCB(a="p", id=question.id).pack())]
            ]
        ),
    )


async def _queue_answer(
    session: AsyncSession, question: Question, i18n: I18n, settings: Settings, now: datetime
) -> list[notices.Notice]:
    """The answer for the learner: a heading in their language, then the creator's message."""
    locale = await _locale_of(session, question.user_id, settings)
    title = await _course_title(session, question.course_id)
    with i18n.context(), i18n.use_locale(locale):
        head = _("💬 The creator of «{title}» answered your question:").format(title=escape(title))
    lease = settings.scheduler_lease
    assert question.answer_chat_id is not None and question.answer_message_id is not None
    copy = Outgoing(copy_from=question.answer_chat_id, copy_id=question.answer_message_id)
    return [
        await notices.queue(session, question.user_id, Outgoing(text=head), now=now, lease=lease),
        await notices.queue(session, question.user_id, copy, now=now, lease=lease),
    ]


@router.message(Command("askprice"))
async def cmd_askprice(
    message: Message, command: CommandObject, session: AsyncSession, user: User
) -> None:
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("This is for creators. Become one with /becomecreator."))
        return
    words = (command.args or "").split()
    course_id = parsing.record_id(words[0]) if len(words) == 2 else None
    stars = parsing.whole(words[1], 0, qa.MAX_STARS) if course_id is not None else None
    if course_id is None or stars is None:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("askprice")))
        return
    course = await qa.set_price(session, creator, course_id, stars)
    if isinstance(course, qa.Refusal):
        await message.answer(refusal_text(course))
        return
    if stars:
        text = _("Questions about «{title}» now cost {amount}.").format(
            title=escape(course.title), amount=format_money(stars, STARS, current_locale())
        )
    else:
        text = _("Questions about «{title}» are now free.").format(title=escape(course.title))
    await message.answer(text)


@router.message(Command("questions"))
async def cmd_questions(message: Message, session: AsyncSession, user: User, clock: Clock) -> None:
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("This is for creators. Become one with /becomecreator."))
        return
    waiting = await qa.unanswered(session, creator.id)
    if not waiting:
        await message.answer(_("No questions are waiting for an answer."))
        return
    now = clock.now()
    lines = [_("<b>Questions waiting for an answer</b>")]
    for item in waiting:
        paid_note = " · " + format_money(item.stars, STARS, current_locale()) if item.stars else ""
        lines.append(
            _("#{id} · «{title}» · asked {age} ago{paid}\n{text}").format(
                id=item.id,
                title=escape(shorten(item.course_title, 40)),
                age=_age(now - item.asked_at),
                paid=paid_note,
                text=_preview(item.text, item.content_type, 120),
            )
        )
    await message.answer(clip("\n\n".join(lines)))


# --- the FAQ on the card ---------------------------------------------------------------


@router.callback_query(FaqCB.filter())
async def on_faq(callback: CallbackQuery, callback_data: FaqCB, session: AsyncSession) -> None:
    title = await _course_title(session, callback_data.c)
    items = await qa.faq(session, callback_data.c) if title else []
    if not items:
        await callback.answer(_("This course has no FAQ yet."), show_alert=True)
        return
    lines = [_("<b>FAQ · {title}</b>").format(title=escape(title))]
    for item in items:
        lines.append(
            _("<b>Q:</b> {question}\n<b>A:</b> {answer}").format(
                question=_preview(item.text, item.content_type),
                answer=_preview(item.answer_text or "", "answer"),
            )
        )
    await show(
        callback, clip("\n\n".join(lines)), InlineKeyboardMarkup(inline_keyboard=[[home_button()]])
    )


def ask_button_row(course_id: int) -> list[InlineKeyboardButton]:
    return [callback_button(_("❓ Ask the creator"), QaCB(a="a", id=course_id).pack())]


def faq_button_row(course_id: int, count: int) -> list[InlineKeyboardButton]:
    return [callback_button(_("❓ FAQ ({n})").format(n=count), FaqCB(c=course_id).pack())]


# --- the 72-hour refund ----------------------------------------------------------------


def install(registry: JobRegistry, bot: Bot, i18n: I18n, settings: Settings) -> None:
    async def refund(ctx: JobContext, job: Job) -> datetime | None:
        now = ctx.clock.now()
        done = await paid.refund_unanswered(
            ctx.session, int(job.payload["question"]), gateways(bot, settings), settings, now
        )
        if done is None:
            return None  # answered in time
        question, result = done
        if result.status == RefundStatus.FAILED:
            # Rolled back by the worker (the question is open again); tried later.
            raise Transient(f"question {question.id}: refund failed: {result.detail}")
        locale = await _locale_of(ctx.session, question.user_id, settings)
        title = await _course_title(ctx.session, question.course_id)
        with i18n.context(), i18n.use_locale(locale):
            text = _(
                "↩️ The creator of «{title}» did not answer your question within 72 hours, "
                "so your {amount} came back to your balance."
            ).format(title=escape(title), amount=format_money(question.stars, STARS, locale))
        await notices.later(ctx.session, question.user_id, Outgoing(text=text), now=now)
        return None

    registry.register(paid.REFUND_JOB, refund)
