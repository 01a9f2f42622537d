"""Recommendations, similar courses and inline search through the real Dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.methods import AnswerInlineQuery
from aiogram.types import InlineQuery, InlineQueryResultArticle, Update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import MenuAction, MenuCB, SimilarCB
from bot.models import Course, Creator, Entitlement, ProductKind, User
from bot.services.recommendations import (
    load_interactions,
    recommend_for,
    recommendations,
    search_courses,
    similar_to,
)
from tests.support.updates import Harness, tg_user

COURSES = [
    # (title, tags, language, published)
    ("Python for Beginners", ["python", "programming"], "en", True),
    ("Advanced Python Patterns", ["python", "programming"], "en", True),
    ("Web Apps with Django and Python", ["python", "web"], "en", True),
    ("UI Design Basics", ["design", "ui"], "en", True),
    ("Figma for UI Designers", ["design", "ui", "figma"], "en", True),
    ("Guitar Chords in 30 Days", ["music", "guitar"], "en", True),
    ("机器学习入门", ["数据", "机器学习"], "zh", True),
    ("数据分析实战", ["数据", "数据分析"], "zh", True),
    ("Python Secrets (draft)", ["python", "programming"], "en", False),
]


@pytest.fixture
async def catalog(app: App, db: AsyncSession) -> AsyncIterator[dict[str, int]]:
    owner = User(id=7, first_name="Teacher", referral_code="t7")
    db.add(owner)
    await db.flush()
    creator = Creator(user_id=owner.id, display_name="Teacher")
    db.add(creator)
    await db.flush()
    ids: dict[str, int] = {}
    for title, tags, language, published in COURSES:
        course = Course(
            creator_id=creator.id,
            title=title,
            description=f"A course about {' and '.join(tags)}.",
            tags=tags,
            language=language,
            price_minor=1000,
            stars_price=50,
            published=published,
        )
        db.add(course)
        await db.flush()
        ids[title] = course.id
    await db.commit()
    yield ids
    await recommendations(app.search).close()


async def learner(db: AsyncSession, user_id: int, interests: list[str]) -> None:
    db.add(User(id=user_id, first_name="Ann", referral_code=f"r{user_id}", interests=interests))
    await db.commit()


async def own(db: AsyncSession, user_id: int, *course_ids: int) -> None:
    for course_id in course_ids:
        db.add(Entitlement(user_id=user_id, product_kind=ProductKind.COURSE, product_id=course_id))
    await db.commit()


async def test_cold_start_from_onboarding_interests(
    app: App, db: AsyncSession, catalog: dict[str, int]
) -> None:
    await learner(db, 2001, ["programming"])
    items = await recommend_for(db, 2001, 3, catalog=app.search)
    assert {i.title for i in items} <= {
        "Python for Beginners",
        "Advanced Python Patterns",
        "Web Apps with Django and Python",
    }
    await learner(db, 2002, ["data"])
    top = await recommend_for(db, 2002, 2, catalog=app.search)
    assert {i.title for i in top} == {"机器学习入门", "数据分析实战"}


async def test_owned_and_unpublished_courses_are_never_recommended(
    app: App, db: AsyncSession, catalog: dict[str, int]
) -> None:
    await learner(db, 2003, ["programming"])
    await own(db, 2003, catalog["Python for Beginners"])
    items = await recommend_for(db, 2003, 20, catalog=app.search)
    titles = {i.title for i in items}
    assert "Python for Beginners" not in titles
    assert "Python Secrets (draft)" not in titles
    assert titles  # still something to suggest
    similar = await similar_to(
        db, catalog["Advanced Python Patterns"], 10, catalog=app.search, user_id=2003
    )
    assert "Python for Beginners" not in {i.title for i in similar}


async def test_purchases_feed_the_copurchase_signal(
    app: App, db: AsyncSession, catalog: dict[str, int]
) -> None:
    for user_id in (3001, 3002, 3003):
        await learner(db, user_id, [])
        await own(db, user_id, catalog["Guitar Chords in 30 Days"], catalog["UI Design Basics"])
    signals = await load_interactions(db)
    assert len(signals) == 6
    await learner(db, 3004, [])
    await own(db, 3004, catalog["Guitar Chords in 30 Days"])
    items = await recommend_for(db, 3004, 1, catalog=app.search)
    assert [i.title for i in items] == ["UI Design Basics"]


async def test_recommended_for_you_menu_entry(
    harness: Harness, db: AsyncSession, catalog: dict[str, int]
) -> None:
    ann = tg_user(2004)
    await learner(db, 2004, ["design"])
    await harness.press(MenuCB(action=MenuAction.RECOMMEND).pack(), ann)
    text = harness.last_text()
    assert "Recommended for you" in text
    assert "UI Design Basics" in text or "Figma for UI Designers" in text
    # Each suggestion opens its card.
    await harness.click("Design", ann)
    assert "Price:" in harness.last_text()


async def test_recommended_in_chinese(
    harness: Harness, db: AsyncSession, catalog: dict[str, int]
) -> None:
    li = tg_user(2005, "Li", "zh-hans")
    await learner(db, 2005, ["data"])
    await harness.send("/foryou", li)
    assert "为你推荐" in harness.last_text()
    assert "机器学习入门" in harness.last_text()


async def test_similar_courses_button(
    harness: Harness, db: AsyncSession, catalog: dict[str, int]
) -> None:
    ann = tg_user(2006)
    await harness.press(SimilarCB(id=catalog["Python for Beginners"]).pack(), ann)
    text = harness.last_text()
    assert "Similar courses" in text
    assert "Advanced Python Patterns" in text
    assert "Python for Beginners" not in text.split("\n", 1)[1]
    assert "Python Secrets" not in text


async def test_catalog_change_refits_in_the_background(
    app: App, db: AsyncSession, catalog: dict[str, int]
) -> None:
    await learner(db, 2007, ["programming"])
    before = await recommend_for(db, 2007, 10, catalog=app.search)
    assert "Python Secrets (draft)" not in {i.title for i in before}
    draft = await db.get(Course, catalog["Python Secrets (draft)"])
    assert draft is not None
    draft.published = True
    await db.commit()
    app.search.invalidate()
    holder = recommendations(app.search)
    # Handlers keep getting answers from the old model while the new one is fitted...
    await recommend_for(db, 2007, 10, catalog=app.search)
    await app.search.snapshot()  # the catalog's own rebuild (also in the background)
    if app.search._refresh is not None:
        await app.search._refresh
    await recommend_for(db, 2007, 10, catalog=app.search)
    await holder.wait_fresh()
    after = await recommend_for(db, 2007, 10, catalog=app.search)
    assert "Python Secrets (draft)" in {i.title for i in after}


async def test_search_courses_forgives_typos(app: App, catalog: dict[str, int]) -> None:
    hits = await search_courses("pyhton begginers", catalog=app.search)
    assert hits[0].title == "Python for Beginners"
    assert (await search_courses("机气学习", catalog=app.search))[0].title == "机器学习入门"


async def test_inline_query_shares_a_deep_link(
    harness: Harness, db: AsyncSession, catalog: dict[str, int]
) -> None:
    query = InlineQuery(id="q1", from_user=tg_user(2008), query="desgin", offset="")
    await harness.feed(Update(update_id=990001, inline_query=query))
    answers = harness.session.of_type(AnswerInlineQuery)
    assert len(answers) == 1
    results = answers[0].results
    assert results
    first = results[0]
    assert isinstance(first, InlineQueryResultArticle)
    assert "Design" in first.title
    course_id = int(first.id[1:])
    link = f"https://t.me/lyceum_test_bot?start=c_{course_id}_i"
    assert link in first.input_message_content.message_text  # type: ignore[union-attr]
    assert first.reply_markup is not None
    assert first.reply_markup.inline_keyboard[0][0].url == link


async def test_empty_inline_query_suggests_courses(
    harness: Harness, db: AsyncSession, catalog: dict[str, int]
) -> None:
    await learner(db, 2009, ["music"])
    query = InlineQuery(id="q2", from_user=tg_user(2009), query="", offset="")
    await harness.feed(Update(update_id=990002, inline_query=query))
    answer = harness.session.of_type(AnswerInlineQuery)[-1]
    assert answer.is_personal
    assert answer.results[0].title == "Guitar Chords in 30 Days"  # type: ignore[union-attr]


async def test_suggestion_rows_for_other_screens(
    app: App, db: AsyncSession, catalog: dict[str, int]
) -> None:
    from bot.handlers.recommend import suggestion_rows
    from bot.keyboards.callbacks import CourseCB

    await learner(db, 2010, ["programming"])
    await own(db, 2010, catalog["Python for Beginners"])
    # Suggestions never wait for a first fit: fit first, as a running bot has.
    from bot.services.recommendations import recommendations

    assert await suggestion_rows(db, 2011, app.search, k=2) == []  # nothing fitted yet
    await recommendations(app.search).fitted()
    rows = await suggestion_rows(db, 2010, app.search, k=2)
    assert len(rows) == 2
    ids = {CourseCB.unpack(row[0].callback_data or "").id for row in rows}
    assert catalog["Python for Beginners"] not in ids
