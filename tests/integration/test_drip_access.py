"""Access follows money in drip: a refunded or expired course sends nothing more, and no
learner action (Done, /quiet, /timezone, Resume) or schedule edit plans it again. Through
the real Dispatcher and the app's own scheduler worker."""

from __future__ import annotations

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.models import Delivery, DeliveryStatus, Entitlement, Lesson, Plan, ProductKind, ReleaseRule
from bot.scheduler.clock import ManualClock
from bot.services import access
from bot.services import groups as groups_service
from bot.services.users import get_creator
from tests.integration.test_drip_chat import ANN, BO, lessons_to
from tests.support.broadcasts import send_broadcast
from tests.support.courses import OWNER, T0, course_with_lessons, enroll
from tests.support.updates import Harness

DAYS = ReleaseRule.AFTER_DAYS
AFTER = ReleaseRule.AFTER_PREVIOUS


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


async def refund(db: AsyncSession, course_id: int, clock: ManualClock) -> None:
    """What a refund does to access (bot.payments.refunds calls exactly this)."""
    await access.revoke(db, ANN.id, ProductKind.COURSE, course_id, clock.now())
    await db.commit()
    await db.close()


async def statuses(db: AsyncSession) -> list[str]:
    db.expire_all()
    rows = await db.scalars(
        select(Delivery.status).where(Delivery.user_id == ANN.id).order_by(Delivery.lesson_id)
    )
    out = list(rows)
    await db.close()  # SQLite: one pooled connection, the worker needs it
    return out


def done_button(h: Harness) -> str:
    markup = lessons_to(h, ANN.id)[0].reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    return markup.inline_keyboard[0][0].callback_data or ""


async def test_done_after_a_refund_plans_nothing(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    # Lesson 2 waits for lesson 1 to be done: pressing Done is what would plan it.
    cid = await course_with_lessons(db, [(DAYS, 0), (AFTER, 0), (DAYS, 1)])
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 1
    await refund(db, cid, clock)

    await h.press(done_button(h), ANN)
    answer = h.session.of_type(AnswerCallbackQuery)[-1].text or ""
    clock.advance(days=3)
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 1
    assert await statuses(db) == [DeliveryStatus.SENT]
    assert "access to this course has ended" in answer


async def _pause(h: Harness) -> str:
    """Pause the course; returns the Resume button's data (the button stays on screen)."""
    await h.send("/my", ANN)
    await h.click("Pause", ANN)
    return h.button("Resume")


@pytest.mark.parametrize("action", ["quiet", "timezone", "resume", "release"])
async def test_nothing_brings_revoked_lessons_back(
    action: str, app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(DAYS, 0), (DAYS, 1), (DAYS, 2)])
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    resume = await _pause(h) if action == "resume" else ""
    await refund(db, cid, clock)
    skipped = DeliveryStatus.SKIPPED
    assert await statuses(db) == [DeliveryStatus.SENT, skipped, skipped]

    if action == "quiet":
        await h.send("/quiet 23:00-07:00", ANN)
    elif action == "timezone":
        await h.send("/timezone Asia/Shanghai", ANN)
    elif action == "resume":
        await h.press(resume, ANN)
    else:  # the creator edits the schedule: enrolled learners are re-planned
        third = await db.scalar(select(Lesson.id).where(Lesson.position == 3))
        await db.close()
        await h.send(f"/release {third} days 1", OWNER)
    assert await statuses(db) == [DeliveryStatus.SENT, skipped, skipped]
    clock.advance(days=3)
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 1

    # Paying again brings the same lessons back.
    await access.grant(db, ANN.id, ProductKind.COURSE, cid, days=None, now=clock.now())
    await db.commit()
    await db.close()
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 3


async def test_worker_rechecks_the_entitlement_before_each_send(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(DAYS, 0), (DAYS, 1), (DAYS, 2)])
    await enroll(h, db, ANN, cid, clock)
    await app.scheduler.drain()
    # Revoked behind the hooks' back (another process, a hand edit): the planned rows
    # are still pending when lesson 2 falls due.
    await db.execute(update(Entitlement).values(revoked_at=clock.now()))
    await db.commit()
    await db.close()
    clock.advance(days=1, seconds=1)
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 1
    # The due one and the rest of the course are revoked, not left to be tried again.
    skipped = DeliveryStatus.SKIPPED
    assert await statuses(db) == [DeliveryStatus.SENT, skipped, skipped]


async def test_a_plan_course_stops_when_the_plan_expires(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(DAYS, 0), (DAYS, 5), (DAYS, 9)])
    creator = await get_creator(db, OWNER.id)
    assert creator is not None
    spec = groups_service.parse_plan_spec(f"Club stars=100 days=7 course={cid}")
    assert spec is not None
    plan = await groups_service.save_plan(db, creator, spec)
    assert isinstance(plan, Plan)
    plan_id = plan.id
    await db.commit()
    await db.close()
    await h.send("/start", ANN)
    await access.grant(db, ANN.id, ProductKind.PLAN, plan_id, days=7, now=clock.now())
    await db.commit()
    await db.close()
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 1

    clock.advance(days=5, seconds=1)  # inside the plan: lesson 2 arrives
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 2
    clock.advance(days=4)  # the plan ended on day 7: lesson 3 (day 9) does not
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 2
    skipped = DeliveryStatus.SKIPPED
    assert await statuses(db) == [DeliveryStatus.SENT, DeliveryStatus.SENT, skipped]

    # /timezone after the expiry plans nothing either.
    await h.send("/timezone Europe/Berlin", ANN)
    assert await statuses(db) == [DeliveryStatus.SENT, DeliveryStatus.SENT, skipped]

    # Renewing the plan renews the course, and the lesson comes back.
    await access.grant(db, ANN.id, ProductKind.PLAN, plan_id, days=7, now=clock.now())
    await db.commit()
    await db.close()
    await app.scheduler.drain()
    assert len(lessons_to(h, ANN.id)) == 3


async def test_a_broadcast_skips_who_was_refunded_after_it_was_queued(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    cid = await course_with_lessons(db, [(DAYS, 0)])
    for user in (ANN, BO):
        await enroll(h, db, user, cid, clock)
    await app.scheduler.drain()
    await send_broadcast(h, OWNER, cid, "Live Q&A tonight!")
    assert "queued for 2 learners" in h.last_text()
    await app.scheduler.run_once()  # fans out: one message job per learner
    await refund(db, cid, clock)
    for _ in range(3):
        await app.scheduler.drain()
        clock.advance(seconds=6)
    got = {r.chat_id for r in h.session.of_type(SendMessage) if "Live Q" in (r.text or "")}
    assert got == {BO.id}
    # The creator reads the refunded learner as skipped, not as unreachable.
    edits = [r.text for r in h.session.of_type(EditMessageText) if "Broadcast" in r.text]
    assert edits and "1 of 2 delivered, 0 unreachable" in edits[-1]
    assert "Skipped, no longer enrolled (refunded or expired): 1." in edits[-1]
