"""Gettext catalogs for the bot, loaded straight from the .po sources.

Catalogs are compiled in memory at start-up, so a checkout never runs with stale or
missing .mo files and nothing generated has to be committed.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

from aiogram.utils.i18n import I18n
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from bot.money import LOCALES

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
SUPPORTED = LOCALES  # one list of languages, which money is formatted in too


class PoI18n(I18n):
    @contextmanager
    def context(self) -> Iterator[I18n]:
        # aiogram's mixin gives every subclass its own context variable, while
        # gettext()/get_i18n() read I18n's: register under the base class.
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        translations: dict[str, gettext.GNUTranslations] = {}
        for locale_dir in sorted(self.path.iterdir()):
            po_path = locale_dir / "LC_MESSAGES" / f"{self.domain}.po"
            if not po_path.is_file():
                continue
            with po_path.open("rb") as fp:
                catalog = read_po(fp, locale=locale_dir.name)
            buf = BytesIO()
            write_mo(buf, catalog)
            buf.seek(0)
            translations[locale_dir.name] = gettext.GNUTranslations(buf)
        return translations


def create_i18n(default_locale: str = "en") -> PoI18n:
    return PoI18n(path=LOCALES_DIR, default_locale=default_locale, domain=DOMAIN)


def pick_locale(chosen: str | None, telegram_code: str | None, default: str) -> str:
    """The user's explicit choice, else Telegram's language_code, else the default."""
    if chosen in SUPPORTED:
        return chosen
    if telegram_code:
        base = telegram_code.lower().split("-")[0].split("_")[0]
        if base in SUPPORTED:
            return base
    return default if default in SUPPORTED else "en"
