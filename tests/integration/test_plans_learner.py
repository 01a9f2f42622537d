"""The learner's side of plans through the real Dispatcher: cancelling a subscription's
renewal whatever became of the plan, plans in /my, prices in /plans."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    CreateChatInviteLink,
    CreateInvoiceLink,
    EditUserStarSubscription,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.groups import PlanCB
from bot.models import Job, Plan, ProductKind
from bot.payments.checkout import Outcome
from bot.scheduler.clock import ManualClock
from bot.services import access
from bot.services.memberships import INVITE
from tests.integration.test_groups_flow import (
    ANA,
    ANN,
    T0,
    buttons,
    grant,
    invite_link,
    joined,
    seed,
    sent_to,
)
from tests.support.payments import PayRecordingSession, stars_subscription_charge
from tests.support.recording import RecordingSession
from tests.support.updates import Harness


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def bot_session() -> RecordingSession:
    return PayRecordingSession()  # Telegram answers the invoice calls (conftest's app)


async def subscribe(h: Harness, app: App, plan_id: int, clock: ManualClock) -> None:
    """Ann subscribes with Stars: the invoice link, then Telegram's first recurring payment."""
    await h.send("/start", ANN)
    h.session.add_result("https://t.me/$sub")
    await h.press(PlanCB(a="sub", id=plan_id).pack(), ANN)
    payload = h.session.of_type(CreateInvoiceLink)[-1].payload
    now = clock.now()
    async with app.sessionmaker() as s:
        result = await stars_subscription_charge(
            s, app.settings, payload, ANN.id, "stxFIRST", now, now + timedelta(days=30), first=True
        )
        await s.commit()
    assert result.outcome == Outcome.CREDITED


async def test_renewal_can_be_cancelled_after_the_plan_is_unpublished(
    h: Harness, app: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db, sub=True)
    await subscribe(h, app, plan_id, clock)
    await h.send(f"/plan {plan_id} publish=no", ANA)
    plan = await db.get(Plan, plan_id)
    assert plan is not None and not plan.published
    await db.close()

    await h.send("/subscriptions", ANN)
    assert "Club pass" in h.last_text()
    await h.click("Cancel renewal", ANN)
    edits = h.session.of_type(EditUserStarSubscription)
    assert [(e.user_id, e.telegram_payment_charge_id, e.is_canceled) for e in edits] == [
        (ANN.id, "stxFIRST", True)
    ]
    assert "lasts to the end" in h.last_text()


async def test_cancel_without_a_subscription_says_so(h: Harness, db: AsyncSession) -> None:
    plan_id = await seed(db, sub=True)
    await h.send("/start", ANN)
    await h.press(PlanCB(a="cancel", id=plan_id).pack(), ANN)
    await h.press(PlanCB(a="cancel", id=999_999).pack(), ANN)
    assert h.session.of_type(EditUserStarSubscription) == []
    answers = [a.text or "" for a in h.session.of_type(AnswerCallbackQuery)]
    assert answers == ["No subscription to cancel."] * 2


def answers(h: Harness) -> list[str]:
    return [a.text or "" for a in h.session.of_type(AnswerCallbackQuery)]


async def invite_jobs(db: AsyncSession) -> int:
    count = await db.scalar(select(func.count(Job.id)).where(Job.kind == INVITE))
    await db.close()
    return int(count or 0)


async def test_my_lists_plans_with_expiry_and_a_new_invite_link(
    h: Harness, app: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await h.send("/my", ANN)
    assert "library is empty" in h.last_text()
    await grant(app, ANN.id, plan_id, 30, clock.now())
    h.session.add_result(invite_link("Ann"))
    await app.scheduler.drain()  # the invite of the grant itself
    assert len(h.session.of_type(CreateChatInviteLink)) == 1

    await h.send("/my", ANN)
    text = h.last_text()
    assert "Your plans" in text and "Club pass" in text and "(until 2026-04-01)" in text
    assert "/subscriptions" in text and "library is empty" not in text
    link = h.button("Invite link: Club pass")  # the button stays on screen
    await h.press(link, ANN)
    assert "on its way" in answers(h)[-1]
    h.session.add_result(invite_link("Ann again"))
    await app.scheduler.drain()
    assert len(h.session.of_type(CreateChatInviteLink)) == 2
    assert "https://t.me/+Annagain" in sent_to(h, ANN.id)[-1].text
    # A second press within the hour: the same link is on its way, no new one is made.
    await h.press(link, ANN)
    assert "on its way" in answers(h)[-1]
    assert await invite_jobs(db) == 2

    # Inside the chat: no link needed.
    await h.feed(joined(ANN))
    clock.advance(hours=2)
    await h.press(link, ANN)
    assert "already in the plan's chats" in answers(h)[-1]

    # Unpublished: whoever holds it still sees it.
    async with app.sessionmaker() as s:
        plan = await s.get(Plan, plan_id)
        assert plan is not None
        plan.published = False
        await s.commit()
    await h.send("/my", ANN)
    assert "Club pass" in h.last_text()
    # Expired: /my lists it no more, and the stale button says so.
    clock.advance(days=31)
    await h.send("/my", ANN)
    assert "Club pass" not in h.last_text()
    await h.press(link, ANN)
    assert "not active for you" in answers(h)[-1]
    assert await invite_jobs(db) == 2


async def test_plans_show_prices(h: Harness, db: AsyncSession) -> None:
    plan_id = await seed(db, sub=True, trial=7)
    async with db.begin():
        plan = await db.get(Plan, plan_id)
        assert plan is not None
        plan.price_minor, plan.currency = 999, "USD"
    await db.close()
    await h.send("/start", ANN)
    await h.send("/plans", ANN)
    text = h.last_text()
    assert "Club pass" in text and "30 days of access" in text
    assert "Price: $9.99 · ⭐ 100" in text
    assert "⭐ 100 every 30 days" in text and "Free trial: 7 days" in text
    assert "🛒 Buy access" in buttons(sent_to(h, ANN.id)[-1])


async def test_subscriptions_shows_a_renewing_plan_after_access_ended(
    h: Harness, app: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db, sub=True)
    await subscribe(h, app, plan_id, clock)
    # Refunded (or kicked): access is gone, but Telegram would still renew the subscription.
    await access.revoke(db, ANN.id, ProductKind.PLAN, plan_id, clock.now())
    await db.commit()
    await db.close()
    await h.send("/subscriptions", ANN)
    assert "Club pass" in h.last_text() and "access ended" in h.last_text()
    assert "Renews on 2026-04-01" in h.last_text()
    assert buttons(sent_to(h, ANN.id)[-1]) == ["Cancel renewal"]
    await h.click("Cancel renewal", ANN)
    assert len(h.session.of_type(EditUserStarSubscription)) == 1
