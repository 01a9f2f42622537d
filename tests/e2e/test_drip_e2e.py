"""Drip with the real bot (`python -m bot run`, its scheduler inside) over the sandbox:
a creator builds a course in chat, learners get lesson 1 at once, Done releases the next,
quiet hours hold a lesson back, a schedule edit reaches enrolled learners, a learner who
blocked the bot is paused and resumed, and a broadcast reaches everyone.

A second bot runs on a clock the test moves (CLOCK_OFFSET_FILE): lesson 2 arrives when
the bot's clock reaches its day, and a lesson due in the learner's quiet hours waits till
morning."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.db import create_engine, create_sessionmaker
from bot.models import Course, Enrollment, Lesson, ProductKind
from bot.services import access, drip
from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxUser
from sandbox.demo import BotProcess
from tests.e2e.chat import build_course, say
from tests.e2e.conftest import start_bot

CREATOR_ID = 7000001  # ADMIN_IDS of the e2e bot


@pytest.fixture
async def polling_bot(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    yield bot
    await bot.stop()


class BotClock:
    """The clock of the bot process (CLOCK_OFFSET_FILE): the test says what time it is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, when: datetime) -> None:
        # Renamed over, so the bot never reads half a write.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{(when - datetime.now(UTC)).total_seconds():+.3f}\n")
        os.replace(tmp, self.path)


# The bot's clock starts at 10:00 UTC tomorrow: quiet hours (22:00-08:00 by default) and
# days are then the same whenever the test runs.
BOT_START = datetime.combine(
    datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC
) + timedelta(hours=10)


@pytest.fixture
def bot_clock(tmp_path: Path) -> BotClock:
    clock = BotClock(tmp_path / "clock-offset")
    clock.set(BOT_START)
    return clock


@pytest.fixture
async def clocked_bot(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path, bot_clock: BotClock
) -> AsyncIterator[BotProcess]:
    env = {"CLOCK_OFFSET_FILE": str(bot_clock.path), "SCHEDULER_POLL_INTERVAL": "0.1"}
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False, extra_env=env)
    yield bot
    await bot.stop()


async def grant(database_url: str, user_id: int, course_id: int) -> None:
    """Access given outside a payment (an owner's gift): the grant hook enrolls."""
    drip.install("UTC")
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            await access.grant(session, user_id, ProductKind.COURSE, course_id, days=None)
            await session.commit()
    finally:
        await engine.dispose()


async def ids(database_url: str, title: str) -> tuple[int, list[int]]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            course_id = await session.scalar(select(Course.id).where(Course.title == title))
            assert course_id is not None
            lessons = await session.scalars(
                select(Lesson.id).where(Lesson.course_id == course_id).order_by(Lesson.position)
            )
            return course_id, list(lessons)
    finally:
        await engine.dispose()


async def no_message(user: SandboxUser, contains: str, wait: float = 3.0) -> None:
    with pytest.raises(TimeoutError):
        await user.wait_for_message(contains=contains, timeout=wait)


async def test_drip_course_end_to_end(
    polling_bot: BotProcess,
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
) -> None:
    olga = await learner_client.create_user("Olga", "en", id=CREATOR_ID)
    alice = await learner_client.create_user("Alice", "en")
    bob = await learner_client.create_user("Bob", "en")
    await say(olga, "/start", "Welcome", timeout=15)

    # The creator builds a course in the chat.
    course_id = await build_course(
        olga, "Drip E2E", stars=100, lessons=("First: hello", "Second: SELECT", "Third: JOIN")
    )
    _, (_first, l2, l3) = await ids(database_url, "Drip E2E")
    await say(olga, f"/release {l2} after", "previous lesson is done")

    # Alice enrolls: lesson 1 at once, protected, with Done and Next.
    await say(alice, "/start", "Welcome", timeout=15)
    # Default quiet hours are 22:00-08:00 local; the test must not depend on the hour.
    await say(alice, "/quiet off", "Saved")
    await grant(database_url, alice.id, course_id)
    lesson1 = await alice.wait_for_message(contains="Lesson 1 of 3", timeout=10)
    assert "First: hello" in lesson1.text and lesson1.protected
    assert lesson1.buttons == ["✅ Done", "Next ▶"]
    # Done releases the lesson that waits for it.
    await alice.click("✅ Done", message=lesson1)
    await alice.wait_for_message(contains="Lesson 2 of 3", timeout=10)
    await alice.wait_for_idle(quiet=0.15)

    # Quiet hours now: moving lesson 3 to "at enrollment" makes it due, but not sent.
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    await say(alice, f"/quiet {start:%H:%M}-{end:%H:%M}", "Saved")
    await say(olga, f"/release {l3} days 0", "Re-planned for 1 enrolled learner.")
    await no_message(alice, "Lesson 3 of 3")
    await say(alice, "/quiet off", "Saved")
    lesson3 = await alice.wait_for_message(contains="Lesson 3 of 3", timeout=10)
    assert "Third: JOIN" in lesson3.text
    await alice.wait_for_idle(quiet=0.15)
    library = await say(alice, "/my", "Your library")
    assert "Drip E2E" in library and "1 of 3 done" in library

    # Bob blocked the bot: his lesson waits; he comes back and gets it.
    await say(bob, "/start", "Welcome", timeout=15)
    await say(bob, "/quiet off", "Saved")
    await bob.block()
    await grant(database_url, bob.id, course_id)
    await asyncio.sleep(3)
    await bob.unblock()
    await no_message(bob, "Lesson 1 of 3", wait=1.0)
    await bob.send("hi again")
    await bob.wait_for_message(contains="Lesson 1 of 3", timeout=10)
    await bob.wait_for_idle(quiet=0.15)

    # A broadcast reaches every learner, and the creator sees it finish.
    await broadcast(olga, course_id, "Live Q&A at 18:00", "📣 Send", (alice, bob))
    # A paid broadcast (allow_paid_broadcast) goes out over real HTTP the lean way, paid
    # from the bot's Stars; two messages fit the free rate, so nothing is billed.
    await learner_client.request("POST", "/bot/stars", {"stars": 5})
    await broadcast(olga, course_id, "The replay is up", "⚡ Paid broadcast (fast)", (alice, bob))
    paid = [p for name, p in sandbox_server.calls if p.get("text") == "The replay is up"]
    assert len(paid) == 2 and all(p.get("allow_paid_broadcast") is True for p in paid)
    assert sandbox_server.violations == []


async def broadcast(
    creator: SandboxUser, course_id: int, text: str, button: str, learners: tuple[SandboxUser, ...]
) -> None:
    """The creator broadcasts `text` to the course's learners with `button` (free or
    paid); every learner gets it and the creator sees it finish."""
    await say(creator, f"/broadcast {course_id}", "Who should get it")
    await creator.click("👩‍🎓 Learners of the course")
    await creator.wait_for_message(contains=f"{len(learners)} recipients", timeout=10)
    await creator.wait_for_idle(quiet=0.15)
    await say(creator, text, f"Ready to send to {len(learners)} recipients")
    await creator.click(button)
    for learner in learners:
        await learner.wait_for_message(contains=text, timeout=10)
    done = f"Broadcast finished: {len(learners)} of {len(learners)} delivered"
    await creator.wait_for_message(contains=done, timeout=15)


async def enrolled_at(database_url: str, user_id: int, course_id: int) -> datetime:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            started = await session.scalar(
                select(Enrollment.started_at).where(
                    Enrollment.user_id == user_id, Enrollment.course_id == course_id
                )
            )
            assert started is not None
            return started
    finally:
        await engine.dispose()


async def test_lessons_follow_the_bots_clock_and_quiet_hours(
    clocked_bot: BotProcess,
    bot_clock: BotClock,
    learner_client: SandboxClient,
    database_url: str,
) -> None:
    olga = await learner_client.create_user("Olga", "en", id=CREATOR_ID)
    alice = await learner_client.create_user("Alice", "en")
    await say(olga, "/start", "Welcome", timeout=15)
    course_id = await build_course(
        olga, "Clock E2E", stars=0, lessons=("One: hello", "Two: SELECT", "Three: JOIN")
    )
    _, (_l1, _l2, l3) = await ids(database_url, "Clock E2E")
    day1 = BOT_START.date() + timedelta(days=1)
    day2 = day1 + timedelta(days=1)
    # Due at 23:00, inside Alice's quiet hours (22:00-08:00, the default she keeps).
    await say(olga, f"/release {l3} at {day1} 23:00", "Re-planned")

    # Alice takes the free course in the bot: lesson 1 at once, on the bot's clock.
    await say(alice, f"/start c_{course_id}", "Clock E2E", timeout=15)
    await alice.click("🎁 Get it free")
    await alice.wait_for_message(contains="is yours, free", timeout=10)
    lesson1 = await alice.wait_for_message(contains="Lesson 1 of 3", timeout=10)
    assert "One: hello" in lesson1.text
    started = await enrolled_at(database_url, alice.id, course_id)
    if started.tzinfo is None:  # SQLite hands back naive UTC
        started = started.replace(tzinfo=UTC)
    assert abs(started - BOT_START) < timedelta(minutes=2), started  # not the real clock

    # Lesson 2 (day 1) is not there ten minutes before its day; a day later it is.
    bot_clock.set(started + timedelta(days=1) - timedelta(minutes=10))
    await no_message(alice, "Lesson 2 of 3", wait=1.5)
    bot_clock.set(started + timedelta(days=1, seconds=5))
    lesson2 = await alice.wait_for_message(contains="Lesson 2 of 3", timeout=10)
    assert "Two: SELECT" in lesson2.text

    # 23:30: lesson 3 is past its release time but inside quiet hours, so it waits...
    bot_clock.set(
        datetime.combine(day1, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30)
    )
    await no_message(alice, "Lesson 3 of 3", wait=1.5)
    library = await say(alice, "/my", "Your library")
    assert f"next lesson on {day2} 08:00" in library, library
    # ...till the morning.
    bot_clock.set(datetime.combine(day2, datetime.min.time(), UTC) + timedelta(hours=8, minutes=1))
    lesson3 = await alice.wait_for_message(contains="Lesson 3 of 3", timeout=10)
    assert "Three: JOIN" in lesson3.text
