"""“Recommended for you” (main menu, /foryou) and “Similar courses” (on every card)."""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram import F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source
from bot.handlers import promote, views
from bot.handlers.common import Command, current_locale, is_private, list_language, show
from bot.keyboards.callbacks import MenuAction, MenuCB, SimilarCB
from bot.keyboards.menus import catalog_or_home, course_buttons, results_keyboard
from bot.marketplace import sponsored
from bot.models import User, utcnow
from bot.scheduler.clock import Clock
from bot.services.catalog import CourseSummary
from bot.services.recommendations import recommend_for, recommend_ranked, similar_to
from bot.services.search import CatalogSearch

router = Router(name=__name__)

RECOMMENDED = 5
SIMILAR = 5


def recommended_text(items: list[CourseSummary], locale: str) -> str:
    lines = [_("✨ Recommended for you:"), ""]
    lines += [views.summary_line(item, locale) for item in items]
    return "\n".join(lines)


def similar_text(items: list[CourseSummary], locale: str) -> str:
    lines = [_("🧭 Similar courses:"), ""]
    lines += [views.summary_line(item, locale) for item in items]
    return "\n".join(lines)


def no_recommendations() -> str:
    return _("No suggestions yet. Browse the catalog, or pick your interests in the menu.")


def no_similar(title: str | None = None) -> str:
    if title:
        return _("Nothing similar to «{title}» yet.").format(title=escape(title))
    return _("Nothing similar yet.")


async def recommended_screen(
    session: AsyncSession,
    user_id: int,
    search: CatalogSearch,
    k: int = RECOMMENDED,
    now: datetime | None = None,
    language: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """The “Recommended for you” screen. Other flows show it too: after a purchase and
    after a finished lesson, and once onboarding interests are picked. With a sponsored
    slot when a promoted course is relevant enough to this learner. ``language``: the
    one whose courses lead (``list_language``)."""
    items, relevance = await recommend_ranked(
        session, user_id, k, catalog=search, language=language
    )
    if not items:
        return no_recommendations(), catalog_or_home()
    locale = current_locale()
    text = recommended_text(items, locale)
    markup = results_keyboard(items, Source.RECOMMEND)
    live = await promote.live(session, search)
    if not live.by_course:
        return text, markup
    ranked = sponsored.for_recommendations(live, relevance)
    picks = await promote.place(session, search, user_id, "rec", items, ranked, now or utcnow())
    return promote.with_picks(text, markup, picks, locale)


async def suggestion_rows(
    session: AsyncSession,
    user_id: int,
    search: CatalogSearch,
    k: int = 3,
    language: str | None = None,
) -> list[list[InlineKeyboardButton]]:
    """A few course buttons to append under another screen (a purchase receipt, a
    finished lesson): the learner's next step without another message."""
    # Never waits for a first fit: the caller's write transaction is still open.
    items = await recommend_for(session, user_id, k, catalog=search, wait=False, language=language)
    return course_buttons(items, source=Source.RECOMMEND)


@router.callback_query(MenuCB.filter(F.action == MenuAction.RECOMMEND))
async def on_recommended(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    text, markup = await recommended_screen(
        session, user.id, search, now=clock.now(), language=list_language(user)
    )
    await show(callback, text, markup)


@router.message(Command("foryou"), is_private)
async def cmd_recommended(
    message: Message, session: AsyncSession, user: User, search: CatalogSearch, clock: Clock
) -> None:
    text, markup = await recommended_screen(
        session, user.id, search, now=clock.now(), language=list_language(user)
    )
    await message.answer(text, reply_markup=markup)


@router.callback_query(SimilarCB.filter())
async def on_similar(
    callback: CallbackQuery,
    callback_data: SimilarCB,
    session: AsyncSession,
    user: User,
    search: CatalogSearch,
) -> None:
    items = await similar_to(
        session,
        callback_data.id,
        SIMILAR,
        catalog=search,
        user_id=user.id,
        language=list_language(user),
    )
    if not items:
        snapshot = await search.snapshot(session)
        course = snapshot.by_id.get(callback_data.id)
        await show(callback, no_similar(course.title if course else None), catalog_or_home())
        return
    await show(
        callback, similar_text(items, current_locale()), results_keyboard(items, Source.RECOMMEND)
    )
