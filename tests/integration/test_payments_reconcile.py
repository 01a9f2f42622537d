"""`python -m bot reconcile-stars` against getStarTransactions as Telegram answers it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram.types import (
    AffiliateInfo,
    StarTransaction,
    TransactionPartnerAffiliateProgram,
    TransactionPartnerUser,
)
from sqlalchemy.ext.asyncio import AsyncSession

import bot.app
from bot.__main__ import _reconcile_stars
from bot.app import App
from bot.keyboards.callbacks import BuyCB
from tests.support.payments import (
    PayRecordingSession,
    make_course,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

ANN = tg(1001, "Ann")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


def incoming(charge: str, amount: int, payload: str) -> StarTransaction:
    partner = TransactionPartnerUser(
        transaction_type="invoice_payment", user=ANN, invoice_payload=payload
    )
    return StarTransaction(id=charge, amount=amount, date=datetime.now(UTC), source=partner)


async def test_reconcile_reports_a_payment_missing_here(
    app: App,
    harness: Harness,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, course_id = await make_course(db)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("Telegram Stars", ANN)
    from aiogram.methods import SendInvoice

    ref = harness.session.of_type(SendInvoice)[-1].payload
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "st-ok"))

    session = app.bot.session
    assert isinstance(session, PayRecordingSession)
    monkeypatch.setattr(bot.app, "create_bot", lambda settings: app.bot)

    session.star_transactions = [incoming("st-ok", 500, ref)]
    assert await _reconcile_stars(app.settings) == 0
    assert "OK: no gaps" in capsys.readouterr().out

    # A successful_payment that never reached us: Telegram has it, we do not.
    session.star_transactions.append(incoming("st-lost", 500, "lost-ref"))
    assert await _reconcile_stars(app.settings) == 1
    out = capsys.readouterr().out
    assert "MISSING HERE: st-lost 500 XTR from user 1001" in out and "GAPS FOUND" in out


async def test_a_telegram_affiliate_s_cut_is_recognised_and_reported(
    app: App,
    harness: Harness,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Telegram's own Stars affiliate programme: the learner paid 500, an affiliate took
    10 % (50) and the bot got 450. Not a gap; the deduction is reported."""
    _, course_id = await make_course(db)
    await harness.press(BuyCB(id=course_id).pack(), ANN)
    await harness.click("Telegram Stars", ANN)
    from aiogram.methods import SendInvoice

    ref = harness.session.of_type(SendInvoice)[-1].payload
    await harness.feed(successful_payment_update(ANN, ref, "XTR", 500, "st-aff"))
    session = app.bot.session
    assert isinstance(session, PayRecordingSession)
    monkeypatch.setattr(bot.app, "create_bot", lambda settings: app.bot)

    cut = AffiliateInfo(affiliate_user=tg(4242, "Aff"), commission_per_mille=100, amount=50)
    partner = TransactionPartnerUser(
        transaction_type="invoice_payment", user=ANN, invoice_payload=ref, affiliate=cut
    )
    ours = TransactionPartnerAffiliateProgram(commission_per_mille=50)
    session.star_transactions = [
        StarTransaction(id="st-aff", amount=450, date=datetime.now(UTC), source=partner),
        StarTransaction(id="aff-income", amount=7, date=datetime.now(UTC), source=ours),
    ]
    assert await _reconcile_stars(app.settings) == 0
    out = capsys.readouterr().out
    assert "OK: no gaps" in out
    assert "1 payment(s) carried a Telegram affiliate's commission, 50 XTR" in out
    assert "affiliate cut: st-aff 50 XTR (100‰)" in out
    assert "Commissions received as a Telegram affiliate: 1, 7 XTR" in out

    # A cut that does not explain the difference is still a gap.
    small = AffiliateInfo(commission_per_mille=10, amount=5)
    partner = TransactionPartnerUser(
        transaction_type="invoice_payment", user=ANN, invoice_payload=ref, affiliate=small
    )
    session.star_transactions = [
        StarTransaction(id="st-aff", amount=450, date=datetime.now(UTC), source=partner)
    ]
    assert await _reconcile_stars(app.settings) == 1
    assert "AMOUNT DIFFERS: st-aff Telegram 450 XTR, here 500 XTR" in capsys.readouterr().out
