"""The automatic at-risk nudge: the scheduler's sweep finds learners with no Done for 7
days while lessons wait (the dashboard's own definition) and nudges each once, at most
once per 14 days; the creator's press and the sweep share one record (7 days for the
press); /nudges switches it off per course; blocked learners are left alone."""

from __future__ import annotations

import pytest
from aiogram.methods import SendMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import nudges
from bot.app import App
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.models import Nudge, ReleaseRule, User
from bot.scheduler.clock import ManualClock
from bot.services.users import get_creator
from tests.support.courses import OWNER, T0, course_with_lessons, enroll
from tests.support.updates import Harness, tg_user

ANN = tg_user(1001, "Ann")
BO = tg_user(1002, "Bo")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)  # 10:00 UTC: outside everyone's quiet hours


def nudged(h: Harness, chat_id: int) -> int:
    return sum(
        1
        for r in h.session.of_type(SendMessage)
        if r.chat_id == chat_id and "is waiting for you" in r.text
    )


async def test_the_sweep_nudges_once_per_14_days_and_can_be_switched_off(
    app: App, db: AsyncSession, clock: ManualClock
) -> None:
    h = Harness(app)
    days = ReleaseRule.AFTER_DAYS
    cid = await course_with_lessons(db, [(days, 0), (days, 1)])
    creator = await get_creator(db, OWNER.id)
    assert creator is not None
    creator_id = creator.id
    for learner in (ANN, BO):
        await enroll(h, db, learner, cid, clock)
    await nudges.ensure_scheduled(db, clock.now())
    await db.commit()
    await app.scheduler.drain()
    clock.advance(days=1, minutes=1)
    await app.scheduler.drain()  # lesson 2 arrives; nobody presses Done
    bo = await db.get(User, BO.id)
    assert bo is not None
    bo.is_blocked = True  # Bo blocked the bot: not nudged
    await db.commit()

    clock.advance(days=5)  # quiet for 6 days since enrolling
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 0
    clock.advance(days=1, hours=6)
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 1 and nudged(h, BO.id) == 0

    # The sweep runs every 6 hours; the learner hears from it once.
    for _ in range(4 * 8):
        clock.advance(hours=6)
        await app.scheduler.drain()
    assert nudged(h, ANN.id) == 1
    # Eight days on, the creator's press may nudge again (7 days since the last)...
    await h.press(StatsCB(a=StatsAction.NUDGE, c=creator_id, p="30", s="a").pack(), OWNER)
    assert "Nudges queued: 2" in h.last_text()  # Ann, and Bo: a press is the creator's call
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 2
    # ...and the sweep counts that one: nothing for 14 days after it.
    clock.advance(days=13, hours=23)
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 2
    clock.advance(hours=6)  # the next sweep, 21:01 UTC: before her quiet hours (22:00)
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 3
    db.expire_all()
    [row] = list(await db.scalars(select(Nudge).where(Nudge.user_id == ANN.id)))
    assert row.sent_at > clock.now() - nudges.SWEEP_EVERY

    # Switched off: no more automatic nudges for this course.
    await h.send(f"/nudges {cid} off", OWNER)
    assert "no automatic nudges" in h.last_text()
    clock.advance(days=15)
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 3
    await h.send(f"/nudges {cid} on", OWNER)
    clock.advance(hours=12)  # 09:01 UTC, after her quiet hours
    await app.scheduler.drain()
    assert nudged(h, ANN.id) == 4


async def test_nudges_bad_input(app: App, db: AsyncSession) -> None:
    h = Harness(app)
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0)])
    await h.send(f"/nudges {cid} maybe", OWNER)
    assert "Usage" in h.last_text()
    await h.send("/nudges 99999 off", OWNER)
    assert "no course with that number" in h.last_text()
    await h.send(f"/nudges {cid} off", ANN)
    assert "for course creators" in h.last_text()
    assert await nudges.auto_courses(db) == [cid]
