"""Search: /search <words>, or just type words in the private chat."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import CommandObject, StateFilter
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source
from bot.handlers import promote, views
from bot.handlers.common import (
    Command,
    Screens,
    current_locale,
    is_private,
    list_language,
    show,
)
from bot.keyboards.callbacks import MenuAction, MenuCB
from bot.keyboards.menus import catalog_or_home, results_keyboard
from bot.marketplace import sponsored
from bot.models import EventKind, User
from bot.scheduler.clock import Clock
from bot.services.events import EventBuffer
from bot.services.search import MAX_QUERY_CHARS, CatalogSearch, CatalogSnapshot

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
    clock: Clock,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(views.search_prompt())
        return
    await _answer(message, query, session, user, search, events, clock)


# Plain text in no conversation (a guided step or a promo code is in a state) is a
# query. That holds wherever this router stands, so it stands near the front: most
# messages are searches and need not pass every other router's filters.
@router.message(StateFilter(None), _plain_text)
async def on_text(
    message: Message,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    events: EventBuffer,
    clock: Clock,
) -> None:
    await _answer(message, message.text or "", session, user, search, events, clock)


async def _answer(
    message: Message,
    query: str,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    events: EventBuffer,
    clock: Clock,
) -> None:
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    snapshot = await search.snapshot(session)
    locale = current_locale()
    language = list_language(user)
    text, markup, found = results_screen(snapshot, query, locale, language)
    events.record(EventKind.SEARCH, user_id=user.id, data={"q": query[:64], "n": found})
    if found:
        live = await promote.live(session, search)
        if live.by_course:
            # Only among the query's own matches, above the relevance floor.
            hits = ((h.course_id, h.score) for h in snapshot.hits(query))
            ranked = sponsored.for_search(live, hits)
            organic = snapshot.search(query, RESULTS, language)
            picks = await promote.place(
                session, search, user.id, "search", organic, ranked, clock.now()
            )
            text, markup = promote.with_picks(text, markup, picks, locale)
    await message.answer(text, reply_markup=markup)


# The same query on the same catalog gets the same screen; keyboards are pydantic objects
# and cost more to build than the search itself once its results are cached.
_screens: Screens[tuple[str, InlineKeyboardMarkup, int]] = Screens(1024)


def results_screen(
    snapshot: CatalogSnapshot, query: str, locale: str, language: str | None
) -> tuple[str, InlineKeyboardMarkup, int]:
    """``language``: whose courses lead (``list_language``; None for "both")."""

    def render() -> tuple[str, InlineKeyboardMarkup, int]:
        items = snapshot.search(query, RESULTS, language) if query else []
        if not items:
            return views.nothing_found(query), catalog_or_home(), 0
        return (
            views.search_results(query, items, locale),
            results_keyboard(items, Source.SEARCH),
            len(items),
        )

    return _screens.get((snapshot.version, query, locale, language), render)


@router.callback_query(MenuCB.filter(F.action == MenuAction.SEARCH))
async def on_search_menu(callback: CallbackQuery) -> None:
    await show(callback, views.search_prompt(), catalog_or_home())
