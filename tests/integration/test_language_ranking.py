"""Language-aware lists on the demo catalog, through the real Dispatcher: an English and
a Chinese learner each see courses in their language first (catalog, /foryou, similar
courses, search), "both languages" in the settings brings back the plain order, and a
query in one language finds the other language's courses on the same subject."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery, AnswerInlineQuery
from aiogram.types import InlineQuery, InlineQueryResultArticle, Update
from aiogram.types import User as TgUser
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import BothLangCB, MenuAction, MenuCB, SimilarCB
from bot.models import Course, User
from bot.services.recommendations import recommendations
from bot.services.seed import seed_demo
from tests.support.updates import Harness, tg_user

EN = 3101
ZH = 3102


@pytest.fixture
async def demo(db: AsyncSession) -> dict[str, str]:
    """Title → language of every demo course."""
    await seed_demo(db)
    await db.commit()
    rows = await db.execute(select(Course.title, Course.language))
    return {title: language for title, language in rows}


def ann() -> TgUser:
    return tg_user(EN, "Ann", "en")


def li() -> TgUser:
    return tg_user(ZH, "Li", "zh-hans")


def titles(harness: Harness) -> list[str]:
    """Course buttons of the last answer, in order (rows without a course are skipped)."""
    markup = harness.last_markup()
    assert markup is not None
    return [
        b.text
        for row in markup.inline_keyboard
        for b in row
        if (b.callback_data or "").startswith("c:")
    ]


def languages(shown: list[str], demo: dict[str, str]) -> list[str]:
    out = []
    for label in shown:
        matches = [lang for title, lang in demo.items() if label.rstrip("…") in title]
        assert matches, label
        out.append(matches[0])
    return out


async def test_catalog_first_page_is_in_the_learners_language(
    harness: Harness, demo: dict[str, str]
) -> None:
    await harness.send("/catalog", ann())
    assert set(languages(titles(harness), demo)) == {"en"}
    await harness.send("/catalog", li())
    chinese = titles(harness)
    assert set(languages(chinese, demo)) == {"zh"}
    assert "🇨🇳" in harness.last_text()
    # The next page goes on with the rest of the Chinese courses, then the English ones.
    await harness.press("p:1", li())
    assert languages(titles(harness), demo)[0] == "zh"


async def test_foryou_in_the_learners_language(harness: Harness, demo: dict[str, str]) -> None:
    await harness.send("/start", ann())
    await harness.send("/foryou", ann())
    assert languages(titles(harness), demo)[:3] == ["en"] * 3
    await harness.send("/start", li())
    await harness.send("/foryou", li())
    assert languages(titles(harness), demo)[:3] == ["zh"] * 3


async def test_similar_courses_in_the_learners_language(
    harness: Harness, db: AsyncSession, demo: dict[str, str]
) -> None:
    python = await db.scalar(
        select(Course.id).where(Course.title == "Python for Absolute Beginners")
    )
    assert python is not None
    await harness.press(SimilarCB(id=python).pack(), ann())
    english = languages(titles(harness), demo)
    await harness.press(SimilarCB(id=python).pack(), li())
    chinese = languages(titles(harness), demo)

    assert english[0] == "en"
    # Python 编程入门 is the model's fifth: no English course ranked more than 5 places above it.
    assert chinese[0] == "zh"
    assert english.count("zh") == 0  # for Ann, four English courses ranked above it


async def test_cross_language_search(harness: Harness, demo: dict[str, str]) -> None:
    # A Chinese query finds the English course on the subject, and the reverse.
    await harness.send("/search 机器学习", li())
    shown = titles(harness)
    assert "机器学习基础" in shown[0]
    assert any("Machine Learning Foundations" in t for t in shown), shown
    assert "🇬🇧" in harness.last_text()  # marked with its language
    await harness.send("/search 机器学习", ann())
    assert any("Machine Learning Foundations" in t for t in titles(harness))
    await harness.send("/search machine learning", ann())
    shown = titles(harness)
    assert "Machine Learning Foundations" in shown[0]
    assert any("机器学习基础" in t for t in shown), shown
    assert "🇨🇳" in harness.last_text()
    await harness.send("/search personal finance", ann())
    assert any("个人理财入门" in t for t in titles(harness))


async def test_search_in_the_learners_language(harness: Harness, demo: dict[str, str]) -> None:
    await harness.send("/search python", li())
    assert "Python 编程入门" in titles(harness)[0]
    await harness.send("/search python", ann())
    assert languages(titles(harness), demo)[0] == "en"


async def test_both_languages_setting(
    harness: Harness, db: AsyncSession, demo: dict[str, str]
) -> None:
    await harness.send("/catalog", li())
    first_zh = titles(harness)
    # Settings → language: the switch, then the plain order (by id: English first here).
    await harness.press(MenuCB(action=MenuAction.LANGUAGE).pack(), li())
    await harness.click("两种语言", li())
    assert harness.button("✅ 两种语言") == BothLangCB(mode="mine").pack()
    user = await db.get(User, ZH, populate_existing=True)
    assert user is not None and user.both_languages
    await harness.send("/catalog", li())
    plain = titles(harness)
    assert plain != first_zh
    assert languages(plain, demo)[0] == "en"
    # Search: the plain relevance order, the same as for anyone without a preference.
    await harness.send("/search python", li())
    assert "Python for Absolute Beginners" in titles(harness)[0]
    # Switched back: their language first again.
    await harness.press(BothLangCB(mode="mine").pack(), li())
    await harness.send("/catalog", li())
    assert titles(harness) == first_zh


async def test_a_forged_switch_changes_nothing(harness: Harness, db: AsyncSession) -> None:
    await harness.send("/start", li())
    await harness.press("lb:everything", li())
    alerts = [a.text for a in harness.session.of_type(AnswerCallbackQuery) if a.show_alert]
    assert alerts and alerts[-1], "a forged switch gets a polite alert"
    user = await db.get(User, ZH, populate_existing=True)
    assert user is not None and not user.both_languages


async def test_inline_suggestions_and_flag(
    harness: Harness, db: AsyncSession, demo: dict[str, str]
) -> None:
    db.add(User(id=3105, first_name="Li", referral_code="r3105", language="zh"))
    await db.commit()
    query = InlineQuery(id="q31", from_user=tg_user(3105), query="", offset="")
    await harness.feed(Update(update_id=993101, inline_query=query))
    answer = harness.session.of_type(AnswerInlineQuery)[-1]
    first = answer.results[0]
    assert isinstance(first, InlineQueryResultArticle)
    assert demo[first.title] == "zh"
    assert (first.description or "").startswith("🇨🇳")


async def test_first_suggestions_after_onboarding(
    harness: Harness, app: App, demo: dict[str, str]
) -> None:
    # The model is fitted, as in a running bot (suggestions never wait for a first fit).
    await recommendations(app.search).fitted()
    for who, code in ((tg_user(3107, "Li", None), "zh"), (tg_user(3108, "Ann", None), "en")):
        await harness.send("/start", who)
        await harness.press(f"l:{code}", who)
        await harness.press("i:data", who)
        await harness.press("i:", who)  # done
        shown = languages(titles(harness), demo)
        assert shown and shown[0] == code, (code, shown)
