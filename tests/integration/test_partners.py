"""Study partners through the real dispatcher: opt in per course; a partner is proposed
only with progress within two lessons and an overlapping waking day; names appear once
both accept; either ends it; never the same person twice; blocked or paused learners are
never proposed; expired and forged answers change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.handlers.partners import PtCB
from bot.models import (
    Delivery,
    Enrollment,
    PartnerOptIn,
    Partnership,
    PartnerStatus,
    ReleaseRule,
    User,
)
from bot.scheduler.clock import ManualClock
from tests.support.courses import T0, course_with_lessons, enroll
from tests.support.updates import Harness, tg_user

ANN = tg_user(1001, "Ann")
BO = tg_user(1002, "Bo")
CY = tg_user(1003, "Cy")  # awake only at night: no overlap with the others
DI = tg_user(1004, "Di")  # five lessons ahead
ED = tg_user(1005, "Ed")  # blocked the bot
FA = tg_user(1006, "Fa")  # paused the course
GI = tg_user(1007, "Gi")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def said_to(h: Harness, chat_id: int) -> list[str]:
    return [str(r.text) for r in h.session.of_type(SendMessage) if r.chat_id == chat_id]


def alerts(h: Harness) -> list[str]:
    return [str(r.text) for r in h.session.of_type(AnswerCallbackQuery) if r.text]


async def pairs(db: AsyncSession) -> list[Partnership]:
    db.expire_all()
    return list(await db.scalars(select(Partnership).order_by(Partnership.id)))


async def test_partners_end_to_end(app: App, db: AsyncSession, clock: ManualClock) -> None:
    h = Harness(app)
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0)] * 6)
    for learner in (ANN, BO, CY, DI, ED, FA, GI):
        await enroll(h, db, learner, cid, clock)
    await app.scheduler.drain()
    # Di is five lessons ahead; Cy sleeps by day; Ed blocked the bot; Fa paused.
    di_enrollment = select(Enrollment.id).where(Enrollment.user_id == DI.id).scalar_subquery()
    await db.execute(
        update(Delivery).where(Delivery.enrollment_id == di_enrollment).values(done_at=clock.now())
    )
    await db.execute(
        update(User).where(User.id == CY.id).values(quiet_start=6 * 60, quiet_end=23 * 60)
    )
    await db.execute(update(User).where(User.id == ED.id).values(is_blocked=True))
    await db.execute(
        update(Enrollment).where(Enrollment.user_id == FA.id).values(paused_at=clock.now())
    )
    for uid in (ED.id, FA.id):
        db.add(PartnerOptIn(user_id=uid, course_id=cid, active=True, created_at=clock.now()))
    await db.commit()

    for learner in (CY, DI):
        await h.send(f"/partner {cid}", learner)
        assert "Nobody fits yet" in said_to(h, learner.id)[-1]
    await h.send(f"/partner {cid}", ANN)
    assert "Nobody fits yet" in said_to(h, ANN.id)[-1]  # not Cy, Di, Ed nor Fa
    h.session.clear()
    await h.send(f"/partner {cid}", BO)
    [pair] = await pairs(db)
    assert (pair.user_a, pair.user_b, pair.status) == (ANN.id, BO.id, PartnerStatus.PROPOSED)
    [to_ann] = said_to(h, ANN.id)
    assert "study partner" in to_ann and "Bo" not in to_ann  # no names yet
    assert "Ann" not in said_to(h, BO.id)[-1]

    # Ann accepts (twice: the second changes nothing); then Bo: names for both.
    await h.press(PtCB(a="y", id=pair.id).pack(), ANN)
    assert "Accepted" in alerts(h)[-1]
    await h.press(PtCB(a="y", id=pair.id).pack(), ANN)
    assert "accepted already" in alerts(h)[-1]
    await h.press(PtCB(a="y", id=pair.id).pack(), CY)  # not hers
    assert "not yours" in alerts(h)[-1]
    await h.press(PtCB(a="y", id=pair.id).pack(), BO)
    assert "Bo" in said_to(h, ANN.id)[-1] and "Ann" in said_to(h, BO.id)[-1]
    [pair] = await pairs(db)
    assert pair.status == PartnerStatus.ACTIVE
    await h.send(f"/partner {cid}", ANN)
    assert "already have a partner" in said_to(h, ANN.id)[-1]

    # Bo ends it; Ann is told, and is never proposed Bo again.
    await h.press(PtCB(a="e", id=pair.id).pack(), BO)
    assert "has ended" in said_to(h, ANN.id)[-1]
    await h.press(PtCB(a="e", id=pair.id).pack(), ANN)
    assert "closed" in alerts(h)[-1]
    await h.send(f"/partner {cid}", ANN)
    assert "Nobody fits yet" in said_to(h, ANN.id)[-1]
    assert len(await pairs(db)) == 1

    # Gi: proposed to Ann; after 48 hours the proposal cannot be accepted.
    await h.send(f"/partner {cid}", GI)
    new = (await pairs(db))[-1]
    assert {new.user_a, new.user_b} == {ANN.id, GI.id}
    clock.advance(hours=48, seconds=1)
    await h.press(PtCB(a="y", id=new.id).pack(), ANN)
    assert "expired" in alerts(h)[-1]
    await h.press(PtCB(a="zz", id=new.id).pack(), ANN)
    assert "no longer works" in alerts(h)[-1]
    await h.press(PtCB(a="y", id=999999).pack(), ANN)
    assert "not yours" in alerts(h)[-1]
    new = (await pairs(db))[-1]
    assert new.status == PartnerStatus.PROPOSED and not new.a_accepted and not new.b_accepted
    assert new.expires_at < clock.now() + timedelta(seconds=1)


async def test_partner_bad_input(app: App, db: AsyncSession, clock: ManualClock) -> None:
    h = Harness(app)
    cid = await course_with_lessons(db, [(ReleaseRule.AFTER_DAYS, 0)])
    await h.send(f"/partner {cid}", ANN)  # does not have the course
    assert "for learners who have this course" in said_to(h, ANN.id)[-1]
    await h.send("/partner 999999", ANN)
    assert "no such course" in said_to(h, ANN.id)[-1]
    await h.send(f"/partner off {cid}", ANN)
    assert "were not looking" in said_to(h, ANN.id)[-1]
    await h.send("/partner", ANN)
    assert "Usage" in said_to(h, ANN.id)[-1]
    db.expire_all()
    assert list(await db.scalars(select(PartnerOptIn))) == []
