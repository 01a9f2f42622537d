"""The learner's side of plans through the real Dispatcher: cancelling a subscription's
renewal whatever became of the plan, plans in /my, prices in /plans."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram.methods import AnswerCallbackQuery, CreateInvoiceLink, EditUserStarSubscription
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.keyboards.groups import PlanCB
from bot.models import PaymentMethod, Plan
from bot.payments.checkout import Outcome, record_payment
from bot.scheduler.clock import ManualClock
from tests.integration.test_groups_flow import ANA, ANN, T0, seed
from tests.integration.test_payments_helpers import PayRecordingSession
from tests.support.updates import Harness, settle


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def gapp(settings: Settings, engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[App]:
    app = build_app(settings, session=PayRecordingSession(), engine=engine, clock=clock)
    yield app
    await settle(app)


@pytest.fixture
def h(gapp: App) -> Harness:
    return Harness(gapp)


async def subscribe(h: Harness, gapp: App, plan_id: int, clock: ManualClock) -> None:
    """Ann subscribes with Stars: the invoice link, then Telegram's first recurring payment."""
    await h.send("/start", ANN)
    h.session.add_result("https://t.me/$sub")
    await h.press(PlanCB(a="sub", id=plan_id).pack(), ANN)
    payload = h.session.of_type(CreateInvoiceLink)[-1].payload
    now = clock.now()
    async with gapp.sessionmaker() as s:
        result = await record_payment(
            s,
            payload=payload,
            payer_id=ANN.id,
            method=PaymentMethod.STARS,
            currency="XTR",
            amount=100,
            settings=gapp.settings,
            telegram_charge_id="stxFIRST",
            raw={
                "is_recurring": True,
                "is_first_recurring": True,
                "subscription_expiration_date": int((now + timedelta(days=30)).timestamp()),
            },
            now=now,
        )
        await s.commit()
    assert result.outcome == Outcome.CREDITED


async def test_renewal_can_be_cancelled_after_the_plan_is_unpublished(
    h: Harness, gapp: App, db: AsyncSession, clock: ManualClock
) -> None:
    plan_id = await seed(db, sub=True)
    await subscribe(h, gapp, plan_id, clock)
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
