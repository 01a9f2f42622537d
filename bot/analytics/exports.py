"""The CSV exports (sales, learners, funnel); periods and scopes are bot.analytics.periods.

Amounts in the files are major units with the currency's own decimals (2 for USD, 0 for
JPY and Stars), written from the minor units as exact decimals: the sums of a file equal
the ledger (and /sales) to the minor unit. A refund is a row of its own, negative, dated
when the money went back. Files are written row by row to a temporary file, so a long
history never sits in memory.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.analytics.periods import (
    Period,
    Scope,
    within,
)
from bot.models import (
    Bundle,
    Course,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Event,
    EventKind,
    LedgerEntry,
    Lesson,
    Order,
    Payment,
    PaymentMethod,
    Plan,
    ProductKind,
    User,
)
from bot.money import to_decimal


def product_title() -> ColumnElement[str]:
    """The title of an order's product (needs the course, plan and bundle outer joins below)."""
    return func.coalesce(Course.title, Plan.title, Bundle.title, literal(""))


def with_products(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    return (
        query.outerjoin(
            Course, and_(Order.product_kind == ProductKind.COURSE, Course.id == Order.product_id)
        )
        .outerjoin(Plan, and_(Order.product_kind == ProductKind.PLAN, Plan.id == Order.product_id))
        .outerjoin(
            Bundle, and_(Order.product_kind == ProductKind.BUNDLE, Bundle.id == Order.product_id)
        )
    )


def order_in_scope(query: Select[*tuple[Any, ...]], scope: Scope) -> Select[*tuple[Any, ...]]:
    if scope.creator_id is not None:
        query = query.where(Order.creator_id == scope.creator_id)
    if scope.kind is not None:
        query = query.where(Order.product_kind == scope.kind, Order.product_id == scope.product_id)
    return query


# --- CSV files -----------------------------------------------------------------------------


class ExportKind(StrEnum):
    SALES = "sales"
    LEARNERS = "learners"
    FUNNEL = "funnel"


# Learners' progress is a state, not a flow: everyone unless a period is asked for.
DEFAULT_PERIODS = {ExportKind.SALES: "30d", ExportKind.LEARNERS: "all", ExportKind.FUNNEL: "30d"}

# A Buy press on a card (recorded since the dashboard's events).
BUY_PRESS = EventKind.BUY

SALES_HEADER = [
    "date_utc",
    "type",
    "payment_id",
    "order",
    "product_kind",
    "product_id",
    "product",
    "learner_id",
    "method",
    "currency",
    "gross",
    "fee",
    "net",
    "source",
]
LEARNERS_HEADER = [
    "learner_id",
    "username",
    "course_id",
    "course",
    "enrolled_at_utc",
    "lessons_in_course",
    "lessons_delivered",
    "lessons_done",
    "last_done_utc",
    "completed_at_utc",
    "paused",
]
FUNNEL_HEADER = [
    "date",
    "product_kind",
    "product_id",
    "product",
    "views",
    "buy_presses",
    "invoices",
    "paid",
]
HEADERS = {
    ExportKind.SALES: SALES_HEADER,
    ExportKind.LEARNERS: LEARNERS_HEADER,
    ExportKind.FUNNEL: FUNNEL_HEADER,
}


def major(amount_minor: int, currency: str) -> str:
    """Minor units as an exact decimal string in major units: 1999 USD -> "19.99"."""
    return format(to_decimal(amount_minor, currency), "f")


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _day(value: Any) -> str:
    # func.date(): a string on SQLite, a date on PostgreSQL.
    return str(value)[:10]


def _cell(value: object) -> object:
    # Spreadsheets run a cell that starts with = + - @ as a formula: titles are user text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def sales_rows(
    session: AsyncSession, scope: Scope, period: Period
) -> AsyncIterator[list[object]]:
    """One row per ledger entry: a payment (sale) or a refund, in the order they happened."""
    query: Select[*tuple[Any, ...]] = select(
        LedgerEntry.created_at,
        LedgerEntry.kind,
        LedgerEntry.payment_id,
        Order.public_ref,
        Order.product_kind,
        Order.product_id,
        product_title(),
        Payment.user_id,
        Payment.method,
        LedgerEntry.currency,
        LedgerEntry.gross_minor,
        LedgerEntry.fee_minor,
        LedgerEntry.net_minor,
        Order.source,
    )
    query = with_products(
        query.select_from(LedgerEntry)
        .join(Payment, Payment.id == LedgerEntry.payment_id)
        .join(Order, Order.id == Payment.order_id)
    )
    if scope.creator_id is not None:
        query = query.where(LedgerEntry.creator_id == scope.creator_id)
    query = order_in_scope(query, Scope(None, scope.kind, scope.product_id))
    query = query.where(within(LedgerEntry.created_at, period))
    query = query.order_by(LedgerEntry.created_at, LedgerEntry.id)
    result = await session.stream(query.execution_options(yield_per=500))
    async for row in result:
        (when, kind, payment_id, ref, pkind, pid, title, learner, method, cur, g, f, n, src) = row
        yield [
            _stamp(when),
            kind,
            payment_id,
            ref,
            pkind,
            pid,
            _cell(title),
            learner,
            method,
            cur,
            major(g, cur),
            major(f, cur),
            major(n, cur),
            _cell(src or ""),
        ]


async def learner_rows(
    session: AsyncSession, scope: Scope, period: Period
) -> AsyncIterator[list[object]]:
    """One row per learner per course, with progress (learners enrolled in the period)."""
    progress = (
        select(
            Delivery.enrollment_id.label("enrollment_id"),
            func.sum(
                case(
                    (
                        Delivery.status == DeliveryStatus.SENT,
                        1,
                    ),
                    else_=0,
                )
            ).label("delivered"),
            func.count(Delivery.done_at).label("done"),
            func.max(Delivery.done_at).label("last_done"),
        )
        .group_by(Delivery.enrollment_id)
        .subquery()
    )
    lessons = (
        select(Lesson.course_id.label("course_id"), func.count(Lesson.id).label("n"))
        .group_by(Lesson.course_id)
        .subquery()
    )
    query: Select[*tuple[Any, ...]] = (
        select(
            Enrollment.user_id,
            User.username,
            Enrollment.course_id,
            Course.title,
            Enrollment.started_at,
            func.coalesce(lessons.c.n, 0),
            func.coalesce(progress.c.delivered, 0),
            func.coalesce(progress.c.done, 0),
            progress.c.last_done,
            Enrollment.completed_at,
            Enrollment.paused_at,
        )
        .join(Course, Course.id == Enrollment.course_id)
        .outerjoin(User, User.id == Enrollment.user_id)
        .outerjoin(progress, progress.c.enrollment_id == Enrollment.id)
        .outerjoin(lessons, lessons.c.course_id == Enrollment.course_id)
        .where(within(Enrollment.started_at, period))
        .order_by(Enrollment.course_id, Enrollment.started_at, Enrollment.id)
    )
    if scope.creator_id is not None:
        query = query.where(Course.creator_id == scope.creator_id)
    if scope.kind == ProductKind.COURSE:
        query = query.where(Enrollment.course_id == scope.product_id)
    elif scope.kind is not None:
        # A plan's learners are its courses' learners: enrollments carry no plan.
        plan_courses = await session.scalar(
            select(Plan.course_ids).where(Plan.id == scope.product_id)
        )
        query = query.where(Enrollment.course_id.in_(list(plan_courses or [])))
    result = await session.stream(query.execution_options(yield_per=500))
    async for row in result:
        user_id, username, course_id, title, started, total, sent, done, last, completed, paused = (
            row
        )
        yield [
            user_id,
            username or "",
            course_id,
            _cell(title),
            _stamp(started),
            int(total),
            int(sent),
            int(done),
            _stamp(_aware(last)),
            _stamp(completed),
            "yes" if paused is not None else "no",
        ]


def _aware(value: Any) -> datetime | None:
    # max() over a UTCDateTime column comes back raw: a naive value or a string (SQLite).
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class FunnelDay:
    day: str
    product_kind: str
    product_id: int
    title: str
    views: int = 0
    buys: int = 0
    invoices: int = 0
    paid: int = 0


async def funnel_days(session: AsyncSession, scope: Scope, period: Period) -> list[FunnelDay]:
    """Per product per day: card views, Buy presses, invoices (orders), paid orders.

    Views and Buy presses come from the funnel events (courses carry them); invoices
    and payments from the orders themselves, so plans count too. Free claims (a 100 %
    coupon) are neither invoiced nor paid."""
    counts: dict[tuple[str, str, int], list[int]] = {}

    def add(day: Any, kind: str, pid: int | None, step: int, n: int) -> None:
        if pid is None:
            return
        counts.setdefault((_day(day), kind, int(pid)), [0, 0, 0, 0])[step] += int(n)

    if scope.kind in (None, ProductKind.COURSE):
        day = func.date(Event.created_at)
        events = (
            select(day, Event.kind, Event.course_id, func.count(Event.id))
            .where(
                Event.kind.in_([EventKind.VIEW, BUY_PRESS]),
                Event.course_id.is_not(None),
                within(Event.created_at, period),
            )
            .group_by(day, Event.kind, Event.course_id)
        )
        if scope.creator_id is not None:
            events = events.where(Event.creator_id == scope.creator_id)
        if scope.kind is not None:
            events = events.where(Event.course_id == scope.product_id)
        for d, kind, course_id, n in await session.execute(events):
            add(d, ProductKind.COURSE, course_id, 0 if kind == EventKind.VIEW else 1, n)

    for step, column in ((2, Order.created_at), (3, Order.paid_at)):
        day = func.date(column)
        orders = select(day, Order.product_kind, Order.product_id, func.count(Order.id)).where(
            Order.method != PaymentMethod.FREE, column.is_not(None), within(column, period)
        )
        orders = order_in_scope(orders, scope).group_by(day, Order.product_kind, Order.product_id)
        for d, kind, pid, n in await session.execute(orders):
            add(d, kind, pid, step, n)

    titles = await _titles(session, {(k, p) for _d, k, p in counts})
    return [
        FunnelDay(d, k, p, titles.get((k, p), ""), *values)
        for (d, k, p), values in sorted(counts.items())
    ]


async def _titles(session: AsyncSession, products: Iterable[tuple[str, int]]) -> dict[Any, str]:
    wanted: dict[str, set[int]] = {}
    for kind, pid in products:
        wanted.setdefault(kind, set()).add(pid)
    titles: dict[tuple[str, int], str] = {}
    for kind, model in ((ProductKind.COURSE, Course), (ProductKind.PLAN, Plan)):
        ids = sorted(wanted.get(kind, ()))
        for i in range(0, len(ids), 500):
            rows = await session.execute(
                select(model.id, model.title).where(model.id.in_(ids[i : i + 500]))
            )
            titles.update({(str(kind), pid): title for pid, title in rows})
    return titles


async def funnel_rows(
    session: AsyncSession, scope: Scope, period: Period
) -> AsyncIterator[list[object]]:
    for f in await funnel_days(session, scope, period):
        yield [
            f.day,
            f.product_kind,
            f.product_id,
            _cell(f.title),
            f.views,
            f.buys,
            f.invoices,
            f.paid,
        ]


ROWS = {
    ExportKind.SALES: sales_rows,
    ExportKind.LEARNERS: learner_rows,
    ExportKind.FUNNEL: funnel_rows,
}


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class ExportFile:
    path: Path
    filename: str
    rows: int
    size: int  # bytes


def export_filename(kind: ExportKind, scope: Scope, period: Period) -> str:
    return f"lyceum-{kind.value}-{scope.key.replace(':', '-')}-{period.label}.csv"


async def write_export(
    session: AsyncSession,
    kind: ExportKind,
    scope: Scope,
    period: Period,
    directory: Path | None = None,
) -> ExportFile:
    """Write the CSV (UTF-8 with a BOM, for Excel) to a temporary file; the caller deletes it."""
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - handed to the caller as a path
        "w",
        encoding="utf-8-sig",
        newline="",
        suffix=".csv",
        prefix="lyceum-export-",
        dir=directory,
        delete=False,
    )
    rows = 0
    try:
        with handle:
            writer = csv.writer(handle)
            writer.writerow(HEADERS[kind])
            async for row in ROWS[kind](session, scope, period):
                writer.writerow(row)
                rows += 1
            size = handle.tell()
    except BaseException:
        discard(Path(handle.name))
        raise
    return ExportFile(Path(handle.name), export_filename(kind, scope, period), rows, size)
