"""A running broadcast's Stop button: the real Dispatcher and the app's own scheduler on
a manual clock. Only the creator who started it can stop it; Stop cancels every message
not yet sent (in the database), nothing is sent twice, and the status message says
stopped with its counts. A forged or stale Stop changes nothing."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramServerError
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.config import Settings
from bot.models import Job, JobStatus
from bot.scheduler import broadcast
from bot.scheduler.clock import ManualClock
from tests.integration.test_growth_messages import CLEO, OTTO, T0, creator_with_course
from tests.support.broadcasts import enroll_all, send_broadcast
from tests.support.settings import bot_settings
from tests.support.updates import Harness, tg_user

LEARNERS = [tg_user(3001 + i, f"L{i}") for i in range(5)]
NEWS = "Big news from the studio"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The worker takes two messages at a time: room to stop.
    return bot_settings(database_url, scheduler_batch=2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)  # conftest's app (so harness) runs on it


async def queue_news(h: Harness, db: AsyncSession, clock: ManualClock) -> str:
    """Cleo's broadcast to her five learners, confirmed; returns the Stop button's data."""
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    await creator_with_course(h, db, OTTO, "Pottery")
    await enroll_all(h, db, clock, cid, LEARNERS)  # their first lessons go out first
    await send_broadcast(h, CLEO, cid, NEWS)
    assert "queued for 5 learners" in h.last_text()
    return h.button("Stop")


def news_to(h: Harness) -> list[int]:
    return [int(r.chat_id) for r in h.session.of_type(SendMessage) if r.text == NEWS]


def answers(h: Harness) -> list[str]:
    return [r.text or "" for r in h.session.of_type(AnswerCallbackQuery)]


async def statuses(db: AsyncSession) -> dict[str, int]:
    db.expire_all()
    out: dict[str, int] = {}
    for job in await db.scalars(select(Job).where(Job.kind == broadcast.BROADCAST_MESSAGE)):
        out[job.status] = out.get(job.status, 0) + 1
    await db.close()
    return out


async def test_stop_halts_the_rest_and_reports_its_counts(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    h = harness
    stop = await queue_news(h, db, clock)
    await app.scheduler.run_once()  # the fan-out: five messages queued
    # The first learner blocked the bot meanwhile; the second gets it.
    h.session.add_result(
        TelegramForbiddenError(SendMessage(chat_id=LEARNERS[0].id, text="…"), "Forbidden")
    )
    await app.scheduler.run_once()  # two messages (the batch)
    assert news_to(h) == [LEARNERS[0].id, LEARNERS[1].id]
    assert await statuses(db) == {JobStatus.DONE: 2, JobStatus.PENDING: 3}

    # Another creator's press (a forged callback): politely refused, nothing changes.
    await h.press(stop, OTTO)
    assert "Only the creator who started" in answers(h)[-1]
    assert await statuses(db) == {JobStatus.DONE: 2, JobStatus.PENDING: 3}

    await h.press(stop, CLEO)
    text = h.last_text()
    assert "stopped" in text and "1 sent" in text, text
    assert "1 skipped" in text and "3 cancelled" in text, text
    assert await statuses(db) == {JobStatus.DONE: 2, JobStatus.CANCELLED: 3}

    for _ in range(4):
        clock.advance(seconds=6)
        await app.scheduler.drain()
    assert news_to(h) == [LEARNERS[0].id, LEARNERS[1].id]  # nothing more, nothing twice
    final = h.session.of_type(EditMessageText)[-1]
    assert "stopped" in final.text and "3 cancelled" in final.text
    assert final.reply_markup is None  # no Stop button left
    parent = await db.scalar(select(Job).where(Job.kind == broadcast.BROADCAST))
    assert parent is not None and parent.status == JobStatus.DONE

    # A stale press on the stopped broadcast: polite, nothing changes.
    await h.press(stop, CLEO)
    assert "nothing left to stop" in answers(h)[-1]
    assert await statuses(db) == {JobStatus.DONE: 2, JobStatus.CANCELLED: 3}


async def test_stop_before_the_fan_out_sends_nothing(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    h = harness
    stop = await queue_news(h, db, clock)
    await h.press(stop, CLEO)
    assert "5 cancelled" in h.last_text()
    for _ in range(3):
        clock.advance(seconds=6)
        await app.scheduler.drain()
    assert news_to(h) == []
    assert await statuses(db) == {}


async def test_the_progress_message_carries_the_stop_button_while_it_runs(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    h = harness
    stop = await queue_news(h, db, clock)
    await app.scheduler.run_once()  # fan-out
    # The first learner's message meets a Telegram outage: it waits for a retry, so the
    # broadcast is still running when its progress is written.
    for _ in range(4):
        h.session.add_result(
            TelegramServerError(SendMessage(chat_id=LEARNERS[0].id, text="…"), "Bad Gateway")
        )
    for _ in range(3):
        await app.scheduler.run_once()  # four sent, then the parent's progress edit
    edits = h.session.of_type(EditMessageText)
    running = [e for e in edits if "in progress" in e.text]
    assert running, [e.text for e in edits]
    markup = running[-1].reply_markup
    assert markup is not None and markup.inline_keyboard[0][0].callback_data == stop  # type: ignore[union-attr]
    for _ in range(8):  # past the retry's backoff (30 s)
        clock.advance(seconds=6)
        await app.scheduler.drain()
    assert sorted(set(news_to(h))) == [u.id for u in LEARNERS]  # (and 4 failed tries)
    final = h.session.of_type(EditMessageText)[-1]
    assert "finished" in final.text and final.reply_markup is None
    await h.press(stop, CLEO)  # finished: nothing to stop
    assert "nothing left to stop" in answers(h)[-1]
