"""Promoted listings through the real Dispatcher and database: a top-up paid in Stars
(booked with the payment, receipt after the commit), sponsored slots in the catalog,
search and recommendations (labelled, one in five at most, never to owners, relevance
floor), second-price clicks once per learner per day, the budget stop, pause, resume
and withdrawal, forged buttons, and /promote's figures checked against the raw rows."""

from __future__ import annotations

import itertools

import pytest
from aiogram.exceptions import TelegramForbiddenError, TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, AnswerPreCheckoutQuery, SendInvoice, SendMessage
from aiogram.types import InlineKeyboardMarkup
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import BuyCB, PromoteAction, PromoteCB, SponsoredCB
from bot.marketplace import promotions, sponsored
from bot.models import (
    CampaignStatus,
    Course,
    Entitlement,
    Job,
    JobStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    ProductKind,
    PromoCampaign,
    PromoClick,
    PromoEntry,
    PromoEntryKind,
    PromoImpression,
)
from bot.payments.reconcile import unbooked_payments
from bot.scheduler import notices
from bot.scheduler.clock import ManualClock
from tests.support.payments import (
    ADMIN,
    CREATOR_USER,
    OTHER_CREATOR_USER,
    make_course,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

MAYA = tg(CREATOR_USER, "Maya")
OTTO = tg(OTHER_CREATOR_USER, "Otto")
ANN = tg(1001, "Ann")
BEN = tg(1002, "Ben")
BOSS = tg(ADMIN, "Olga")
SPONSORED = "Sponsored"
_charges = itertools.count(1)


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def refresh(app: App) -> None:
    """The campaigns held in memory, reloaded now (in production: in the background)."""
    await sponsored.campaigns(app.search, app.sessionmaker).fresh()


async def fund(harness: Harness, course_id: int, budget: int, bid: int, who: object = MAYA) -> int:
    """/promote, then Telegram's pre-checkout and successful_payment: the campaign id."""
    await harness.send(f"/promote {course_id} {budget} {bid}", who)  # type: ignore[arg-type]
    invoice = harness.session.of_type(SendInvoice)[-1]
    assert (invoice.currency, invoice.prices[0].amount) == ("XTR", budget)
    await harness.feed(pre_checkout_update(who, invoice.payload, "XTR", budget))  # type: ignore[arg-type]
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok
    charge = f"promo-{next(_charges)}"
    await harness.feed(successful_payment_update(who, invoice.payload, "XTR", budget, charge))  # type: ignore[arg-type]
    await refresh(harness.app)
    async with harness.app.sessionmaker() as s:
        order = await s.scalar(select(Order).where(Order.public_ref == invoice.payload))
        assert order is not None and order.product_kind == ProductKind.PROMOTION
        return order.product_id


def sponsored_buttons(harness: Harness) -> list[str]:
    markup = harness.last_markup()
    assert isinstance(markup, InlineKeyboardMarkup)
    return [
        b.text
        for row in markup.inline_keyboard
        for b in row
        if b.callback_data and b.callback_data.startswith("sp:")
    ]


async def campaign(db: AsyncSession, campaign_id: int) -> PromoCampaign:
    db.expire_all()
    row = await db.get(PromoCampaign, campaign_id)
    assert row is not None
    return row


async def count(db: AsyncSession, model: type) -> int:
    db.expire_all()
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def catalog_world(db: AsyncSession, n: int = 6) -> tuple[int, int, list[int]]:
    """n of Otto's courses filling the first catalog page, then Maya's and Otto's promoted
    ones (a course already on the page is never also in its sponsored slot)."""
    others = [
        (await make_course(db, creator_user=OTTO.id, title=f"Filler {i}"))[1] for i in range(n)
    ]
    _c, maya = await make_course(db, title="Maya's Python", stars=100)
    _c, otto = await make_course(db, creator_user=OTTO.id, title="Otto's SQL", stars=80)
    await make_course(db, creator_user=ANN.id, title="Ann's own")  # Ann is a creator too
    return maya, otto, others


# --- paying for a campaign ---------------------------------------------------------------


async def test_a_topup_is_booked_with_its_payment_and_receipted_after(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    maya, _otto, _ = await catalog_world(db)
    cid = await fund(harness, maya, 50, 5)
    row = await campaign(db, cid)
    assert (row.status, row.budget_minor, row.unused, row.bid_minor) == ("active", 50, 50, 5)
    [entry] = list(await db.scalars(select(PromoEntry)))
    assert (entry.kind, entry.gross_minor, entry.promo_minor, entry.fee_minor) == (
        PromoEntryKind.TOPUP,
        50,
        50,
        0,
    )
    assert entry.gross_minor == entry.fee_minor + entry.net_minor + entry.promo_minor
    # Not a sale: the sales ledger and its figures never see a top-up.
    assert await count(db, LedgerEntry) == 0
    assert await unbooked_payments(db) == []
    assert "is on the promotion balance of campaign" in harness.last_text()
    [job] = list(await db.scalars(select(Job).where(Job.kind == notices.KIND)))
    assert job.status == JobStatus.DONE
    # Paid-in Stars come back by withdrawal only: a refund would leave the budget running.
    payment_id = await db.scalar(select(Payment.id))
    await harness.send(f"/refund {payment_id}", MAYA)
    await harness.send(f"/refund {payment_id}", BOSS)
    db.expire_all()
    assert await db.scalar(select(Payment.refunded_at).where(Payment.id == payment_id)) is None
    assert (await campaign(db, cid)).unused == 50


@pytest.mark.parametrize("error", ["429", "403"])
async def test_a_topup_receipt_that_cannot_be_sent_never_undoes_the_topup(
    app: App, harness: Harness, db: AsyncSession, error: str
) -> None:
    maya, _otto, _ = await catalog_world(db)
    await harness.send(f"/promote {maya} 40 4", MAYA)
    invoice = harness.session.of_type(SendInvoice)[-1]
    await harness.feed(pre_checkout_update(MAYA, invoice.payload, "XTR", 40))
    method = SendMessage(chat_id=MAYA.id, text="…")
    failure = (
        TelegramRetryAfter(method, "Too Many Requests: retry after 1", retry_after=1)
        if error == "429"
        else TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")
    )
    harness.session.add_result(failure)  # the receipt is the first thing sent
    update = successful_payment_update(MAYA, invoice.payload, "XTR", 40, "promo-fail")
    await harness.feed(update)
    await harness.feed(update)  # redelivered: a duplicate, nothing booked twice

    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == invoice.payload))
    assert order is not None and order.status == OrderStatus.PAID
    cid = order.product_id
    assert await count(db, Payment) == 1
    [entry] = list(await db.scalars(select(PromoEntry)))
    assert entry.promo_minor == 40
    assert (await campaign(db, cid)).status == CampaignStatus.ACTIVE
    [job] = list(await db.scalars(select(Job).where(Job.kind == notices.KIND)))
    assert job.status == (JobStatus.PENDING if error == "429" else JobStatus.DONE)


async def test_bad_promote_input_is_refused_and_changes_nothing(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    maya, otto, _ = await catalog_world(db)
    hidden = Course(creator_id=(await db.get(Course, maya)).creator_id, title="Draft")  # type: ignore[union-attr]
    db.add(hidden)
    await db.commit()
    cases = [
        (f"/promote {otto} 50 5", MAYA, "only your own courses"),
        (f"/promote {hidden.id} 50 5", MAYA, "Publish the course first"),
        (f"/promote {maya} 50 60", MAYA, "cannot be more than the budget"),
        (f"/promote {maya} 50 0", MAYA, "must be at least"),
        (f"/promote {maya} 5 1", MAYA, "budget must be at least"),
        (f"/promote {maya} 50000 1", MAYA, "at most"),
        (f"/promote {maya} lots 1", MAYA, "Usage"),
        ("/promote 999999 50 5", MAYA, "no course with that number"),
        (f"/promote {maya} 50 5", BEN, "for creators"),
        ("/promote withdraw 1 5", MAYA, "no campaign with that number"),
        ("/promote withdraw x", MAYA, "Usage"),
    ]
    for text, who, words in cases:
        await harness.send(text, who)
        assert words in harness.last_text(), (text, harness.last_text())
    assert not harness.session.of_type(SendInvoice)
    for model in (PromoCampaign, PromoEntry, Order):
        assert await count(db, model) == 0, model

    cid = await fund(harness, maya, 20, 5)
    await harness.send(f"/promote withdraw {cid} 21", MAYA)
    assert "more than the campaign's unused budget" in harness.last_text()
    await harness.send(f"/promote withdraw {cid} 5", OTTO)  # Otto's own creator row: not his
    assert "no campaign with that number" in harness.last_text()
    await harness.press(PromoteCB(a=PromoteAction.WITHDRAW, id=cid).pack(), OTTO)
    assert (await campaign(db, cid)).unused == 20
    assert await count(db, PromoEntry) == 1


# --- sponsored slots ------------------------------------------------------------------------


async def test_catalog_slot_is_labelled_one_in_five_never_to_owners_or_the_creator(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    maya, otto, _ = await catalog_world(db)
    await fund(harness, maya, 100, 5)
    await fund(harness, otto, 100, 3, who=OTTO)

    await harness.send("/catalog", ANN)
    text = harness.last_text()
    assert text.count(SPONSORED) == 1  # a page of 6: one slot, 1 in 7
    assert sponsored_buttons(harness) == ["📣 Sponsored · Maya's Python"]  # the higher bid
    lines = text.split("\n")
    assert SPONSORED in lines[2]  # the first slot of the page's first five

    # Ben owns Maya's course: he never sees it sponsored; Otto's takes the slot.
    await harness.send("/start", BEN)
    db.add(
        Entitlement(
            user_id=BEN.id, product_kind=ProductKind.COURSE, product_id=maya, starts_at=clock.now()
        )
    )
    await db.commit()
    await harness.send("/catalog", BEN)
    assert sponsored_buttons(harness) == ["📣 Sponsored · Otto's SQL"]
    # A creator never sees (nor pays for) a slot of their own course.
    await harness.send("/catalog", MAYA)
    assert sponsored_buttons(harness) == ["📣 Sponsored · Otto's SQL"]

    # Chinese: the same slot, labelled 推广.
    zh = tg(1003, "Li", language_code="zh")
    await harness.send("/catalog", zh)
    assert "推广" in harness.last_text()


async def test_second_price_once_per_learner_per_day_and_the_budget_stops_it(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    maya, otto, _ = await catalog_world(db)
    top = await fund(harness, maya, 10, 5)
    runner_up = await fund(harness, otto, 100, 3, who=OTTO)

    async def open_slot(who: object) -> None:
        await harness.send("/catalog", who)  # type: ignore[arg-type]
        await harness.click(SPONSORED, who)  # type: ignore[arg-type]

    await open_slot(ANN)
    assert "Maya&#x27;s Python" in harness.last_text()  # the card opened
    # Second price: the runner-up's rank (3 × 1.0) over the winner's relevance (1.0).
    assert (await campaign(db, top)).spent_minor == 3
    await open_slot(ANN)  # the same day: the card opens, nothing is charged
    assert "Maya&#x27;s Python" in harness.last_text()
    assert (await campaign(db, top)).spent_minor == 3
    await open_slot(BEN)
    row = await campaign(db, top)
    assert (row.spent_minor, row.status) == (6, CampaignStatus.ENDED)  # 4 left < bid 5
    await refresh(app)

    clock.advance(days=1)
    await harness.send("/catalog", ANN)
    # Maya's campaign stopped; Otto's, alone, pays the minimum.
    assert sponsored_buttons(harness) == ["📣 Sponsored · Otto's SQL"]
    await harness.click(SPONSORED, ANN)
    assert (await campaign(db, runner_up)).spent_minor == promotions.MIN_BID
    db.expire_all()
    prices = sorted(p for p in await db.scalars(select(PromoClick.price_minor)))
    assert prices == [1, 3, 3]


async def test_forged_and_foreign_sponsored_buttons_charge_nothing(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    maya, _otto, _ = await catalog_world(db)
    cid = await fund(harness, maya, 50, 5)
    await harness.send("/catalog", ANN)
    anns = harness.button(SPONSORED)

    # Made up, empty, too long, and Ann's real button pressed by Ben (foreign to him).
    for forged in (SponsoredCB(t="AAAAAAAAAAAA").pack(), "sp:", "sp:" + "x" * 40, anns):
        await harness.press(forged, BEN)
        answer = harness.session.of_type(AnswerCallbackQuery)[-1]
        assert "not valid" in (answer.text or ""), forged
    assert await count(db, PromoClick) == 0
    assert (await campaign(db, cid)).spent_minor == 0
    assert await count(db, PromoEntry) == 1  # the top-up only


async def test_search_slot_needs_relevance_a_big_bid_does_not_buy_it(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    for i in range(12):
        await make_course(db, creator_user=OTTO.id, title=f"Python course {i}")
    _c, relevant = await make_course(db, title="Python course 12")  # 13th: not on screen
    _c, knitting = await make_course(db, title="Knitting for beginners")
    await fund(harness, knitting, 1000, 900)
    await harness.send("python course", ANN)
    assert sponsored_buttons(harness) == []  # knitting is no answer to "python course"

    await fund(harness, relevant, 50, 2)
    await harness.send("python course", BEN)
    assert sponsored_buttons(harness) == ["📣 Sponsored · Python course 12"]
    text = harness.last_text()
    assert text.count(SPONSORED) == 1 and "Knitting" not in text
    # 8 results and 2 slots at most: never more than one in five.
    assert len(harness.last_markup().inline_keyboard) - 1 <= 10  # type: ignore[union-attr]


async def test_recommendations_get_one_slot_in_five(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    for i in range(8):
        await make_course(db, creator_user=OTTO.id, title=f"Python topic {i}")
    _c, promoted = await make_course(db, title="Python topic promoted")
    await fund(harness, promoted, 50, 2)
    await harness.send("/foryou", ANN)
    buttons = sponsored_buttons(harness)
    assert len(buttons) <= 1
    markup = harness.last_markup()
    assert markup is not None
    organic = [r for r in markup.inline_keyboard if r[0].callback_data.startswith("c:")]  # type: ignore[union-attr]
    assert len(buttons) * 4 <= len(organic)


# --- the creator's view, checked against the raw rows ----------------------------------


async def test_promote_figures_and_the_ledger_agree_with_the_raw_rows(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    maya, otto, _ = await catalog_world(db)
    cid = await fund(harness, maya, 30, 5)
    await fund(harness, otto, 100, 2, who=OTTO)
    for who in (ANN, BEN):
        await harness.send("/catalog", who)
        await harness.click(SPONSORED, who)
    await app.events.flush(app.sessionmaker)  # the card views, as the background writer would
    # Ann buys the course she found in the sponsored slot.
    await harness.press(BuyCB(id=maya).pack(), ANN)
    await harness.click("Telegram Stars", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", 100, "sale-1"))
    await harness.send("/catalog", BEN)  # one more impression, not clicked
    await harness.press(PromoteCB(a=PromoteAction.PAUSE, id=cid).pack(), MAYA)
    await harness.send(f"/promote withdraw {cid} 7", MAYA)
    assert "moved from campaign" in harness.last_text()

    await harness.send("/promote", MAYA)
    shown = harness.last_text()

    # Independently, from the raw rows.
    row = await campaign(db, cid)
    imps = [i for i in await db.scalars(select(PromoImpression)) if i.campaign_id == cid]
    clicks = [c for c in await db.scalars(select(PromoClick)) if c.campaign_id == cid]
    entries = [e for e in await db.scalars(select(PromoEntry)) if e.campaign_id == cid]
    paid = [
        o
        for o in await db.scalars(select(Order))
        if o.status == OrderStatus.PAID and o.product_kind == "course" and o.product_id == maya
    ]
    bought = [
        o
        for o in paid
        if any(c.user_id == o.user_id and c.created_at <= o.paid_at for c in clicks)  # type: ignore[operator]
    ]
    spend = sum(c.price_minor for c in clicks)
    assert (len(imps), len(clicks), spend, len(bought)) == (3, 2, 4, 1)
    assert row.spent_minor == spend
    assert row.status == CampaignStatus.PAUSED
    assert sum(e.fee_minor for e in entries if e.kind == PromoEntryKind.SPEND) == spend
    assert sum(e.gross_minor for e in entries if e.kind == PromoEntryKind.TOPUP) == 30
    assert sum(e.promo_minor for e in entries) == row.unused == 30 - spend - 7
    assert sum(e.net_minor for e in entries) == 7
    assert all(e.gross_minor == e.fee_minor + e.net_minor + e.promo_minor for e in entries)
    assert f"impressions {len(imps)} · clicks {len(clicks)} · purchases {len(bought)}" in shown
    assert f"spent ⭐ {spend}" in shown and f"unused ⭐ {row.unused}" in shown
    assert f"cost per purchase ⭐ {spend // len(bought)}" in shown
    # The creator's balance: the sale's net (100 less the 10 % fee) plus the withdrawal.
    sale_net = sum(e.net_minor for e in await db.scalars(select(LedgerEntry)))
    assert f"your balance: ⭐ {sale_net + 7}" in shown
    # The sale came from a sponsored slot: its source says so (/stats sources).
    sale = next(o for o in paid if o.user_id == ANN.id)
    assert sale.source == "sponsor"
    await app.events.flush(app.sessionmaker)
    await harness.send("/stats all", MAYA)
    assert "sponsored" in harness.last_text()
    # A paused campaign is shown to no one.
    await refresh(app)
    await harness.send("/catalog", tg(1009, "Zed"))
    assert sponsored_buttons(harness) == ["📣 Sponsored · Otto's SQL"]

    # The platform owner sees promotion income apart from the sale fee.
    await harness.send("/platform all", BOSS)
    platform = harness.last_text()
    income = sum(
        e.fee_minor for e in await db.scalars(select(PromoEntry)) if e.kind == PromoEntryKind.SPEND
    )
    assert f"Promoted listings: income ⭐ {income}" in platform


async def test_pause_resume_and_withdraw_all_buttons(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    maya, _otto, _ = await catalog_world(db)
    cid = await fund(harness, maya, 20, 5)
    await harness.send("/promote", MAYA)
    await harness.click("Pause", MAYA)
    assert (await campaign(db, cid)).status == CampaignStatus.PAUSED
    await refresh(app)
    await harness.send("/catalog", ANN)
    assert sponsored_buttons(harness) == []
    await harness.send("/promote", MAYA)
    await harness.click("Resume", MAYA)
    assert (await campaign(db, cid)).status == CampaignStatus.ACTIVE
    await harness.click("Withdraw", MAYA)
    row = await campaign(db, cid)
    assert (row.unused, row.withdrawn_minor, row.status) == (0, 20, CampaignStatus.ENDED)
    balances = await promotions.balances(db, row.creator_id)
    assert (balances.promotion, balances.creator) == (0, 20)
    await harness.send(f"/promote withdraw {cid}", MAYA)
    assert "no unused budget" in harness.last_text()


async def test_an_unpaid_topup_shows_nothing_and_an_expired_course_refuses_payment(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    maya, _otto, _ = await catalog_world(db)
    await harness.send(f"/promote {maya} 30 3", MAYA)
    invoice = harness.session.of_type(SendInvoice)[-1]
    await refresh(app)
    await harness.send("/catalog", ANN)
    assert sponsored_buttons(harness) == []
    course = await db.get(Course, maya)
    assert course is not None
    course.published = False
    await db.commit()
    await harness.feed(pre_checkout_update(MAYA, invoice.payload, "XTR", 30))
    assert not harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok
    assert await count(db, PromoEntry) == 0
