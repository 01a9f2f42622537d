"""Keyboards of the learner's flows. Texts go through gettext at build time."""

from __future__ import annotations

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.keyboards.callbacks import (
    BuyCB,
    CourseCB,
    InterestCB,
    LangCB,
    MenuAction,
    MenuCB,
    PageCB,
    SimilarCB,
)
from bot.money import format_money
from bot.services.catalog import CatalogPage, CourseCard, CourseSummary
from bot.services.topics import TOPICS

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
    kb.button(text=_("🌐 Language"), callback_data=MenuCB(action=MenuAction.LANGUAGE))
    kb.button(text=_("🏷 Interests"), callback_data=MenuCB(action=MenuAction.INTERESTS))
    kb.button(text=_("❓ Help"), callback_data=MenuCB(action=MenuAction.HELP))
    kb.adjust(2, 1, 1, 2, 1)
    return kb.as_markup()


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


def language_keyboard() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, label in LANGUAGES:
        kb.button(text=label, callback_data=LangCB(code=code))
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
    return title if len(title) <= BUTTON_TITLE_CHARS else title[: BUTTON_TITLE_CHARS - 1] + "…"


def course_buttons(items: list[CourseSummary], back: int = -1) -> list[list[InlineKeyboardButton]]:
    return [
        [
            InlineKeyboardButton(
                text=short_title(item.title), callback_data=CourseCB(id=item.id, back=back).pack()
            )
        ]
        for item in items
    ]


def catalog_keyboard(page: CatalogPage) -> InlineKeyboardMarkup:
    rows = course_buttons(page.items, back=page.page)
    nav: list[InlineKeyboardButton] = []
    if page.page > 0:
        nav.append(InlineKeyboardButton(text="◀", callback_data=PageCB(page=page.page - 1).pack()))
    if page.page < page.pages - 1:
        nav.append(InlineKeyboardButton(text="▶", callback_data=PageCB(page=page.page + 1).pack()))
    if nav:
        rows.append(nav)
    rows.append([home_button()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def results_keyboard(items: list[CourseSummary]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[*course_buttons(items), [home_button()]])


def card_keyboard(card: CourseCard, back: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if not card.owned:
        free = card.price_minor <= 0 and card.stars_price <= 0
        label = _("🎁 Get it free") if free else _("🛒 Buy")
        rows.append([InlineKeyboardButton(text=label, callback_data=BuyCB(id=card.id).pack())])
    rows.append(
        [
            InlineKeyboardButton(
                text=_("🧭 Similar courses"), callback_data=SimilarCB(id=card.id).pack()
            )
        ]
    )
    if back >= 0:
        rows.append(
            [InlineKeyboardButton(text=_("◀ Back"), callback_data=PageCB(page=back).pack())]
        )
    rows.append([home_button()])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def price_line(price_minor: int, currency: str, stars: int, locale: str) -> str:
    parts = []
    if price_minor > 0:
        parts.append(format_money(price_minor, currency, locale))
    if stars > 0:
        parts.append(format_money(stars, "XTR", locale))
    return " · ".join(parts) if parts else _("Free")
