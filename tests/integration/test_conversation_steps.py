"""Two fast messages in one conversation step: the second waits for the first (events
isolation per chat and user) and finds the step done, so a lesson or a broadcast is
made once and nothing fails. Fed concurrently through the real Dispatcher, with the
steps in memory and in Redis (several workers share one lock there)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisEventIsolation
from aiogram.types import InlineKeyboardMarkup
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app, create_events_isolation, create_fsm_storage
from bot.config import Settings
from bot.middlewares.isolation import KeyedLocks
from bot.models import Job, Lesson
from bot.scheduler.broadcast import BROADCAST
from tests.support.payments import CREATOR_USER, make_course, tg
from tests.support.recording import RecordingSession
from tests.support.updates import Harness, settle

MAYA = tg(CREATOR_USER, "Maya")


@pytest.fixture(params=["memory", "redis"])
async def app(
    request: pytest.FixtureRequest, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[App]:
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        settings = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    app = build_app(settings, session=RecordingSession(), engine=engine)
    yield app
    await settle(app)
    await app.dp.storage.close()


async def twice_at_once(harness: Harness, first: str, second: str) -> None:
    await asyncio.gather(harness.send(first, MAYA), harness.send(second, MAYA))


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_two_fast_messages_make_one_lesson(
    harness: Harness, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    _, course_id = await make_course(db)
    for round_ in range(3):
        await harness.send(f"/addlesson {course_id}", MAYA)
        await twice_at_once(harness, f"Lesson {round_} part one", f"Lesson {round_} part two")
    lessons = list(await db.scalars(select(Lesson).order_by(Lesson.position)))
    assert [x.text.split()[:2] for x in lessons] == [
        ["Lesson", "0"],
        ["Lesson", "1"],
        ["Lesson", "2"],
    ]
    assert sum("added as number" in t for t in harness.session.texts()) == 3
    assert errors(caplog) == []


async def test_two_fast_messages_make_one_broadcast(
    harness: Harness, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    _, course_id = await make_course(db)
    await harness.send(f"/broadcast {course_id}", MAYA)
    await harness.click("Learners", MAYA)
    await twice_at_once(harness, "Live session tonight at 8", "Live session tonight at 9")
    # The second message is told to press a button: the confirmation is the one before.
    assert harness.last_text() == "Press a button above, or /cancel to stop."
    (confirm,) = [
        r.reply_markup
        for r in harness.session.requests
        if isinstance(getattr(r, "reply_markup", None), InlineKeyboardMarkup)
        and "Ready to send" in (getattr(r, "text", "") or "")
    ]
    assert isinstance(confirm, InlineKeyboardMarkup)
    send = confirm.inline_keyboard[0][0].callback_data or ""
    await asyncio.gather(harness.press(send, MAYA), harness.press(send, MAYA))
    count = select(func.count()).select_from(Job).where(Job.kind == BROADCAST)
    assert await db.scalar(count) == 1
    assert sum("Broadcast queued" in t for t in harness.session.texts()) == 1
    assert errors(caplog) == []


async def test_a_step_whose_data_is_gone_says_so(
    harness: Harness, app: App, db: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    """State and data are two keys (two Redis entries): a step that lost its data is
    cancelled, never a KeyError."""
    await make_course(db)
    key = StorageKey(bot_id=app.bot.id, chat_id=MAYA.id, user_id=MAYA.id)
    for state, text in (("LessonInput:add", "A lesson"), ("BroadcastInput:text", "News")):
        await app.dp.storage.set_state(key, state)
        await app.dp.storage.set_data(key, {})
        await harness.send(text, MAYA)
        assert harness.last_text() == "Cancelled."
        assert await app.dp.storage.get_state(key) is None
    assert errors(caplog) == []


async def test_one_lock_per_chat_and_user_shared_by_workers(
    settings: Settings, redis_url: str
) -> None:
    """With REDIS_URL every worker takes the same Redis lock; without, one process's."""
    assert isinstance(create_events_isolation(create_fsm_storage(settings)), KeyedLocks)
    shared = settings.model_copy(update={"redis_url": SecretStr(redis_url)})
    one_storage, other_storage = create_fsm_storage(shared), create_fsm_storage(shared)
    one = create_events_isolation(one_storage)
    other = create_events_isolation(other_storage)
    assert isinstance(one, RedisEventIsolation) and isinstance(other, RedisEventIsolation)
    key = StorageKey(bot_id=42, chat_id=7, user_id=7)
    order: list[str] = []

    async def step(isolation: RedisEventIsolation, name: str) -> None:
        async with isolation.lock(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    try:
        await asyncio.gather(step(one, "a"), step(other, "b"))
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
        assert isinstance(one.key_builder, DefaultKeyBuilder)
    finally:
        await one_storage.close()
        await other_storage.close()
