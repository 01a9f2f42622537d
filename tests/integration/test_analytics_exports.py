"""/export, /chart and /platform against a seeded history, checked against the raw rows.

The history goes through the real ledger (book_sale / book_refund) with back-dated rows;
the expected figures are summed here in plain Python from the rows of the tables, never
from the code under test, and compared to the minor unit.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from aiogram.methods import AnswerCallbackQuery, SendDocument, SendMessage, SendPhoto
from aiogram.types import BufferedInputFile, Chat, FSInputFile, Message, PhotoSize
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import exports as analytics
from bot.analytics import periods, rollups
from bot.analytics.exports import ExportKind, write_export
from bot.analytics.periods import Period, PeriodKind, Scope
from bot.analytics.platform import platform_report
from bot.handlers import exports as export_handlers
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.models import (
    ChartCache,
    Course,
    Creator,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Event,
    EventKind,
    LedgerEntry,
    LedgerKind,
    Lesson,
    Order,
    OrderStatus,
    Payment,
    Plan,
    User,
)
from bot.money import minor_digits
from bot.payments.ledger import book_refund, book_sale, sales_summary
from tests.support.updates import Harness, tg_user

OWNER = tg_user(7, "Olga")
ALICE = tg_user(2001, "Alice")  # the creator whose numbers we look at
BORIS = tg_user(2002, "Boris")  # another creator
LEARNER = tg_user(3001, "Lea")
NOW = datetime.now(UTC)


def parse_period(text: str, now: datetime) -> Period:
    period = periods.parse_period(text, now)
    assert isinstance(period, Period)
    return period


@dataclass
class World:
    alice: int
    boris: int
    courses: dict[str, int]
    plan: int


def _at(days_ago: int, hour: int) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=7, second=0, microsecond=0)


async def build_history(db: AsyncSession, seed: int = 13) -> World:
    rng = random.Random(seed)
    users = [User(id=uid, first_name=f"U{uid}", referral_code=f"r{uid}") for uid in range(100, 140)]
    users += [
        User(id=u.id, first_name=u.first_name, referral_code=f"r{u.id}") for u in (ALICE, BORIS)
    ]
    db.add_all(users)
    await db.flush()
    alice = Creator(user_id=ALICE.id, display_name="Alice", fee_bps=1250)
    boris = Creator(user_id=BORIS.id, display_name="Boris")
    db.add_all([alice, boris])
    await db.flush()
    specs = {
        "zh": (alice.id, "Python 入门（零基础）", "USD", 1999),
        "stars": (alice.id, "=Stars & <co>", "XTR", 250),
        "yen": (alice.id, "日本語", "JPY", 3000),
        "boris": (boris.id, "Boris' course", "USD", 5000),
    }
    courses: dict[str, int] = {}
    for name, (creator_id, title, currency, price) in specs.items():
        course = Course(
            creator_id=creator_id, title=title, currency=currency, price_minor=price, published=True
        )
        db.add(course)
        await db.flush()
        courses[name] = course.id
        db.add_all([Lesson(course_id=course.id, position=i, text=f"L{i}") for i in range(1, 4)])
    plan = Plan(creator_id=alice.id, title="VIP 群", stars_price=500, period_days=30)
    db.add(plan)
    await db.flush()

    products = [
        ("course", courses["zh"], alice.id, "USD", "card"),
        ("course", courses["stars"], alice.id, "XTR", "stars"),
        ("course", courses["yen"], alice.id, "JPY", "web"),
        ("plan", plan.id, alice.id, "XTR", "stars"),
        ("course", courses["boris"], boris.id, "USD", "card"),
    ]
    for n in range(90):
        kind, pid, creator_id, currency, method = rng.choice(products)
        user_id = rng.randrange(100, 140)
        days_ago = rng.randrange(0, 75)
        paid_at = _at(days_ago, rng.randrange(0, 24))
        amount = rng.choice([1, 99, 250, 1999, 3333, 5000])
        order = Order(
            public_ref=f"ref-{n}",
            user_id=user_id,
            creator_id=creator_id,
            product_kind=kind,
            product_id=pid,
            method=method,
            currency=currency,
            list_amount_minor=amount,
            amount_minor=amount,
            status=OrderStatus.PAID,
            paid_at=paid_at,
            created_at=paid_at - timedelta(minutes=3),
        )
        db.add(order)
        await db.flush()
        payment = Payment(
            order_id=order.id,
            user_id=user_id,
            method=method,
            currency=currency,
            amount_minor=amount,
            telegram_payment_charge_id=f"ch-{n}",
            created_at=paid_at,
        )
        db.add(payment)
        await db.flush()
        sale = await book_sale(db, payment, creator_id, 1250 if creator_id == alice.id else 1000)
        sale.created_at = paid_at
        if rng.random() < 0.2:
            # Refunded later, sometimes in another period than the sale.
            refunded_at = min(paid_at + timedelta(days=rng.randrange(0, 20)), NOW)
            refund = await book_refund(db, payment, creator_id, 0)
            refund.created_at = refunded_at
            payment.refunded_at = refunded_at
            order.status = OrderStatus.REFUNDED
    # Pending invoices that were never paid, and card views.
    for n in range(30):
        kind, pid, creator_id, currency, method = rng.choice(products)
        db.add(
            Order(
                public_ref=f"pending-{n}",
                user_id=rng.randrange(100, 140),
                creator_id=creator_id,
                product_kind=kind,
                product_id=pid,
                method=method,
                currency=currency,
                list_amount_minor=100,
                amount_minor=100,
                status=OrderStatus.EXPIRED,
                created_at=_at(rng.randrange(0, 75), 12),
            )
        )
    for _n in range(200):
        kind, pid, creator_id, *_rest = rng.choice([p for p in products if p[0] == "course"])
        db.add(
            Event(
                user_id=rng.randrange(100, 140),
                kind=EventKind.VIEW,
                course_id=pid,
                creator_id=creator_id,
                created_at=_at(rng.randrange(0, 75), rng.randrange(0, 24)),
            )
        )
    # Learners of the Chinese course with some progress.
    lessons = list(
        await db.scalars(
            select(Lesson).where(Lesson.course_id == courses["zh"]).order_by(Lesson.position)
        )
    )
    for i, uid in enumerate(range(100, 106)):
        enrollment = Enrollment(
            user_id=uid,
            course_id=courses["zh"],
            started_at=_at(40 - i * 5, 9),
            paused_at=_at(1, 9) if i == 2 else None,
            completed_at=_at(2, 9) if i == 0 else None,
        )
        db.add(enrollment)
        await db.flush()
        for j, lesson in enumerate(lessons[: 3 - i % 3]):
            sent = i % 2 == 0 or j == 0
            db.add(
                Delivery(
                    enrollment_id=enrollment.id,
                    lesson_id=lesson.id,
                    user_id=uid,
                    due_at=_at(30, 9),
                    status=DeliveryStatus.SENT if sent else DeliveryStatus.PENDING,
                    sent_at=_at(30, 9) if sent else None,
                    done_at=_at(20 - j, 10) if sent and j < 2 else None,
                )
            )
    # Written as raw rows (back-dated): rolled up afterwards, as stats-rebuild does.
    await rollups.rebuild(db)
    await db.commit()
    return World(alice.id, boris.id, courses, plan.id)


def read_csv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    assert data.startswith("\ufeff".encode()), "Excel needs the BOM to read UTF-8"
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


async def export_bytes(db: AsyncSession, kind: ExportKind, scope: Scope, period: Period) -> bytes:
    export = await write_export(db, kind, scope, period)
    try:
        return export.path.read_bytes()
    finally:
        export.path.unlink()


def to_minor(text: str, currency: str) -> int:
    value = Decimal(text).scaleb(minor_digits(currency))
    assert value == value.to_integral_value(), f"{text} {currency} has too many decimals"
    return int(value)


async def raw_ledger(db: AsyncSession) -> list[LedgerEntry]:
    return list(await db.scalars(select(LedgerEntry)))


@pytest.mark.parametrize("label", ["all", "30d", "7d", "month"])
async def test_sales_file_sums_equal_the_ledger_and_sales_to_the_minor_unit(
    db: AsyncSession, label: str
) -> None:
    world = await build_history(db)
    if label == "month":
        label = f"{(NOW - timedelta(days=35)):%Y-%m}"
    period = parse_period(label, NOW)
    header, rows = read_csv(await export_bytes(db, ExportKind.SALES, Scope(world.alice), period))
    assert header == analytics.SALES_HEADER

    got: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    kinds: Counter[str] = Counter()
    for row in rows:
        cur = row["currency"]
        for i, column in enumerate(("gross", "fee", "net")):
            got[cur][i] += to_minor(row[column], cur)
        kinds[row["type"]] += 1
        assert (row["type"] == "refund") == row["gross"].startswith("-") or row["gross"] == "0"
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    expected_kinds: Counter[str] = Counter()
    for entry in await raw_ledger(db):
        if entry.creator_id == world.alice and period.contains(entry.created_at):
            e = expected[entry.currency]
            e[0] += entry.gross_minor
            e[1] += entry.fee_minor
            e[2] += entry.net_minor
            expected_kinds[entry.kind] += 1
    assert dict(got) == dict(expected)
    assert kinds == expected_kinds
    assert all(g == f + n for g, f, n in got.values())
    if label == "all":
        assert len(rows) > 50 and expected_kinds[LedgerKind.REFUND] > 0
        summary = {
            t.currency: [t.gross_minor, t.fee_minor, t.net_minor]
            for t in await sales_summary(db, world.alice)
        }
        assert dict(got) == summary  # what /sales prints


async def test_sales_rows_name_the_product_order_learner_and_method(db: AsyncSession) -> None:
    world = await build_history(db)
    _header, rows = read_csv(
        await export_bytes(db, ExportKind.SALES, Scope(world.alice), parse_period("all", NOW))
    )
    payments = {p.id: p for p in await db.scalars(select(Payment))}
    orders = {o.id: o for o in await db.scalars(select(Order))}
    titles = {("course", c.id): c.title for c in await db.scalars(select(Course))}
    titles[("plan", world.plan)] = "VIP 群"
    for row in rows:
        payment = payments[int(row["payment_id"])]
        order = orders[payment.order_id]
        assert row["order"] == order.public_ref
        assert int(row["learner_id"]) == payment.user_id
        assert row["method"] == payment.method
        title = titles[(row["product_kind"], int(row["product_id"]))]
        # A title that a spreadsheet would run as a formula is quoted.
        assert row["product"] == ("'" + title if title.startswith("=") else title)
    assert {r["product"] for r in rows} >= {"Python 入门（零基础）", "VIP 群", "'=Stars & <co>"}
    # Days and times are UTC and rows are in the order the money moved.
    assert [r["date_utc"] for r in rows] == sorted(r["date_utc"] for r in rows)


async def test_learners_file_has_progress_per_learner_per_course(db: AsyncSession) -> None:
    world = await build_history(db)
    header, rows = read_csv(
        await export_bytes(db, ExportKind.LEARNERS, Scope(world.alice), parse_period("all", NOW))
    )
    assert header == analytics.LEARNERS_HEADER
    enrollments = list(await db.scalars(select(Enrollment)))
    deliveries = list(await db.scalars(select(Delivery)))
    assert len(rows) == len(enrollments) == 6
    for row in rows:
        e = next(x for x in enrollments if x.user_id == int(row["learner_id"]))
        mine = [d for d in deliveries if d.enrollment_id == e.id]
        assert int(row["lessons_in_course"]) == 3
        assert int(row["lessons_delivered"]) == sum(d.status == DeliveryStatus.SENT for d in mine)
        assert int(row["lessons_done"]) == sum(d.done_at is not None for d in mine)
        dones = [d.done_at for d in mine if d.done_at is not None]
        assert row["last_done_utc"] == (f"{max(dones):%Y-%m-%d %H:%M:%S}" if dones else "")
        assert row["paused"] == ("yes" if e.paused_at else "no")
        assert bool(row["completed_at_utc"]) == (e.completed_at is not None)
        assert row["course"] == "Python 入门（零基础）"
    # The other creator has no learners: a file with its header only.
    header, rows = read_csv(
        await export_bytes(db, ExportKind.LEARNERS, Scope(world.boris), parse_period("all", NOW))
    )
    assert header == analytics.LEARNERS_HEADER and rows == []


async def test_funnel_file_counts_per_product_per_day(db: AsyncSession) -> None:
    world = await build_history(db)
    period = parse_period("30d", NOW)
    header, rows = read_csv(await export_bytes(db, ExportKind.FUNNEL, Scope(world.alice), period))
    assert header == analytics.FUNNEL_HEADER
    expected: Counter[tuple[str, str, int, str]] = Counter()
    for ev in await db.scalars(select(Event)):
        if (
            ev.creator_id == world.alice
            and ev.kind == EventKind.VIEW
            and period.contains(ev.created_at)
        ):
            expected[(f"{ev.created_at:%Y-%m-%d}", "course", ev.course_id or 0, "views")] += 1
    for o in await db.scalars(select(Order)):
        if o.creator_id != world.alice:
            continue
        if period.contains(o.created_at):
            expected[(f"{o.created_at:%Y-%m-%d}", o.product_kind, o.product_id, "invoices")] += 1
        if o.paid_at is not None and period.contains(o.paid_at):
            expected[(f"{o.paid_at:%Y-%m-%d}", o.product_kind, o.product_id, "paid")] += 1
    got: Counter[tuple[str, str, int, str]] = Counter()
    for row in rows:
        for step in ("views", "buy_presses", "invoices", "paid"):
            if int(row[step]):
                got[(row["date"], row["product_kind"], int(row["product_id"]), step)] += int(
                    row[step]
                )
    assert got == expected and sum(expected.values()) > 0


async def test_platform_report_against_raw_rows(db: AsyncSession) -> None:
    await build_history(db)
    period = parse_period("30d", NOW)
    report = await platform_report(db, period)
    ledger = [e for e in await raw_ledger(db) if period.contains(e.created_at)]
    payments = {p.id: p for p in await db.scalars(select(Payment))}
    by_currency: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for e in ledger:
        f = by_currency[e.currency]
        if e.kind == LedgerKind.SALE:
            f[0] += 1
            f[2] += e.gross_minor
        else:
            f[1] += 1
            f[3] -= e.gross_minor
        f[4] += e.fee_minor
    assert {
        c.currency: [c.sales, c.refunds, c.gmv_minor, c.refunded_minor, c.fee_minor]
        for c in report.currencies
    } == dict(by_currency)
    sales = [e for e in ledger if e.kind == LedgerKind.SALE]
    assert report.creators_with_sales == len({e.creator_id for e in sales})
    assert report.buyers == len({payments[e.payment_id].user_id for e in sales})
    events = [e for e in await db.scalars(select(Event)) if period.contains(e.created_at)]
    active = {e.user_id for e in events if e.user_id} | {
        p.user_id for p in payments.values() if period.contains(p.created_at)
    }
    assert report.active_learners == len(active)
    methods: Counter[tuple[str, str]] = Counter()
    method_gross: Counter[tuple[str, str]] = Counter()
    for e in sales:
        key = (payments[e.payment_id].method, e.currency)
        methods[key] += 1
        method_gross[key] += e.gross_minor
    assert {(m.method, m.currency): (m.payments, m.gross_minor) for m in report.methods} == {
        k: (methods[k], method_gross[k]) for k in methods
    }
    orders = {o.id: o for o in await db.scalars(select(Order))}
    per_product: Counter[tuple[str, str, int]] = Counter()
    for e in ledger:
        o = orders[payments[e.payment_id].order_id]
        per_product[(e.currency, o.product_kind, o.product_id)] += e.gross_minor
    for currency, items in report.top.items():
        ranked = sorted(
            ((v, k) for k, v in per_product.items() if k[0] == currency and v > 0),
            key=lambda x: (-x[0], x[1][1], x[1][2]),
        )[: len(items)]
        assert [(p.gross_minor, p.product_kind, p.product_id) for p in items] == [
            (v, k[1], k[2]) for v, k in ranked
        ]


async def test_a_refund_counts_in_the_period_it_happened(db: AsyncSession) -> None:
    world = await build_history(db)
    ledger = await raw_ledger(db)
    moved = [
        r
        for r in ledger
        if r.kind == LedgerKind.REFUND
        and r.creator_id == world.alice
        and (
            sale := next(
                s for s in ledger if s.payment_id == r.payment_id and s.kind == LedgerKind.SALE
            )
        )
        and sale.created_at.date() != r.created_at.date()
    ]
    assert moved, "the seeded history should refund some sales on a later day"
    refund = moved[0]
    d = refund.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    day = Period("1", PeriodKind.DAYS, d, d + timedelta(days=1), d - timedelta(days=1), d, 1)
    _h, rows = read_csv(await export_bytes(db, ExportKind.SALES, Scope(world.alice), day))
    assert str(refund.payment_id) in {r["payment_id"] for r in rows if r["type"] == "refund"}
    assert str(refund.payment_id) not in {r["payment_id"] for r in rows if r["type"] == "sale"}


# --- through the bot -----------------------------------------------------------------------


@pytest.fixture
def kept_files(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bytes]]:
    """What /export sent: the handler deletes its temp file after sending; keep a copy."""
    kept: list[tuple[str, bytes]] = []

    def keep(path: Path) -> None:
        kept.append((path.name, path.read_bytes()))
        path.unlink()

    monkeypatch.setattr(export_handlers, "discard", keep)
    return kept


async def say(h: Harness, text: str, user: object) -> list[str]:
    h.session.clear()
    await h.send(text, user)  # type: ignore[arg-type]
    return [r.text for r in h.session.of_type(SendMessage)]


async def test_export_command_sends_the_csv_and_refuses_politely(
    harness: Harness, db: AsyncSession, kept_files: list[tuple[str, bytes]]
) -> None:
    world = await build_history(db)
    await db.close()
    await say(harness, "/export sales all", ALICE)
    [doc] = harness.session.of_type(SendDocument)
    assert isinstance(doc.document, FSInputFile)
    assert doc.document.filename == f"lyceum-sales-creator{world.alice}-all.csv"
    assert "rows" in (doc.caption or "")
    _h, rows = read_csv(kept_files[-1][1])
    summary = {t.currency: t.gross_minor for t in await sales_summary(db, world.alice)}
    got: Counter[str] = Counter()
    for r in rows:
        got[r["currency"]] += to_minor(r["gross"], r["currency"])
    assert dict(got) == summary

    # Another creator's course: the same answer as a course that is not there; no file.
    for text in (f"/export sales course={world.courses['zh']}", "/export sales course=999999"):
        said = await say(harness, text, BORIS)
        assert said == ["No such course or plan of yours."]
        assert not harness.session.of_type(SendDocument)
    # creator= is for platform owners.
    said = await say(harness, f"/export sales creator={world.alice}", BORIS)
    assert "platform owners" in said[0] and not harness.session.of_type(SendDocument)
    # A month in the future, an unknown kind, garbage.
    future = NOW + timedelta(days=40)
    assert await say(harness, f"/export sales {future:%Y-%m}", ALICE) == [
        "That month has not begun yet."
    ]
    assert "/export sales" in (await say(harness, "/export money", ALICE))[0]
    assert "A period is" in (await say(harness, "/export sales 0d", ALICE))[0]
    assert "A period is" in (await say(harness, "/export sales 2024-13", ALICE))[0]
    assert not harness.session.of_type(SendDocument)
    # A period with nothing in it: the header alone, and a sentence.
    said = await say(harness, "/export sales 2001-01", ALICE)
    assert harness.session.of_type(SendDocument)
    assert "only its header" in said[0]
    header, rows = read_csv(kept_files[-1][1])
    assert header == analytics.SALES_HEADER and rows == []
    # A learner is not a creator.
    assert "for course creators" in (await say(harness, "/export sales", LEARNER))[0]
    # The owner: any creator's file, or the whole platform's.
    await say(harness, f"/export funnel 90d creator={world.boris}", OWNER)
    assert harness.session.of_type(SendDocument)
    _h, rows = read_csv(kept_files[-1][1])
    assert rows and {r["product"] for r in rows} == {"Boris' course"}
    await say(harness, "/export learners", OWNER)
    _h, rows = read_csv(kept_files[-1][1])
    assert len(rows) == 6


async def test_chart_is_uploaded_once_then_sent_by_file_id(
    harness: Harness, db: AsyncSession
) -> None:
    world = await build_history(db)
    await db.close()
    photo = Message(
        message_id=1,
        date=NOW,
        chat=Chat(id=ALICE.id, type="private"),
        photo=[PhotoSize(file_id="AgAC-chart-1", file_unique_id="u1", width=900, height=800)],
    )
    harness.session.add_result(photo)
    await say(harness, f"/chart 30d course={world.courses['zh']}", ALICE)
    [first] = harness.session.of_type(SendPhoto)
    assert isinstance(first.photo, BufferedInputFile)
    assert first.photo.data.startswith(b"\x89PNG")
    assert "Python 入门" in (first.caption or "")
    async with harness.app.sessionmaker() as s:
        assert [c.file_id for c in await s.scalars(select(ChartCache))] == ["AgAC-chart-1"]

    await say(harness, f"/chart 30d course={world.courses['zh']}", ALICE)
    [again] = harness.session.of_type(SendPhoto)
    assert again.photo == "AgAC-chart-1"

    # Another creator's course: refused, nothing drawn.
    said = await say(harness, f"/chart course={world.courses['zh']}", BORIS)
    assert said == ["No such course or plan of yours."] and not harness.session.of_type(SendPhoto)
    # Nothing in the period: a sentence, not an error.
    said = await say(harness, "/chart 2001-01", ALICE)
    assert "nothing to draw" in said[0] and not harness.session.of_type(SendPhoto)
    assert "/chart" in (await say(harness, "/chart weekly", ALICE))[0]


def photo_sent(file_id: str) -> Message:
    return Message(
        message_id=1,
        date=NOW,
        chat=Chat(id=ALICE.id, type="private"),
        photo=[PhotoSize(file_id=file_id, file_unique_id=file_id, width=900, height=800)],
    )


async def sell_now(harness: Harness, world: World, amount: int) -> None:
    """A new sale of Alice's Chinese course, booked through the ledger now."""
    async with harness.app.sessionmaker() as s:
        order = Order(
            public_ref=f"new-{amount}",
            user_id=100,
            creator_id=world.alice,
            product_kind="course",
            product_id=world.courses["zh"],
            method="card",
            currency="USD",
            list_amount_minor=amount,
            amount_minor=amount,
            status=OrderStatus.PAID,
            paid_at=NOW,
            created_at=NOW,
        )
        s.add(order)
        await s.flush()
        payment = Payment(
            order_id=order.id,
            user_id=100,
            method="card",
            currency="USD",
            amount_minor=amount,
            telegram_payment_charge_id=f"ch-new-{amount}",
            created_at=NOW,
        )
        s.add(payment)
        await s.flush()
        await book_sale(s, payment, world.alice, 1250)
        await s.commit()


async def test_dashboard_chart_and_csv_buttons(
    harness: Harness, db: AsyncSession, kept_files: list[tuple[str, bytes]]
) -> None:
    """/stats' 📈 Chart sends the picture for the dashboard's scope and period (uploaded
    once, then by file_id, a new one once the figures change); 📄 CSV the sales file."""
    world = await build_history(db)
    await db.close()
    await say(harness, "/stats", ALICE)
    chart, csv_button = harness.button("Chart"), harness.button("CSV")
    assert StatsCB.unpack(chart).p == "30" and StatsCB.unpack(chart).s == "a"

    harness.session.clear()
    harness.session.add_result(True)  # the callback's answer
    harness.session.add_result(photo_sent("AgAC-dash-1"))
    await harness.press(chart, ALICE)
    [first] = harness.session.of_type(SendPhoto)
    assert isinstance(first.photo, BufferedInputFile) and first.photo.data.startswith(b"\x89PNG")
    assert "30d" in (first.caption or "")
    # Drawn from the same figures as /chart: the same picture, by its file_id.
    for again in (lambda: harness.press(chart, ALICE), lambda: say(harness, "/chart", ALICE)):
        harness.session.clear()
        await again()
        [photo] = harness.session.of_type(SendPhoto)
        assert photo.photo == "AgAC-dash-1"
    # A new sale is a new data version: a new picture, uploaded once more.
    await sell_now(harness, world, 4242)
    harness.session.clear()
    harness.session.add_result(True)
    harness.session.add_result(photo_sent("AgAC-dash-2"))
    await harness.press(chart, ALICE)
    [fresh] = harness.session.of_type(SendPhoto)
    assert isinstance(fresh.photo, BufferedInputFile)
    async with harness.app.sessionmaker() as s:
        keys = {c.file_id: c.key for c in await s.scalars(select(ChartCache))}
    assert set(keys) == {"AgAC-dash-1", "AgAC-dash-2"}
    assert all(k.startswith(f"creator{world.alice}|30d|") for k in keys.values())

    # CSV: the sales file for the dashboard's scope and period; its sums are the ledger's.
    harness.session.clear()
    await harness.press(csv_button, ALICE)
    [doc] = harness.session.of_type(SendDocument)
    assert isinstance(doc.document, FSInputFile)
    assert doc.document.filename == f"lyceum-sales-creator{world.alice}-30d.csv"
    header, rows = read_csv(kept_files[-1][1])
    assert header == analytics.SALES_HEADER
    async with harness.app.sessionmaker() as s:
        ledger = await raw_ledger(s)
    start = NOW.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=29)
    want: Counter[str] = Counter()
    for e in ledger:
        if e.creator_id == world.alice and e.created_at >= start:
            want[e.currency] += e.gross_minor
    got: Counter[str] = Counter()
    for r in rows:
        got[r["currency"]] += to_minor(r["gross"], r["currency"])
    assert got == want and any(r["gross"] == "42.42" for r in rows)
    # One course, a calendar month (the m-form the buttons carry).
    month = f"m{NOW:%Y-%m}"
    course = f"c{world.courses['zh']}"
    harness.session.clear()
    await harness.press(StatsCB(a=StatsAction.CSV, c=world.alice, p=month, s=course).pack(), ALICE)
    [doc] = harness.session.of_type(SendDocument)
    assert isinstance(doc.document, FSInputFile)
    name = f"lyceum-sales-creator{world.alice}-course{world.courses['zh']}-{NOW:%Y-%m}.csv"
    assert doc.document.filename == name
    _h, rows = read_csv(kept_files[-1][1])
    assert rows and {r["product_id"] for r in rows} == {str(world.courses["zh"])}

    # Forged buttons: another creator's dashboard, another creator's course, a future
    # month, an unknown scope: an alert, nothing sent.
    boris_course = f"c{world.courses['boris']}"
    future = f"m{NOW + timedelta(days=40):%Y-%m}"
    for data, who, said in (
        (StatsCB(a=StatsAction.CHART, c=world.alice, p="30", s="a"), BORIS, "not yours"),
        (StatsCB(a=StatsAction.CSV, c=world.alice, p="30", s=boris_course), ALICE, "not one of"),
        (StatsCB(a=StatsAction.CHART, c=world.alice, p=future, s="a"), ALICE, "not begun"),
        (StatsCB(a=StatsAction.CSV, c=world.alice, p="30", s="x1"), ALICE, "do not know"),
    ):
        harness.session.clear()
        await harness.press(data.pack(), who)
        assert not harness.session.of_type(SendPhoto) and not harness.session.of_type(SendDocument)
        [answer] = harness.session.of_type(AnswerCallbackQuery)
        assert answer.show_alert and said in (answer.text or ""), (data, answer.text)


async def test_platform_is_for_owners_only(harness: Harness, db: AsyncSession) -> None:
    await build_history(db)
    await db.close()
    for user in (LEARNER, ALICE):
        assert await say(harness, "/platform", user) == ["This command is for platform owners."]
    [text] = await say(harness, "/platform 30d", OWNER)
    assert "GMV" in text and "Top products" in text and "Payment methods" in text
    [text] = await say(harness, "/platform 2001-01", OWNER)
    assert "No payments and no active learners" in text
    zh = tg_user(7, "Olga", "zh")
    [text] = await say(harness, "/platform", zh)
    assert "成交额" in text and "支付方式" in text
