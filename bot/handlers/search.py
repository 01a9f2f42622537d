"""Search: /search <words>, or just type words in the private chat."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers import views
from bot.handlers.common import current_locale, is_private, show
from bot.keyboards.callbacks import MenuAction, MenuCB
from bot.keyboards.menus import catalog_or_home, results_keyboard
from bot.models import EventKind, User
from bot.services.events import EventBuffer
from bot.services.search import MAX_QUERY_CHARS, CatalogSearch

router = Router(name=__name__)
router.message.filter(is_private)

RESULTS = 8


async def _plain_text(message: Message) -> bool:
    # An async filter: aiogram runs sync filters in a thread (DESIGN.md, performance).
    text = message.text
    return bool(text) and not text.startswith("/")  # type: ignore[union-attr]


@router.message(Command("search"))
async def cmd_search(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    events: EventBuffer,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(views.search_prompt())
        return
    await _answer(message, query, session, user, search, events)


@router.message(_plain_text)
async def on_text(
    message: Message,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    events: EventBuffer,
) -> None:
    await _answer(message, message.text or "", session, user, search, events)


async def _answer(
    message: Message,
    query: str,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    events: EventBuffer,
) -> None:
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    items = await search.search(query, limit=RESULTS, session=session)
    events.record(EventKind.SEARCH, user_id=user.id, data={"q": query[:64], "n": len(items)})
    if not items:
        await message.answer(views.nothing_found(query), reply_markup=catalog_or_home())
        return
    await message.answer(
        views.search_results(query, items, current_locale()), reply_markup=results_keyboard(items)
    )


@router.callback_query(MenuCB.filter(F.action == MenuAction.SEARCH))
async def on_search_menu(callback: CallbackQuery) -> None:
    await show(callback, views.search_prompt(), catalog_or_home())
