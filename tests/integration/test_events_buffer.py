"""The funnel-event writer loses nothing when the bot stops, even mid-flush."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Event, EventKind
from bot.services.events import EventBuffer


async def count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count(Event.id))) or 0)


async def test_stop_writes_what_is_buffered_and_what_is_in_flight(
    engine: object, db: AsyncSession
) -> None:
    from sqlalchemy.ext.asyncio import AsyncEngine

    assert isinstance(engine, AsyncEngine)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    events = EventBuffer(max_buffer=10)
    events.start(sessionmaker, interval=0.01)
    for i in range(25):
        events.record(EventKind.SEARCH, data={"q": f"q{i}"})
    await asyncio.sleep(0)  # the writer wakes and starts a flush...
    # ...which stop lets finish: cancelling it mid-INSERT lost rows, or hung SQLite.
    await asyncio.wait_for(events.stop(sessionmaker), timeout=20)
    assert await count(db) == 25
    assert len(events) == 0
