"""Keyboards of the learner's flows. Texts go through gettext at build time."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.analytics import sources
from bot.analytics.sources import Source
from bot.keyboards.callbacks import (
    BothLangCB,
    BuyCB,
    CourseCB,
    GiftCB,
    InterestCB,
    LangCB,
    MenuAction,
    MenuCB,
    PageCB,
    RatedPageCB,
    ShareCB,
    SimilarCB,
    packed,
)
from bot.money import format_money
from bot.services.catalog import CatalogPage, CourseCard, CourseSummary
from bot.services.topics import TOPICS
from bot.text import shorten

LANGUAGES = (("en", "English"), ("zh", "中文"))
BUTTON_TITLE_CHARS = 40


def topic_label(key: str) -> str:
    labels = {
        "programming": _("Programming"),
        "data": _("Data & AI"),
        "design": _("Design"),
        "business": _("Business"),
        "marketing": _("Marketing"),
        "finance": _("Finance"),
        "languages": _("Languages"),
        "personal": _("Personal growth"),
        "music": _("Music"),
        "photo": _("Photo & video"),
    }
    return labels.get(key, key)


def main_menu() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=_("📚 Catalog"), callback_data=MenuCB(action=MenuAction.CATALOG))
    kb.button(text=_("🔎 Search"), callback_data=MenuCB(action=MenuAction.SEARCH))
    kb.button(text=_("✨ Recommended for you"), callback_data=MenuCB(action=MenuAction.RECOMMEND))
    kb.button(text=_("🎒 My library"), callback_data=MenuCB(action=MenuAction.LIBRARY))
    kb.button(text=_("🧑‍🏫 Creators for you"), callback_data=MenuCB(action=MenuAction.CREATORS))
    kb.button(text=_("🌐 Language"), callback_data=MenuCB(action=MenuAction.LANGUAGE))
    kb.button(text=_("🏷 Interests"), callback_data=MenuCB(action=MenuAction.INTERESTS))
    kb.button(text=_("❓ Help"), callback_data=MenuCB(action=MenuAction.HELP))
    kb.adjust(2, 1, 2, 2, 1)
    return kb.as_markup()


# Validated once; catalog buttons are copies of it. A catalog page is nine buttons, and
# pydantic's validation of each (text and callback data we built ourselves) was half of
# what rendering the page cost.
_CALLBACK_BUTTON = InlineKeyboardButton(text="-", callback_data="-")


def callback_button(text: str, data: str) -> InlineKeyboardButton:
    return _CALLBACK_BUTTON.model_copy(update={"text": text, "callback_data": data})


# One per language: it closes nearly every keyboard, and building it (a pydantic object
# and a packed callback) costs more than looking it up.
_home_buttons: dict[str, InlineKeyboardButton] = {}


def home_button() -> InlineKeyboardButton:
    label = _("🏠 Menu")
    button = _home_buttons.get(label)
    if button is None:
        button = InlineKeyboardButton(
            text=label, callback_data=MenuCB(action=MenuAction.HOME).pack()
        )
        _home_buttons[label] = button
    return button


def only_home() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[home_button()]])


def catalog_or_home() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("📚 Catalog"), callback_data=MenuCB(action=MenuAction.CATALOG).pack()
                ),
                home_button(),
            ]
        ]
    )


def language_keyboard(both: bool | None = None) -> InlineKeyboardMarkup:
    """The languages to choose from; in the settings (``both`` given, the learner's
    current choice) also the switch for courses in both languages, and Home."""
    kb = InlineKeyboardBuilder()
    for code, label in LANGUAGES:
        kb.button(text=label, callback_data=LangCB(code=code))
    if both is None:
        return kb.as_markup()
    kb.adjust(2)
    if both:
        label, mode = _("✅ Courses in both languages"), "mine"
    else:
        label, mode = _("⬜ Courses in both languages"), "both"
    kb.row(InlineKeyboardButton(text=label, callback_data=BothLangCB(mode=mode).pack()))
    kb.row(home_button())
    return kb.as_markup()


def interests_keyboard(selected: list[str]) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for topic in TOPICS:
        mark = "✅ " if topic.key in selected else ""
        kb.button(text=mark + topic_label(topic.key), callback_data=InterestCB(key=topic.key))
    kb.adjust(2)
    kb.row(InlineKeyboardButton(text=_("Done ✔"), callback_data=InterestCB(key="").pack()))
    return kb.as_markup()


def short_title(title: str) -> str:
    return shorten(title, BUTTON_TITLE_CHARS)


def course_buttons(
    items: list[CourseSummary], back: int = -1, source: Source = Source.CATALOG
) -> list[list[InlineKeyboardButton]]:
    src = sources.number(source)
    return [
        [callback_button(short_title(item.title), packed(CourseCB, id=item.id, back=back, src=src))]
        for item in items
    ]


def catalog_keyboard(page: CatalogPage) -> InlineKeyboardMarkup:
    rows = course_buttons(page.items, back=page.page)
    nav: list[InlineKeyboardButton] = []
    if page.page > 0:
        nav.append(callback_button("◀", packed(PageCB, page=page.page - 1)))
    if page.page < page.pages - 1:
        nav.append(callback_button("▶", packed(PageCB, page=page.page + 1)))
    if nav:
        rows.append(nav)
    rows.append([callback_button(_("⭐ Top rated"), packed(RatedPageCB, page=0))])
    rows.append([home_button()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def results_keyboard(items: list[CourseSummary], source: Source) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[*course_buttons(items, source=source), [home_button()]]
    )


def card_keyboard(
    card: CourseCard, back: int, extra: Sequence[list[InlineKeyboardButton]] = ()
) -> InlineKeyboardMarkup:
    """`extra`: the marketplace's rows (rate, review votes, the creator's page)."""
    rows: list[list[InlineKeyboardButton]] = []
    if not card.owned:
        free = card.price_minor <= 0 and card.stars_price <= 0
        label = _("🎁 Get it free") if free else _("🛒 Buy")
        rows.append([callback_button(label, packed(BuyCB, id=card.id))])
    if card.price_minor > 0 or card.stars_price > 0:
        rows.append(
            [
                callback_button(_("🎁 Buy as a gift"), packed(GiftCB, id=card.id)),
                callback_button(_("🔗 Share"), packed(ShareCB, id=card.id)),
            ]
        )
    rows.append([callback_button(_("🧭 Similar courses"), packed(SimilarCB, id=card.id))])
    rows.extend(extra)
    if back >= 0:
        rows.append([callback_button(_("◀ Back"), packed(PageCB, page=back))])
    rows.append([home_button()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def price_line(price_minor: int, currency: str, stars: int, locale: str) -> str:
    parts = []
    if price_minor > 0:
        parts.append(format_money(price_minor, currency, locale))
    if stars > 0:
        parts.append(format_money(stars, "XTR", locale))
    return " · ".join(parts) if parts else _("Free")
