"""Browsing: catalog pages and course cards, navigated by editing one message."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.analytics import sources
from bot.analytics.sources import Source
from bot.config import Settings
from bot.handlers import market, promote, views
from bot.handlers.common import (
    Command,
    Screens,
    current_locale,
    is_private,
    list_language,
    show,
)
from bot.keyboards.callbacks import CourseCB, MenuAction, MenuCB, PageCB
from bot.keyboards.menus import catalog_keyboard
from bot.marketplace import sponsored
from bot.models import EventKind, User
from bot.scheduler.clock import Clock
from bot.services.events import EventBuffer
from bot.services.search import CatalogSearch, CatalogSnapshot

router = Router(name=__name__)


@router.message(Command("catalog"), is_private)
async def cmd_catalog(
    message: Message,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    text, markup = await page_with_slots(session, user, settings, search, 0, clock)
    await message.answer(text, reply_markup=markup)


@router.callback_query(PageCB.filter())
async def on_page(
    callback: CallbackQuery,
    callback_data: PageCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    await _show_page(callback, session, user, settings, search, callback_data.page, clock)


async def _show_page(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    number: int,
    clock: Clock,
) -> None:
    await show(callback, *await page_with_slots(session, user, settings, search, number, clock))


async def page_with_slots(
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    number: int,
    clock: Clock,
) -> tuple[str, InlineKeyboardMarkup]:
    """The page everyone sees (cached), with this learner's sponsored slots put in."""
    snapshot = await search.snapshot(session)
    locale = current_locale()
    language = list_language(user)
    size = settings.catalog_page_size
    text, markup = catalog_screen(snapshot, number, size, locale, language)
    live = await promote.live(session, search)
    if not live.by_course:
        return text, markup
    items = snapshot.page(number, size, language).items
    ranked = sponsored.for_catalog(live)
    picks = await promote.place(session, search, user.id, "catalog", items, ranked, clock.now())
    return promote.with_picks(text, markup, picks, locale)


# A catalog page looks the same to everyone until the catalog changes, and rendering
# it (a dozen prices, a keyboard of pydantic objects) costs more than the rest of the
# update: keep recent pages, keyed by the snapshot they came from (about 19 KB each).
_screens: Screens[tuple[str, InlineKeyboardMarkup]] = Screens(1024)


def catalog_screen(
    snapshot: CatalogSnapshot,
    number: int,
    size: int,
    locale: str,
    language: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """``language``: whose courses come first (``list_language``; None: by id)."""
    page = snapshot.page(number, size, language)
    return _screens.get(
        (snapshot.version, page.page, size, locale, language),
        lambda: (views.catalog_text(page, locale), catalog_keyboard(page)),
    )


@router.callback_query(CourseCB.filter())
async def on_course(
    callback: CallbackQuery,
    callback_data: CourseCB,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    card = await search.card(session, callback_data.id, user.id, clock.now())
    if card is None:
        await callback.answer(views.course_unavailable(), show_alert=True)
        return
    events.record(
        EventKind.VIEW,
        user_id=user.id,
        course_id=card.id,
        creator_id=card.creator_id,
        data={"src": sources.from_number(callback_data.src)},
    )
    await show(
        callback, *await market.card_screen(session, search, card, callback_data.back, clock.now())
    )


# After the page and card buttons: those are most of the presses, and each filter that
# says no costs a parse.
@router.callback_query(MenuCB.filter(F.action == MenuAction.CATALOG))
async def on_catalog(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    settings: Settings,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    await _show_page(callback, session, user, settings, search, 0, clock)


@router.message(Command("course"), is_private)
async def cmd_course(
    message: Message,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    # /course <id>: the same card as the deep link, for people who type.
    arg = (message.text or "").partition(" ")[2].strip()
    course_id = parsing.record_id(arg)
    card = await search.card(session, course_id, user.id, clock.now()) if course_id else None
    if card is None:
        await message.answer(
            views.course_unavailable() if arg else _("Usage: /course <i>number</i>")
        )
        return
    events.record(
        EventKind.VIEW,
        user_id=user.id,
        course_id=card.id,
        creator_id=card.creator_id,
        data={"src": Source.DIRECT},
    )
    text, markup = await market.card_screen(session, search, card, -1, clock.now())
    await message.answer(text, reply_markup=markup)
