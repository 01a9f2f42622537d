"""Browsing: catalog pages and course cards, navigated by editing one message."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.handlers import views
from bot.handlers.common import current_locale, is_private, show
from bot.keyboards.callbacks import CourseCB, MenuAction, MenuCB, PageCB
from bot.keyboards.menus import card_keyboard, catalog_keyboard
from bot.models import EventKind, User
from bot.services.catalog import catalog_page, course_card
from bot.services.events import EventBuffer

router = Router(name=__name__)


@router.message(Command("catalog"), is_private)
async def cmd_catalog(message: Message, session: AsyncSession, settings: Settings) -> None:
    page = await catalog_page(session, 0, settings.catalog_page_size)
    await message.answer(
        views.catalog_text(page, current_locale()), reply_markup=catalog_keyboard(page)
    )


@router.callback_query(MenuCB.filter(F.action == MenuAction.CATALOG))
async def on_catalog(callback: CallbackQuery, session: AsyncSession, settings: Settings) -> None:
    await _show_page(callback, session, settings, 0)


@router.callback_query(PageCB.filter())
async def on_page(
    callback: CallbackQuery, callback_data: PageCB, session: AsyncSession, settings: Settings
) -> None:
    await _show_page(callback, session, settings, callback_data.page)


async def _show_page(
    callback: CallbackQuery, session: AsyncSession, settings: Settings, number: int
) -> None:
    page = await catalog_page(session, number, settings.catalog_page_size)
    await show(callback, views.catalog_text(page, current_locale()), catalog_keyboard(page))


@router.callback_query(CourseCB.filter())
async def on_course(
    callback: CallbackQuery,
    callback_data: CourseCB,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
) -> None:
    card = await course_card(session, callback_data.id, user.id)
    if card is None:
        await callback.answer(views.course_unavailable(), show_alert=True)
        return
    events.record(EventKind.VIEW, user_id=user.id, course_id=card.id, creator_id=card.creator_id)
    await show(
        callback, views.card_text(card, current_locale()), card_keyboard(card, callback_data.back)
    )


@router.message(Command("course"), is_private)
async def cmd_course(
    message: Message, session: AsyncSession, user: User, events: EventBuffer
) -> None:
    # /course <id>: the same card as the deep link, for people who type.
    arg = (message.text or "").partition(" ")[2].strip()
    card = await course_card(session, int(arg), user.id) if arg.isdigit() else None
    if card is None:
        await message.answer(views.course_unavailable() if arg else _("Usage: /course <number>"))
        return
    events.record(EventKind.VIEW, user_id=user.id, course_id=card.id, creator_id=card.creator_id)
    await message.answer(
        views.card_text(card, current_locale()), reply_markup=card_keyboard(card, -1)
    )
