"""The learner's side of drip: Done and Next under each lesson, pause and resume a
course, quiet hours and timezone."""

from __future__ import annotations

import contextlib
import re

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.handlers.common import Command, is_private, list_language, show
from bot.handlers.library import library_screen
from bot.handlers.recommend import suggestion_rows
from bot.keyboards.callbacks import RateCB, packed
from bot.keyboards.learning import EnrollmentAction, EnrollmentCB, LessonAction, LessonCB
from bot.keyboards.menus import callback_button
from bot.marketplace import reviews
from bot.models import User
from bot.scheduler.clock import Clock
from bot.services import drip
from bot.services.drip import StepResult, local_time
from bot.services.search import CatalogSearch

router = Router(name=__name__)

QUIET = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


def step_text(result: StepResult) -> str:
    if not result.ok:
        return _("This lesson is not available any more.")
    parts = []
    if result.newly_done:
        parts.append(_("✅ Marked as done."))
    if result.course_finished:
        parts.append(_("🎉 You finished the course!"))
    elif result.is_last:
        parts.append(_("That was the last lesson."))
    elif result.access_ended:
        parts.append(_("Your access to this course has ended: no more lessons arrive."))
    elif result.next_already_sent:
        parts.append(_("You already have the next lesson: scroll down."))
    elif result.next_waits_for_done:
        parts.append(_("The next lesson opens when you mark this one done."))
    elif result.next_due is not None:
        parts.append(_("Next lesson: {date}.").format(date=local_time(result.next_due, result.tz)))
    return " ".join(parts) or _("Nothing new yet.")


@router.callback_query(LessonCB.filter())
async def on_lesson_button(
    callback: CallbackQuery,
    callback_data: LessonCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    search: CatalogSearch,
) -> None:
    if callback_data.action == LessonAction.DONE:
        result = await drip.mark_done(session, user.id, callback_data.id, clock.now())
    elif callback_data.action == LessonAction.NEXT:
        result = await drip.next_lesson(session, user.id, callback_data.id, clock.now())
    else:
        result = StepResult(ok=False)
    await callback.answer(step_text(result), show_alert=not result.ok)
    if not result.ok:
        return
    rate: list[list[InlineKeyboardButton]] = []
    if (
        callback_data.action == LessonAction.DONE
        and (result.newly_done or result.is_last)
        and await reviews.invite(
            session, user.id, result.course_id, clock.now(), last=result.is_last
        )
    ):
        rate = [
            [callback_button(_("⭐ Rate this course"), packed(RateCB, c=result.course_id, r=0))]
        ]
    if result.newly_done or rate:
        await _suggest_under(callback, session, user, search, rate)


async def _suggest_under(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    rate: list[list[InlineKeyboardButton]],
) -> None:
    """After a finished lesson, "Rate this course" when the learner may (see
    reviews.invite) and a few courses to learn next, under that lesson's buttons.

    Added to the lesson message rather than sent: a message after every lesson would
    be noise. Each only once per lesson message.
    """
    message = callback.message
    if not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = message.reply_markup.inline_keyboard
    datas = [b.callback_data or "" for row in rows for b in row]
    extra = [] if any(d.startswith("rt:") for d in datas) else list(rate)
    if not any(d.startswith("c:") for d in datas):
        extra += await suggestion_rows(session, user.id, search, language=list_language(user))
    if extra:
        with contextlib.suppress(TelegramBadRequest):
            await message.edit_reply_markup(
                reply_markup=InlineKeyboardMarkup(inline_keyboard=[*rows, *extra])
            )


@router.callback_query(EnrollmentCB.filter())
async def on_enrollment(
    callback: CallbackQuery,
    callback_data: EnrollmentCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
) -> None:
    if callback_data.action == EnrollmentAction.PAUSE:
        ok = await drip.pause(session, user.id, callback_data.id, clock.now())
        note = _("Paused. No lessons arrive until you resume.")
    elif callback_data.action == EnrollmentAction.RESUME:
        ok = await drip.resume(session, user.id, callback_data.id, clock.now())
        note = _("Resumed. Lessons continue where you stopped.")
    else:
        ok, note = False, ""
    if not ok:
        await callback.answer(_("This course is not in your library."), show_alert=True)
        return
    text, markup = await library_screen(session, user, clock.now())
    await show(callback, text, markup, note=note)


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@router.message(Command("quiet"), is_private)
async def cmd_quiet(
    message: Message, command: CommandObject, session: AsyncSession, user: User, clock: Clock
) -> None:
    arg = (command.args or "").strip().lower()
    if not arg:
        if user.quiet_start == user.quiet_end:
            await message.answer(_("Quiet hours are off. Set them with /quiet 22:00-08:00."))
        else:
            await message.answer(
                _(
                    "No lessons arrive between {start} and {end}. Change: /quiet 23:00-07:30, "
                    "or /quiet off."
                ).format(start=_fmt(user.quiet_start), end=_fmt(user.quiet_end))
            )
        return
    if arg == "off":
        user.quiet_start = user.quiet_end = 0
    else:
        match = QUIET.match(arg)
        values = [int(g) for g in match.groups()] if match else []
        if not match or values[0] > 23 or values[2] > 23 or values[1] > 59 or values[3] > 59:
            await message.answer(_("Usage: /quiet 22:00-08:00, or /quiet off"))
            return
        user.quiet_start = values[0] * 60 + values[1]
        user.quiet_end = values[2] * 60 + values[3]
    await drip.reschedule_user(session, user, clock.now())
    await message.answer(_("Saved. Your lessons follow the new quiet hours."))


@router.message(Command("timezone"), is_private)
async def cmd_timezone(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    name = (command.args or "").strip()
    if not name:
        await message.answer(
            _("Your timezone: {tz}. Change it with e.g. /timezone Europe/Berlin.").format(
                tz=user.timezone or settings.timezone
            )
        )
        return
    if not drip.is_valid_timezone(name):
        await message.answer(_("I don't know that timezone. Try e.g. Asia/Shanghai."))
        return
    user.timezone = name
    await drip.reschedule_user(session, user, clock.now())
    await message.answer(_("Saved. Lessons now arrive by {tz} time.").format(tz=name))
