"""The dashboard's nudge end to end: the creator's press queues it, the app's own scheduler
worker sends it through the rate-limited sender while the bot's clock moves.

One gentle nudge, in the learner's language, with the way to stop it; never in their quiet
hours (it waits till they end); not twice within 7 days; nothing once refunded."""

from __future__ import annotations

import pytest
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.keyboards.learning import EnrollmentAction, EnrollmentCB
from bot.models import Enrollment, ProductKind, ReleaseRule
from bot.scheduler.clock import ManualClock
from bot.services import access
from bot.services.users import get_creator
from tests.support.courses import OWNER, T0, course_with_lessons, enroll
from tests.support.updates import Harness, tg_user

AN = tg_user(1001, "安", "zh")  # at risk, quiet 20:00–23:00 UTC
BO = tg_user(1002, "Bo")  # refunded before the press
CY = tg_user(1003, "Cy")  # refunded after the press, before the send


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def nudges_to(h: Harness, chat_id: int) -> list[SendMessage]:
    return [
        r
        for r in h.session.of_type(SendMessage)
        if r.chat_id == chat_id and "Part " not in r.text and ("《" in r.text or "«" in r.text)
    ]


def lessons_to(h: Harness, chat_id: int) -> list[SendMessage]:
    """Lessons in any language (their titles are "Part n")."""
    return [r for r in h.session.of_type(SendMessage) if r.chat_id == chat_id and "Part " in r.text]


async def revoke(db: AsyncSession, user_id: int, course_id: int, clock: ManualClock) -> None:
    """What a refund does to access (bot.payments.refunds calls exactly this)."""
    await access.revoke(db, user_id, ProductKind.COURSE, course_id, clock.now())
    await db.commit()
    await db.close()


async def test_at_risk_nudge_through_the_scheduler(
    app: App, h: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    days = ReleaseRule.AFTER_DAYS
    cid = await course_with_lessons(db, [(days, 0), (days, 1)])
    creator = await get_creator(db, OWNER.id)
    assert creator is not None
    creator_id = creator.id
    await db.close()
    for learner in (AN, BO, CY):
        await enroll(h, db, learner, cid, clock)
    await h.send("/quiet 20:00-23:00", AN)
    await app.scheduler.drain()
    clock.advance(days=1, minutes=1)  # lesson 2 arrives; nobody presses Done
    await app.scheduler.drain()
    assert [len(lessons_to(h, u.id)) for u in (AN, BO, CY)] == [2, 2, 2]
    await revoke(db, BO.id, cid, clock)

    # Eight days without a Done, at 21:00 UTC: inside 安's quiet hours.
    clock.advance(days=7, hours=11)
    assert clock.now().hour == 21
    nudge = StatsCB(a=StatsAction.NUDGE, c=creator_id, p="30", s="a").pack()
    risk = StatsCB(a=StatsAction.RISK, c=creator_id, p="30", s="a").pack()
    await h.press(risk, OWNER)
    listed = h.last_text()
    assert "安" in listed and "Cy" in listed and "Bo" not in listed  # refunded: not at risk
    await h.press(nudge, OWNER)
    assert "Nudges queued: 2" in h.last_text()
    await revoke(db, CY.id, cid, clock)  # refunded between the press and the send
    await app.scheduler.drain()
    assert nudges_to(h, AN.id) == [] and nudges_to(h, CY.id) == []  # quiet hours; refunded

    clock.advance(hours=2, minutes=1)  # 23:01: the quiet hours are over
    await app.scheduler.drain()
    [sent] = nudges_to(h, AN.id)
    assert "安，你好！《Drip 101》的下一课正在等你" in sent.text  # their language
    assert "暂停这门课" in sent.text
    markup = sent.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    [[stop]] = markup.inline_keyboard
    assert stop.text == "⏸ 暂停这门课"
    assert stop.callback_data == EnrollmentCB(action=EnrollmentAction.PAUSE, id=cid).pack()
    assert nudges_to(h, CY.id) == [] and nudges_to(h, BO.id) == []

    # Not a second time within 7 days, however often the creator presses.
    clock.advance(days=3)
    await h.press(nudge, OWNER)
    assert "Nudges queued: 0" in h.last_text() and "in the last 7 days: 1" in h.last_text()
    clock.advance(days=1)
    await app.scheduler.drain()
    assert len(nudges_to(h, AN.id)) == 1

    # A week on, still silent: one more is allowed, and the button stops it for good.
    clock.advance(days=4)
    await h.press(nudge, OWNER)
    assert "Nudges queued: 1" in h.last_text()
    await h.press(stop.callback_data, AN)  # the stop button of the first nudge
    await app.scheduler.drain()
    assert len(nudges_to(h, AN.id)) == 1  # paused before the worker sent it
    paused = await db.scalar(select(Enrollment.paused_at).where(Enrollment.user_id == AN.id))
    assert paused is not None
    await h.press(risk, OWNER)
    assert "No learner is at risk" in h.last_text()
