"""Inline mode: “@bot python” in any chat lists courses; each result shares the course
with a deep link (t.me/<bot>?start=c_<id>) that opens its card in the bot.

Inline mode has to be switched on once with @BotFather (/setinline)."""

from __future__ import annotations

from html import escape

from aiogram import Bot, Router
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputTextMessageContent,
)
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import Source, deep_link_payload
from bot.handlers.common import current_locale, list_language
from bot.handlers.views import language_flag
from bot.keyboards.menus import price_line
from bot.models import User
from bot.services.catalog import CourseSummary
from bot.services.recommendations import recommend_for, search_courses
from bot.services.search import MAX_QUERY_CHARS, CatalogSearch

router = Router(name=__name__)

RESULTS = 20
# Search results are the same for everyone: Telegram may cache them for a while.
CACHE_SECONDS = 60


def course_link(username: str, course_id: int) -> str:
    return f"https://t.me/{username}?start={deep_link_payload(course_id, Source.INLINE)}"


def course_result(item: CourseSummary, username: str, locale: str) -> InlineQueryResultArticle:
    link = course_link(username, item.id)
    price = price_line(item.price_minor, item.currency, item.stars_price, locale)
    text = f"<b>{escape(item.title)}</b>\n{escape(price)}\n{link}"
    return InlineQueryResultArticle(
        id=f"c{item.id}",
        title=item.title,
        # The course's language, as every list marks it.
        description=f"{language_flag(item.language)} {price}",
        input_message_content=InputTextMessageContent(message_text=text),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text=_("Open the course"), url=link)]]
        ),
    )


@router.inline_query()
async def on_inline_query(
    inline_query: InlineQuery,
    bot: Bot,
    session: AsyncSession,
    search: CatalogSearch,
    user: User | None = None,
) -> None:
    query = " ".join(inline_query.query.split())[:MAX_QUERY_CHARS]
    locale = current_locale()
    language = list_language(user)
    if query:
        items = await search_courses(
            query, RESULTS, catalog=search, session=session, language=language
        )
        # The order depends on the learner's language: Telegram must not hand one
        # learner's answer to another.
        personal = True
    else:
        # Nothing typed yet: this learner's suggestions.
        user_id = user.id if user is not None else inline_query.from_user.id
        items = await recommend_for(session, user_id, RESULTS, catalog=search, language=language)
        personal = True
    me = await bot.me()
    username = me.username or ""
    await inline_query.answer(
        [course_result(item, username, locale) for item in items],
        cache_time=CACHE_SECONDS,
        is_personal=personal,
    )
