"""The learner's first minutes through the real Dispatcher, checked in the database."""

from __future__ import annotations

from aiogram.methods import AnswerCallbackQuery, SendMessage, SetMyCommands
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App, setup_commands
from bot.keyboards.callbacks import CourseCB, PageCB
from bot.models import Course, Entitlement, Event, EventKind, ProductKind, User
from bot.services.seed import seed_demo
from tests.support.updates import Harness, sticker_update, tg_user


async def seeded(db: AsyncSession) -> None:
    await seed_demo(db)
    await db.commit()


async def test_start_language_interests_onboarding(harness: Harness, db: AsyncSession) -> None:
    ann = tg_user(1001, "Ann", "en")
    await harness.send("/start", ann)
    assert "Welcome to Lyceum, Ann" in harness.last_text()
    await harness.click("中文", ann)
    assert "你想学什么" in harness.last_text()
    await harness.click("编程", ann)
    assert "✅ 编程" in [b.text for row in harness.last_markup().inline_keyboard for b in row]
    await harness.click("数据", ann)
    await harness.click("完成", ann)
    assert "设置完成" in harness.last_text()

    user = await db.get(User, 1001)
    assert user is not None
    assert user.language == "zh"
    assert user.onboarded
    assert user.interests == ["programming", "data"]

    harness.session.clear()
    await harness.send("/start", ann)
    assert "你好，Ann" in harness.last_text()


async def test_telegram_language_code_is_used_until_the_user_chooses(harness: Harness) -> None:
    await harness.send("/start", tg_user(1002, "Li", "zh-hans"))
    assert "欢迎来到 Lyceum" in harness.last_text()


async def test_catalog_pages_and_card_with_back(harness: Harness, db: AsyncSession) -> None:
    await seeded(db)
    ann = tg_user()
    await harness.send("/catalog", ann)
    assert "page 1 of" in harness.last_text()
    await harness.click("▶", ann)
    assert "page 2 of" in harness.last_text()
    first = harness.last_markup().inline_keyboard[0][0]
    await harness.press(first.callback_data or "", ann)
    card = harness.last_text()
    assert first.text.rstrip("…") in card
    assert "Price:" in card and "⭐" in card and "Lessons:" in card
    await harness.click("Back", ann)
    assert "page 2 of" in harness.last_text()
    # Navigation edits the same message rather than sending new ones.
    assert len(harness.session.of_type(SendMessage)) == 1


async def test_view_events_are_buffered_then_flushed(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    await seeded(db)
    course_id = await db.scalar(select(Course.id).limit(1))
    await harness.press(CourseCB(id=course_id).pack(), tg_user())
    assert await db.scalar(select(func.count(Event.id))) == 0
    assert await app.events.flush(app.sessionmaker) == 1
    kinds = list(await db.scalars(select(Event.kind)))
    assert kinds == [EventKind.VIEW]


async def test_deep_link_opens_card_and_referral_is_recorded(
    harness: Harness, db: AsyncSession
) -> None:
    await seeded(db)
    course = await db.scalar(select(Course).where(Course.title == "SQL for Analysts"))
    assert course is not None
    await harness.send(f"/start c_{course.id}", tg_user(1001))
    assert "SQL for Analysts" in harness.last_text()

    referrer = await db.get(User, 1001)
    assert referrer is not None
    code = referrer.referral_code
    await harness.send(f"/start r_{code}", tg_user(1003, "Bo"))
    await harness.send(f"/start r_{code}", tg_user(1003, "Bo"))
    db.expire_all()
    bo = await db.get(User, 1003)
    assert bo is not None and bo.referred_by == 1001
    # Referring oneself is ignored.
    await harness.send(f"/start r_{code}", tg_user(1001))
    db.expire_all()
    assert (await db.get(User, 1001)).referred_by is None  # type: ignore[union-attr]


async def test_search_forgives_typos_in_english_and_chinese(
    harness: Harness, db: AsyncSession
) -> None:
    await seeded(db)
    ann = tg_user()
    await harness.send("pyhton begginers", ann)
    assert "Python for Absolute Beginners" in harness.last_text()
    await harness.send("/search 数据分折", ann)
    assert "数据分析实战" in harness.last_text()
    await harness.send("/search quantum basket weaving zzz", ann)
    assert "Nothing found" in harness.last_text()
    assert harness.button("Catalog")


async def test_library_empty_then_owned(harness: Harness, db: AsyncSession) -> None:
    await seeded(db)
    ann = tg_user()
    await harness.send("/my", ann)
    assert "library is empty" in harness.last_text()
    course = await db.scalar(select(Course).limit(1))
    assert course is not None
    db.add(Entitlement(user_id=ann.id, product_kind=ProductKind.COURSE, product_id=course.id))
    await db.commit()
    await harness.send("/my", ann)
    assert course.title in harness.last_text()
    await harness.press(CourseCB(id=course.id).pack(), ann)
    assert "You own this course" in harness.last_text()


async def test_help_terms_paysupport(harness: Harness) -> None:
    ann = tg_user()
    for command, expected in (
        ("/help", "/paysupport"),
        ("/terms", "Terms of sale"),
        ("/paysupport", "Refunds go back the way you paid"),
    ):
        await harness.send(command, ann)
        assert expected in harness.last_text()


async def test_commands_are_set_per_language(app: App, harness: Harness) -> None:
    await setup_commands(app)
    calls = harness.session.of_type(SetMyCommands)
    by_lang = {c.language_code: [cmd.description for cmd in c.commands] for c in calls}
    assert "浏览课程" in by_lang["zh"]
    assert "Browse courses" in by_lang["en"]


async def test_unknown_and_non_text_input_get_polite_replies(
    harness: Harness, db: AsyncSession
) -> None:
    ann = tg_user()
    await harness.send("/frobnicate", ann)
    assert "don't know that command" in harness.last_text()
    await harness.feed(sticker_update(ann))
    assert "I understand text and buttons" in harness.last_text()
    await harness.send("x" * 4096, ann)
    assert harness.last_text()  # answered, no exception


async def test_forged_stale_and_unpublished_callbacks_change_nothing(
    harness: Harness, db: AsyncSession
) -> None:
    await seeded(db)
    draft = await db.scalar(select(Course).limit(1))
    assert draft is not None
    draft.published = False
    await db.commit()
    ann = tg_user()
    await harness.send("/start", ann)
    before = await db.get(User, ann.id)
    assert before is not None
    state = (before.language, list(before.interests), before.onboarded)

    for data in (
        "c:not-a-number:x",
        CourseCB(id=999_999).pack(),
        CourseCB(id=draft.id).pack(),
        "l:xx",
        "i:no-such-topic",
        "z" * 200,
        "",
    ):
        harness.session.clear()
        await harness.press(data, ann)
        answers = harness.session.of_type(AnswerCallbackQuery)
        assert answers and answers[-1].text, data
        assert not harness.session.of_type(SendMessage), data

    db.expire_all()
    after = await db.get(User, ann.id)
    assert after is not None
    assert (after.language, list(after.interests), after.onboarded) == state
    # A page far past the end is clamped to the last page, not an error.
    await harness.press(PageCB(page=10_000).pack(), ann)
    assert "page" in harness.last_text()


async def test_no_filter_runs_in_a_thread(app: App) -> None:
    # aiogram runs sync filters (magic F, a bare State) through asyncio.to_thread on every
    # update that reaches them: a third of the hot path's throughput (DESIGN.md).
    slow = [
        (router.name, name, handler.callback.__name__)
        for router in app.dp.chain_tail
        for name, observer in router.observers.items()
        for handler in observer.handlers
        for f in [*(observer._handler.filters or []), *(handler.filters or [])]
        if not f.awaitable
    ]
    assert slow == []
