"""A user's first contact: created once, and the loser of a race reads the winner's row."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.config import Settings
from bot.db import create_sessionmaker
from bot.models import User
from bot.services.users import TelegramProfile, upsert_user

ANN = TelegramProfile(id=501, first_name="Ann", username="ann")


async def _winner_commits_first(engine: AsyncEngine, session: AsyncSession) -> None:
    """The other update's insert lands between this session's lookup and its insert."""
    real_get = session.get

    async def get(*args: Any, **kwargs: Any) -> Any:
        session.get = real_get  # type: ignore[method-assign]
        async with create_sessionmaker(engine)() as other:
            await upsert_user(other, TelegramProfile(id=ANN.id, first_name="Winner"))
            await other.commit()
        return None  # what this session's lookup saw, a moment before

    session.get = get  # type: ignore[method-assign]


@pytest.mark.parametrize("first_in_transaction", [True, False])
async def test_the_loser_of_a_first_contact_race_reads_the_winners_row(
    engine: AsyncEngine, first_in_transaction: bool
) -> None:
    async with create_sessionmaker(engine)() as session:
        if not first_in_transaction:
            # Work already in the transaction (seeding, say) must survive the lost race.
            await session.execute(select(1))
            session.add(User(id=502, first_name="C", interests=[], referral_code="c502"))
        await _winner_commits_first(engine, session)
        user, created = await upsert_user(session, ANN)
        assert not created
        assert (user.first_name, user.username) == ("Ann", "ann")  # brought up to date
        await session.commit()
    async with create_sessionmaker(engine)() as check:
        row = await check.get(User, ANN.id)
        assert row is not None and row.username == "ann"
        kept = await check.get(User, 502)
        assert (kept is not None) == (not first_in_transaction)


async def test_first_contact_creates_the_user_once(db: AsyncSession) -> None:
    user, created = await upsert_user(db, ANN)
    assert created and user.referral_code
    await db.commit()
    again, created = await upsert_user(db, ANN)
    assert again is user and not created


async def test_first_contact_and_last_seen_follow_the_bots_clock(
    settings: Settings, engine: AsyncEngine, db: AsyncSession
) -> None:
    from datetime import UTC, datetime

    from bot.app import build_app
    from bot.scheduler.clock import ManualClock
    from tests.support.recording import RecordingSession
    from tests.support.updates import Harness, settle, tg_user

    clock = ManualClock(datetime(2030, 5, 1, 9, 0, tzinfo=UTC))
    app = build_app(settings, session=RecordingSession(), engine=engine, clock=clock)
    try:
        harness, ann = Harness(app), tg_user(503)
        await harness.send("/help", ann)
        clock.advance(hours=2)
        await harness.send("/help", ann)  # the cached row, seen again two hours later
    finally:
        await settle(app)
    row = await db.get(User, ann.id)
    assert row is not None
    assert row.created_at.replace(tzinfo=UTC) == datetime(2030, 5, 1, 9, 0, tzinfo=UTC)
    assert row.last_seen_at.replace(tzinfo=UTC) == datetime(2030, 5, 1, 11, 0, tzinfo=UTC)
