"""Renewing a plan while it is still active, from the Renew button of the 72 h reminder:
the new period adds to the old expiry (not to the moment of paying), the old expiry's
reminders, grace and removal stay silent, and a member already inside gets no new link.

The payment is booked at the real time, so the scheduler's clock starts 27 days and an
hour in the past: the reminder falls due now and the learner pays 71 hours before the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import (
    AnswerPreCheckoutQuery,
    ApproveChatJoinRequest,
    BanChatMember,
    CreateChatInviteLink,
    SendInvoice,
)
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.keyboards.groups import PlanCB
from bot.models import Entitlement, Job, JobStatus
from bot.scheduler.clock import ManualClock
from bot.services.memberships import INVITE
from tests.integration.test_groups_flow import (
    ANN,
    grant,
    invite_link,
    join_request,
    seed,
    sent_to,
)
from tests.integration.test_payments_helpers import (
    PayRecordingSession,
    pre_checkout_update,
    successful_payment_update,
)
from tests.support.updates import Harness


@pytest.fixture
def start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(days=27, hours=1)


@pytest.fixture
def clock(start: datetime) -> ManualClock:
    return ManualClock(start)


@pytest.fixture
async def rapp(settings: Settings, engine: AsyncEngine, clock: ManualClock) -> AsyncIterator[App]:
    settings = settings.model_copy(update={"grace_period_hours": 12})
    app = build_app(settings, session=PayRecordingSession(), engine=engine, clock=clock)
    yield app
    await app.events.flush(app.sessionmaker)
    await app.search.close()


async def test_renew_from_the_reminder_while_active_extends_from_the_old_expiry(
    rapp: App, db: AsyncSession, clock: ManualClock, start: datetime
) -> None:
    h = Harness(rapp)
    plan_id = await seed(db)
    await h.send("/start", ANN)
    await grant(rapp, ANN.id, plan_id, 30, start)
    h.session.add_result(invite_link("Ann"))
    await rapp.scheduler.drain()
    await h.feed(join_request(ANN))
    assert [r.user_id for r in h.session.of_type(ApproveChatJoinRequest)] == [ANN.id]
    old_expiry = start + timedelta(days=30)

    # 72 hours before the end: the reminder, and its Renew button.
    clock.set(start + timedelta(days=27, hours=1))
    await rapp.scheduler.drain()
    reminder = sent_to(h, ANN.id)[-1]
    assert "ends in 72 hours" in reminder.text
    markup = reminder.reply_markup
    assert isinstance(markup, InlineKeyboardMarkup)
    renew = [b for row in markup.inline_keyboard for b in row if b.text == "🔄 Renew"]
    assert [b.callback_data for b in renew] == [PlanCB(a="buy", id=plan_id).pack()]
    h.session.clear()

    # Renew → Stars → invoice → pre-checkout accepted (renewing an active plan) → paid.
    assert renew[0].callback_data is not None
    await h.press(renew[0].callback_data, ANN)
    assert "Club pass" in h.last_text()
    await h.click("Telegram Stars", ANN)
    invoices = h.session.of_type(SendInvoice)
    assert len(invoices) == 1 and invoices[0].currency == "XTR"
    payload = invoices[0].payload
    await h.feed(pre_checkout_update(ANN, payload, "XTR", 100))
    assert h.session.of_type(AnswerPreCheckoutQuery)[-1].ok is True
    paid_at = datetime.now(UTC)
    await h.feed(successful_payment_update(ANN, payload, "XTR", 100, "renew-1"))
    assert any("Payment received" in t for t in h.session.texts())

    ent = await db.scalar(select(Entitlement).where(Entitlement.user_id == ANN.id))
    assert ent is not None and ent.expires_at is not None
    # From the old end, not from the moment of paying (that would be ~3 days short).
    assert ent.expires_at == old_expiry + timedelta(days=30)
    assert ent.expires_at - (paid_at + timedelta(days=30)) > timedelta(days=2)
    await db.close()

    # The old date passes: no 24 h reminder, no removal after grace, no "has ended".
    h.session.clear()
    for at in (
        start + timedelta(days=29, minutes=1),
        old_expiry + timedelta(hours=12, minutes=1),
    ):
        clock.set(at)
        await rapp.scheduler.drain()
    assert sent_to(h, ANN.id) == []
    assert h.session.of_type(BanChatMember) == []
    # Already in the chat: the renewal's invite job ran and made no second link.
    assert h.session.of_type(CreateChatInviteLink) == []
    pending = await db.scalars(
        select(Job).where(Job.kind == INVITE, Job.status == JobStatus.PENDING)
    )
    assert list(pending) == []

    # The new date's reminder does come.
    clock.set(old_expiry + timedelta(days=27, minutes=1))
    await rapp.scheduler.drain()
    texts = [m.text for m in sent_to(h, ANN.id)]
    new_end = (old_expiry + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
    assert len(texts) == 1 and "ends in 72 hours" in texts[0] and new_end in texts[0]
