"""Bundles through the real Dispatcher: /bundle made and refused, the page with the
learner's own price, Stars paid for it (every course granted, the ledger in the same
transaction, the receipt after it even when its send fails), the refund taking back
exactly what it gave, and unpublishing."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramServerError
from aiogram.methods import AnswerCallbackQuery, AnswerPreCheckoutQuery, SendInvoice, SendMessage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import periods
from bot.analytics.platform import platform_report
from bot.app import App
from bot.keyboards.callbacks import BundleCB, CourseCB, CreatorCB
from bot.keyboards.payments import PayCB
from bot.marketplace import bundles
from bot.models import (
    Bundle,
    Course,
    Entitlement,
    Job,
    JobStatus,
    LedgerEntry,
    Order,
    OrderStatus,
    Payment,
    ProductKind,
    utcnow,
)
from bot.scheduler import notices
from bot.services import access
from tests.support.payments import (
    OTHER_CREATOR_USER,
    make_course,
    pre_checkout_update,
    successful_payment_update,
    tg,
)
from tests.support.updates import Harness

MAYA = tg(501, "Maya")
OLEG = tg(502, "Oleg")
ANN = tg(1001, "Ann")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def three_courses(db: AsyncSession) -> tuple[int, list[int]]:
    """Maya's courses at 100, 200 and 300 Stars (19.99 USD each by card)."""
    ids = []
    creator_id = 0
    for title, stars in (("Alpha", 100), ("Beta", 200), ("Gamma", 300)):
        creator_id, course_id = await make_course(db, title=title, stars=stars)
        ids.append(course_id)
    return creator_id, ids


def test_the_price_rule() -> None:
    """bundle × (list value not owned) / (list value), half up, ≥ 1; None: not worth it."""
    lists = [100, 200, 300]
    assert bundles.reduced_price(450, lists, [False, False, False]) == 450
    assert bundles.reduced_price(450, lists, [True, False, False]) == 375  # 450 × 500/600
    assert bundles.reduced_price(450, lists, [False, True, True]) == 75  # 450 × 100/600
    assert bundles.reduced_price(451, lists, [True, True, False]) == 226  # 225.5 → 226
    assert bundles.reduced_price(450, lists, [True, True, True]) is None  # owns them all
    # Prices lowered after the bundle was made: no longer below the rest, not offered.
    assert bundles.reduced_price(450, [100, 200, 100], [False, False, False]) is None
    assert bundles.reduced_price(1, [1000, 1000], [True, False]) == 1  # the floor
    assert bundles.reduced_price(450, [100, 0, 300], [False, False, False]) is None
    # Independent check over a grid: always below the rest, never above the bundle.
    for price in (2, 99, 450, 590):
        for owned in ([True, False, False], [False, True, False], [False, False, True]):
            rest = sum(p for p, o in zip(lists, owned, strict=True) if not o)
            got = bundles.reduced_price(price, lists, owned)
            exact = price * rest / 600
            assert got is not None and got < rest and got <= price
            assert abs(got - exact) <= 0.5


@pytest.mark.parametrize(
    ("args", "reply"),
    [
        ("", "Usage"),
        ("new", "Usage"),
        ("new Path {a},{b}", "Usage"),
        ("new Path {a},{other} 200⭐", "You have no course"),
        ("new Path {a},999999 200⭐", "You have no course"),
        ("new Path {a},{hidden} 200⭐", "is not published"),
        ("new Path {a} 50⭐", "at least 2"),
        ("new Path {a},{a} 50⭐", "listed twice"),
        ("new Path {a},{b} 0⭐", "whole number of Stars"),
        ("new Path {a},{b} 999999999⭐", "whole number of Stars"),
        ("new Path {a},{b} 0 USD", "whole number of Stars"),
        ("new Path {a},{b} 1e9 USD", "whole number of Stars"),
        ("new Path {a},{b} 250", "whole number of Stars"),
        ("new Path {a},{b} 300⭐", "must cost less"),
        ("new Path {a},{b} 50 EUR", "not sold by card in this currency"),
        ("new {long} {a},{b} 50⭐", "1 to 100 characters"),
        ("off 999", "no bundle #999"),
        ("whatever", "Usage"),
    ],
)
async def test_bad_bundles_are_refused_and_change_nothing(
    app: App, harness: Harness, db: AsyncSession, args: str, reply: str
) -> None:
    _creator, (a, b, _c) = await three_courses(db)
    _other_creator, other = await make_course(db, creator_user=OTHER_CREATOR_USER, title="Theirs")
    _creator, hidden = await make_course(db, title="Draft")
    draft = await db.get(Course, hidden)
    assert draft is not None
    draft.published = False
    await db.commit()
    text = args.format(a=a, b=b, other=other, hidden=hidden, long="x" * 101)
    await harness.send(f"/bundle {text}".strip(), MAYA)
    if args == "":
        assert "no bundles yet" in harness.last_text()
    else:
        assert reply in harness.last_text(), harness.last_text()
    assert await db.scalar(select(func.count(Bundle.id))) == 0


async def test_only_creators_make_bundles(app: App, harness: Harness, db: AsyncSession) -> None:
    _creator, (a, b, _c) = await three_courses(db)
    await harness.send(f"/bundle new Path {a},{b} 200⭐", ANN)
    assert "made by creators" in harness.last_text()
    assert await db.scalar(select(func.count(Bundle.id))) == 0


async def make_bundle(harness: Harness, db: AsyncSession, ids: list[int], price: str) -> int:
    await harness.send(f"/bundle new Full path {','.join(map(str, ids))} {price}", MAYA)
    assert "is on sale" in harness.last_text(), harness.last_text()
    bundle_id = await db.scalar(select(func.max(Bundle.id)))
    assert bundle_id is not None
    return bundle_id


async def pay_bundle(harness: Harness, bundle_id: int, fail_receipt: bool = False) -> str:
    """Opens the bundle, pays its Stars invoice as Telegram would; the order's reference."""
    await harness.press(BundleCB(id=bundle_id).pack(), ANN)
    await harness.click("Telegram Stars", ANN)
    invoice = harness.session.of_type(SendInvoice)[-1]
    amount = invoice.prices[0].amount
    await harness.feed(pre_checkout_update(ANN, invoice.payload, "XTR", amount))
    assert harness.session.of_type(AnswerPreCheckoutQuery)[-1].ok
    if fail_receipt:
        harness.session.add_result(
            TelegramServerError(SendMessage(chat_id=ANN.id, text="…"), "Internal Server Error")
        )
    await harness.feed(successful_payment_update(ANN, invoice.payload, "XTR", amount, "ch-1"))
    return invoice.payload


async def entitlements(db: AsyncSession) -> dict[int, tuple[int | None, bool]]:
    """course id → (source order id, active) for Ann."""
    db.expire_all()
    rows = await db.execute(
        select(Entitlement.product_id, Entitlement.source_order_id, Entitlement.revoked_at).where(
            Entitlement.user_id == ANN.id, Entitlement.product_kind == ProductKind.COURSE
        )
    )
    return {cid: (order, revoked is None) for cid, order, revoked in rows}


@pytest.mark.parametrize("fail_receipt", [False, True])
async def test_a_learner_who_owns_one_course_pays_less_and_gets_the_rest(
    app: App, harness: Harness, db: AsyncSession, fail_receipt: bool
) -> None:
    creator_id, (a, b, c) = await three_courses(db)
    bundle_id = await make_bundle(harness, db, [a, b, c], "450⭐ 49.99 USD")

    # Seen on each course's card and on the creator's page.
    await harness.press(CourseCB(id=b).pack(), ANN)
    assert "Also in bundle «Full path»" in harness.last_text()
    assert harness.button("Full path") == BundleCB(id=bundle_id).pack()
    await harness.press(CreatorCB(id=creator_id).pack(), ANN)
    assert "Bundles:" in harness.last_text() and "Full path" in harness.last_text()

    # Ann already owns Alpha (100 of the 600 Stars): 450 × 500 / 600 = 375.
    await access.grant(db, ANN.id, ProductKind.COURSE, a, days=None)
    await db.commit()
    await harness.press(BundleCB(id=bundle_id).pack(), ANN)
    page = harness.last_text()
    assert "Your price" in page and "375" in page
    ref = await pay_bundle(harness, bundle_id, fail_receipt)
    assert harness.session.of_type(SendInvoice)[-1].prices[0].amount == 375

    # Booked whatever became of the receipt: order, payment, ledger, Beta and Gamma.
    db.expire_all()
    order = await db.scalar(select(Order).where(Order.public_ref == ref))
    assert order is not None and order.status == OrderStatus.PAID
    assert (order.product_kind, order.amount_minor) == (ProductKind.BUNDLE, 375)
    order_id = order.id
    sale = await db.scalar(select(LedgerEntry).where(LedgerEntry.creator_id == creator_id))
    assert sale is not None and sale.gross_minor == 375
    assert sale.gross_minor == sale.fee_minor + sale.net_minor + sale.commission_minor
    assert (sale.fee_minor, sale.net_minor) == (38, 337)  # 10 % of 375, half up
    held = await entitlements(db)
    assert held == {a: (None, True), b: (order_id, True), c: (order_id, True)}
    receipts = [t for t in harness.session.texts() if "Every course of" in t]
    assert len(receipts) == 1  # the one attempt, failed or not: sent after the commit
    [job] = await db.scalars(select(Job).where(Job.kind == notices.KIND))
    # A failed send is the scheduler's to retry; the sale above never depended on it.
    assert job.status == (JobStatus.PENDING if fail_receipt else JobStatus.DONE)

    # The owners' platform report names the bundle among the top products.
    period = periods.parse_period("30d", utcnow())
    assert isinstance(period, periods.Period)
    report = await platform_report(db, period)
    assert [(p.product_kind, p.title, p.gross_minor) for p in report.top["XTR"]] == [
        (ProductKind.BUNDLE, "Full path", 375)
    ]

    # Now she owns them all: the page says so and a forged Pay is refused.
    await harness.press(BundleCB(id=bundle_id).pack(), ANN)
    assert "You own every course" in harness.last_text()
    await harness.press(PayCB(k="bundle", id=bundle_id, m="stars").pack(), ANN)
    assert "already have" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")

    # The refund takes back Beta and Gamma, and keeps Alpha (another purchase gave it).
    await harness.send(f"/refund {ref}", MAYA)
    held = await entitlements(db)
    assert held == {a: (None, True), b: (order_id, False), c: (order_id, False)}
    db.expire_all()
    total = await db.scalar(
        select(func.sum(LedgerEntry.gross_minor)).where(LedgerEntry.creator_id == creator_id)
    )
    assert total == 0
    assert await db.scalar(select(func.count(Payment.id))) == 1


async def test_not_worth_it_and_unpublished(app: App, harness: Harness, db: AsyncSession) -> None:
    _creator, (a, b, c) = await three_courses(db)
    bundle_id = await make_bundle(harness, db, [a, b, c], "450⭐")
    # Gamma's price drops to 100 Stars: the bundle (450) is no longer below its courses (400).
    gamma = await db.get(Course, c)
    assert gamma is not None
    gamma.stars_price = 100
    await db.commit()
    await harness.press(BundleCB(id=bundle_id).pack(), ANN)
    assert "would not cost you less" in harness.last_text()
    await harness.press(PayCB(k="bundle", id=bundle_id, m="stars").pack(), ANN)
    assert "would not cost you less" in (
        harness.session.of_type(AnswerCallbackQuery)[-1].text or ""
    )
    assert await db.scalar(select(func.count(Order.id))) == 0

    # Another creator cannot unpublish it; Maya can, and it leaves the card.
    await harness.send(f"/bundle off {bundle_id}", OLEG)
    assert "made by creators" in harness.last_text() or "no bundle" in harness.last_text()
    await harness.send("/bundle", MAYA)
    await harness.click(f"Unpublish #{bundle_id}", MAYA)
    assert "unpublished" in harness.last_text()
    db.expire_all()
    bundle = await db.get(Bundle, bundle_id)
    assert bundle is not None and not bundle.published
    await harness.press(CourseCB(id=a).pack(), ANN)
    assert "Also in bundle" not in harness.last_text()
    await harness.press(BundleCB(id=bundle_id).pack(), ANN)
    assert "no longer on sale" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    # A forged unpublish by a learner changes nothing.
    await harness.press(BundleCB(id=bundle_id, off=1).pack(), ANN)
    assert await db.scalar(select(func.count(Order.id))) == 0
