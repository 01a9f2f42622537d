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
            "--no-location",
            "-o",
            str(pot),
            str(ROOT / "bot"),
        ],
        check=True,
    )
    with pot.open("rb") as fp:
        wanted = {m.id for m in read_po(fp) if m.id}
    with (LOCALES_DIR / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        zh = {m.id: m.string for m in read_po(fp) if m.id}
    missing = sorted(str(m) for m in wanted if not zh.get(m))  # type: ignore[call-overload]
    assert not missing, f"run `make locales` and translate: {missing}"
