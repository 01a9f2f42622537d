from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, create_i18n, pick_locale

ROOT = Path(__file__).resolve().parents[2]


def test_pick_locale() -> None:
    assert pick_locale("zh", "en", "en") == "zh"
    assert pick_locale(None, "zh-hans", "en") == "zh"
    assert pick_locale(None, "de", "en") == "en"
    assert pick_locale(None, None, "zh") == "zh"
    assert pick_locale("xx", None, "en") == "en"


def test_catalogs_load_and_translate() -> None:
    i18n = create_i18n()
    assert set(i18n.available_locales) >= {"en", "zh"}
    assert i18n.gettext("📚 Catalog", locale="zh") == "📚 课程目录"
    assert i18n.gettext("📚 Catalog", locale="en") == "📚 Catalog"


def test_every_string_in_the_code_is_translated(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-k",
            "_",
            "-k",
            "__",
            "-k",
            "gettext",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "-o",
            str(pot),
            str(ROOT / "bot"),
        ],
        check=True,
    )
    with pot.open("rb") as fp:
        wanted = {m.id for m in read_po(fp) if m.id}
    assert any(isinstance(m, tuple) for m in wanted), "ngettext's plurals were not extracted"
    with (LOCALES_DIR / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        zh = {m.id: m.string for m in read_po(fp, locale="zh") if m.id}

    def translated(string: str | tuple[str, ...] | None) -> bool:
        # A plural entry is a tuple of forms (one in Chinese): every form must be there.
        return bool(string) and all(string) if isinstance(string, tuple) else bool(string)

    missing = sorted(str(m) for m in wanted if not translated(zh.get(m)))  # type: ignore[call-overload]
    assert not missing, f"run `make locales` and translate: {missing}"


def test_plurals_in_both_languages() -> None:
    i18n = create_i18n()
    day = ("{n} day", "{n} days")
    assert i18n.gettext(*day, 1, locale="en").format(n=1) == "1 day"
    assert i18n.gettext(*day, 2, locale="en").format(n=2) == "2 days"
    assert i18n.gettext(*day, 0, locale="en").format(n=0) == "0 days"
    assert i18n.gettext(*day, 1, locale="zh").format(n=1) == "1 天"
    assert i18n.gettext(*day, 2, locale="zh").format(n=2) == "2 天"
    sale = ("{n} sale", "{n} sales")
    assert i18n.gettext(*sale, 1, locale="en").format(n=1) == "1 sale"
    assert i18n.gettext(*sale, 5, locale="en").format(n=5) == "5 sales"
