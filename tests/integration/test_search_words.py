"""Search by words on the demo catalog, through the real Dispatcher: typos, the
learner's language first, and bad input answered politely."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerInlineQuery
from aiogram.types import InlineQuery, InlineQueryResultArticle, Update
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, User
from bot.services.seed import seed_demo
from tests.support.updates import Harness, tg_user


@pytest.fixture
async def demo(db: AsyncSession) -> None:
    await seed_demo(db)
    await db.commit()


def result_titles(harness: Harness) -> list[str]:
    """The course buttons of the last answer, in order (the last row is Home)."""
    markup = harness.last_markup()
    assert markup is not None
    return [row[0].text for row in markup.inline_keyboard[:-1]]


async def test_search_pyhton_finds_python_for_absolute_beginners(
    harness: Harness, demo: None
) -> None:
    await harness.send("/search pyhton", tg_user(3001))
    titles = result_titles(harness)
    assert any("Python for Absolute Beginners" in t for t in titles[:2]), titles


async def test_a_half_typed_title_and_a_wrong_chinese_character(
    harness: Harness, demo: None
) -> None:
    ann = tg_user(3002)
    await harness.send("machine lea", ann)
    assert "Machine Learning Foundations" in result_titles(harness)[0]
    await harness.send("机器学系", ann)  # 习 → 系: one wrong character
    assert "机器学习基础" in result_titles(harness)[0]


async def test_the_learners_language_comes_first(harness: Harness, demo: None) -> None:
    await harness.send("/search python", tg_user(3003, "Ann", "en"))
    english = result_titles(harness)
    await harness.send("/search python", tg_user(3004, "Li", "zh-hans"))
    chinese = result_titles(harness)
    assert "Python 编程入门" in chinese[0]
    assert "Python 编程入门" not in english[0]
    assert any("Python 编程入门" in t for t in english)  # still found, further down
    # A clearly better match in the other language still leads: the exact title.
    await harness.send("/search Python for Absolute Beginners", tg_user(3004, "Li", "zh-hans"))
    assert "Python for Absolute Beginners" in result_titles(harness)[0]


async def test_inline_search_is_in_the_learners_language_and_personal(
    harness: Harness, db: AsyncSession, demo: None
) -> None:
    db.add(User(id=3005, first_name="Li", referral_code="r3005", language="zh"))
    await db.commit()
    query = InlineQuery(id="q18", from_user=tg_user(3005), query="python", offset="")
    await harness.feed(Update(update_id=991801, inline_query=query))
    answer = harness.session.of_type(AnswerInlineQuery)[-1]
    first = answer.results[0]
    assert isinstance(first, InlineQueryResultArticle)
    assert "Python 编程入门" in first.title
    assert answer.is_personal


BAD_QUERIES = [
    "   ",
    "\t\n",
    "x" * 1000,
    "python " * 150,
    "🐍🐍🐍",
    "🔥",
    "Python 编程 пайтон ☕",
    "'; DROP TABLE courses; --",
    "1' OR '1'='1",
    ".*+?[](){}^$|\\",
    "(((((((((a*)*)*)*)*)*)*)*)*)",
    "%_%",
    "\u200b\u200b",
    "ＰＹＴＨＯＮ",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
async def test_bad_queries_get_a_polite_answer(
    harness: Harness, db: AsyncSession, demo: None, query: str
) -> None:
    courses = await db.scalar(select(func.count()).select_from(Course))
    await harness.send(f"/search {query}", tg_user(3006))
    reply = harness.last_text()
    assert reply.startswith(("🔎", "Nothing found", "Send me a few words")), reply
    assert len(reply) < 4096
    await harness.send(query, tg_user(3006))  # as plain text too
    assert harness.last_text()
    query_update = InlineQuery(id="qb", from_user=tg_user(3006), query=query, offset="")
    await harness.feed(Update(update_id=991802, inline_query=query_update))
    assert harness.session.of_type(AnswerInlineQuery)
    db.expire_all()
    assert await db.scalar(select(func.count()).select_from(Course)) == courses
