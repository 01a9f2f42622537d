"""/my: what the learner owns: courses and plans."""

from __future__ import annotations

from datetime import datetime

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers import views
from bot.handlers.common import Command, is_private, show
from bot.keyboards.callbacks import MenuAction, MenuCB
from bot.keyboards.learning import library_keyboard
from bot.models import User
from bot.scheduler.clock import Clock
from bot.services import drip
from bot.services import groups as groups_service
from bot.services.catalog import library

router = Router(name=__name__)


@router.message(Command("my"), is_private)
async def cmd_my(message: Message, session: AsyncSession, user: User, clock: Clock) -> None:
    text, markup = await library_screen(session, user, clock.now())
    await message.answer(text, reply_markup=markup)


@router.callback_query(MenuCB.filter(F.action == MenuAction.LIBRARY))
async def on_library(
    callback: CallbackQuery, session: AsyncSession, user: User, clock: Clock
) -> None:
    text, markup = await library_screen(session, user, clock.now())
    await show(callback, text, markup)


async def library_screen(
    session: AsyncSession, user: User, now: datetime
) -> tuple[str, InlineKeyboardMarkup]:
    """The library: courses with drip progress and pause/resume buttons, then plans with
    their expiry and a button for a new invite link."""
    items = await library(session, user.id, now)
    progress = await drip.progress(session, user.id)
    owned = [progress[i.course_id] for i in items if i.course_id in progress]
    plans = await groups_service.plans_of(session, user.id, now)
    return views.library_text(items, progress, plans), library_keyboard(owned, plans)
