"""Keeping the rollups up to date, as the raw rows are written, and rebuilding them.

Each hook runs inside the transaction that writes its raw row (the event buffer's flush,
the ledger booking, the credit of an order, a Done press), so a rollup can never count
something that was rolled back. `rebuild` recomputes everything from the raw rows; it is
the backfill for history recorded before these tables existed (`python -m bot
stats-rebuild`) and what the synthetic history in bot.analytics.fake is summed with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.sources import ATTRIBUTION_DAYS, Source, parse
from bot.models import (
    Course,
    Delivery,
    Enrollment,
    Event,
    EventKind,
    FunnelProgress,
    LedgerEntry,
    LedgerKind,
    MoneyDaily,
    Order,
    Payment,
    PaymentMethod,
    PlanDaily,
    ProductKind,
    ViewsDaily,
)

FunnelKey = tuple[str, int, int]  # (product_kind, product_id, user_id)

# The funnel, in order. Each is a column `<step>_at` of stats_funnel.
STEPS: tuple[str, ...] = ("viewed", "buy", "invoice", "paid", "first_done", "completed")


def _upsert(session: AsyncSession, table: Table) -> Any:
    # ON CONFLICT … DO UPDATE: both backends have it, with the same shape.
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def _bump(
    session: AsyncSession,
    model: type[Any],
    keys: Mapping[str, Any],
    counts: Mapping[str, int],
) -> None:
    """Add `counts` to the row `keys`, creating it at zero first."""
    await _bump_many(session, model, tuple(keys), tuple(counts), [{**keys, **counts}])


async def _bump_many(
    session: AsyncSession,
    model: type[Any],
    keys: tuple[str, ...],
    counts: tuple[str, ...],
    rows: list[dict[str, Any]],
) -> None:
    """`_bump` for many rows of distinct keys: one statement, executed for every row."""
    if not rows:
        return
    table: Table = model.__table__
    stmt = _upsert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + stmt.excluded[name] for name in counts},
    )
    await session.execute(stmt, rows)


async def reach(
    session: AsyncSession,
    *,
    product_kind: str,
    product_id: int,
    user_id: int,
    creator_id: int,
    step: str,
    at: datetime,
    source: str | None = None,
    paid_source: str | None = None,
) -> None:
    """Record that a learner reached a funnel step; only the earliest time is kept, so
    replays and out-of-order writes (a buffered view flushed late) agree."""
    values: dict[str, Any] = {
        "product_kind": product_kind,
        "product_id": product_id,
        "user_id": user_id,
        "creator_id": creator_id,
        "entered_at": at,
        f"{step}_at": at,
    }
    if source is not None:
        values["source"] = source
    if paid_source is not None:
        values["paid_source"] = paid_source
    await _reach_many(session, step, [values])


async def _reach_many(session: AsyncSession, step: str, rows: list[dict[str, Any]]) -> None:
    """`reach` for many funnel rows of distinct keys, all with the same columns: one
    statement, executed for every row (a flush's views cost one round trip, not one each)."""
    if not rows:
        return
    column = f"{step}_at"
    table: Table = FunnelProgress.__table__  # type: ignore[assignment]
    stmt = _upsert(session, table)
    new = stmt.excluded
    earlier = or_(table.c[column].is_(None), new[column] < table.c[column])
    set_: dict[str, Any] = {
        column: case((earlier, new[column]), else_=table.c[column]),
        "entered_at": case(
            (new.entered_at < table.c.entered_at, new.entered_at), else_=table.c.entered_at
        ),
    }
    for name in ("source", "paid_source"):
        if name in rows[0]:
            set_[name] = case((earlier, new[name]), else_=table.c[name])
    stmt = stmt.on_conflict_do_update(
        index_elements=["product_kind", "product_id", "user_id"], set_=set_
    )
    await session.execute(stmt, rows)


class _Firsts:
    """One flush's funnel rows for one step: per (product, learner), the earliest time
    and what came with it. Of equal times the first recorded wins, as it did when each
    event was written by itself in order (`reach` moves a step only to a strictly
    earlier time), so the rows come out the same."""

    def __init__(self, step: str) -> None:
        self.step = step
        self._rows: dict[FunnelKey, dict[str, Any]] = {}

    def add(self, key: FunnelKey, creator_id: int, at: datetime, **extra: Any) -> None:
        row = self._rows.get(key)
        if row is not None and not at < row["entered_at"]:
            return
        self._rows[key] = {
            "product_kind": key[0],
            "product_id": key[1],
            "user_id": key[2],
            # The row's first event names it, as when it was inserted by that event.
            "creator_id": creator_id if row is None else row["creator_id"],
            "entered_at": at,
            f"{self.step}_at": at,
            **extra,
        }

    def rows(self) -> list[dict[str, Any]]:
        # In key order: two flushes (two processes) then lock shared rows in one order.
        return [self._rows[key] for key in sorted(self._rows)]


# --- hooks ------------------------------------------------------------------------------


async def events_written(session: AsyncSession, rows: Iterable[Mapping[str, Any]]) -> None:
    """The event buffer's flush: card views (per source) and Buy presses. A plan's card
    view carries the plan in its data (`kind`, `id`): events have no plan column.

    Counted in memory first and written as a few statements, each run for many rows:
    a flush of 500 views used to be 500 upserts of the funnel, one round trip each."""
    views: dict[ViewKey, int] = defaultdict(int)
    viewed, bought = _Firsts("viewed"), _Firsts("buy")
    for row in rows:
        kind, user_id, creator_id = row["kind"], row.get("user_id"), row.get("creator_id")
        data = row.get("data") or {}
        if user_id is None or creator_id is None:
            continue
        at: datetime = row["created_at"]
        if kind == EventKind.VIEW:
            product = viewed_product(row.get("course_id"), data)
            if product is None:
                continue
            source = parse(data.get("src"))
            views[(at.date(), creator_id, *product, source)] += 1
            viewed.add((*product, user_id), creator_id, at, source=source)
        elif kind == EventKind.BUY and data.get("id") is not None:
            key = (str(data.get("kind") or ProductKind.COURSE), int(data["id"]), user_id)
            bought.add(key, creator_id, at)
    await _reach_many(session, "viewed", viewed.rows())
    await _reach_many(session, "buy", bought.rows())
    await _bump_many(
        session,
        ViewsDaily,
        VIEW_KEY,
        ("views",),
        [{**dict(zip(VIEW_KEY, key, strict=True)), "views": n} for key, n in sorted(views.items())],
    )


# (day, creator_id, product_kind, product_id, source): a row of stats_views_daily.
ViewKey = tuple[date, int, str, int, str]
VIEW_KEY = ("day", "creator_id", "product_kind", "product_id", "source")


def viewed_product(course_id: int | None, data: Mapping[str, Any]) -> tuple[str, int] | None:
    """Whose card a view event shows: a course's (its column) or a plan's (named in the
    data, as events have no plan column); None for a view of neither."""
    if course_id is not None:
        return (ProductKind.COURSE, course_id)
    if data.get("kind") == ProductKind.PLAN and data.get("id"):
        try:
            return (ProductKind.PLAN, int(data["id"]))
        except (TypeError, ValueError):
            return None
    return None


async def first_view_source(
    session: AsyncSession, user_id: int, product_kind: str, product_id: int, at: datetime
) -> Source:
    """First touch decides: the learner's first card view of the course or plan within
    the 30 days before `at` (read by the events' user index: a learner's own few events)."""
    query = (
        select(Event.data)
        .where(
            Event.user_id == user_id,
            Event.kind == EventKind.VIEW,
            Event.created_at >= at - timedelta(days=ATTRIBUTION_DAYS),
            Event.created_at <= at,
        )
        .order_by(Event.created_at, Event.id)
    )
    if product_kind == ProductKind.COURSE:
        data = await session.scalar(query.where(Event.course_id == product_id).limit(1))
        return Source.DIRECT if data is None else parse((data or {}).get("src"))
    # A plan's views name it in their data (JSON): picked out here, among a few rows.
    for data in await session.scalars(query.where(Event.course_id.is_(None))):
        data = data or {}
        if data.get("kind") == ProductKind.PLAN and str(data.get("id")) == str(product_id):
            return parse(data.get("src"))
    return Source.DIRECT


async def attribute(session: AsyncSession, order: Order, at: datetime) -> str:
    """The order's source, decided once and stored on it so figures never move later."""
    if order.source is None:
        order.source = await first_view_source(
            session, order.user_id, order.product_kind, order.product_id, at
        )
    return order.source


async def invoice_shown(session: AsyncSession, order: Order, at: datetime) -> None:
    await reach(
        session,
        product_kind=order.product_kind,
        product_id=order.product_id,
        user_id=order.user_id,
        creator_id=order.creator_id,
        step="invoice",
        at=at,
    )


async def ledger_booked(session: AsyncSession, entry: LedgerEntry, order: Order) -> None:
    """A sale or a refund: on the day it was booked, under the order's source."""
    source = await attribute(session, order, entry.created_at)
    sale = entry.kind == LedgerKind.SALE
    await _bump(
        session,
        MoneyDaily,
        {
            "day": entry.created_at.date(),
            "creator_id": entry.creator_id,
            "product_kind": order.product_kind,
            "product_id": order.product_id,
            "currency": entry.currency,
            "source": source,
        },
        {
            "sales": 1 if sale else 0,
            "sales_gross": entry.gross_minor if sale else 0,
            "refunds": 0 if sale else 1,
            "refunds_gross": 0 if sale else -entry.gross_minor,
            "gross": entry.gross_minor,
            "fee": entry.fee_minor,
            "net": entry.net_minor,
        },
    )


async def order_credited(session: AsyncSession, order: Order, at: datetime) -> None:
    """Access was bought (a payment credited, a free claim, a Stars renewal)."""
    source = await attribute(session, order, at)
    if order.product_kind == ProductKind.PLAN:
        before = await session.scalar(
            select(FunnelProgress.paid_at).where(
                FunnelProgress.product_kind == order.product_kind,
                FunnelProgress.product_id == order.product_id,
                FunnelProgress.user_id == order.user_id,
            )
        )
        renewal = before is not None and before <= at
        await _bump(
            session,
            PlanDaily,
            {"day": at.date(), "creator_id": order.creator_id, "plan_id": order.product_id},
            {"joined": 0 if renewal else 1, "renewed": 1 if renewal else 0},
        )
    await reach(
        session,
        product_kind=order.product_kind,
        product_id=order.product_id,
        user_id=order.user_id,
        creator_id=order.creator_id,
        step="paid",
        at=at,
        paid_source=source,
    )


async def lesson_done(
    session: AsyncSession,
    enrollment: Enrollment,
    creator_id: int,
    at: datetime,
    *,
    completed_at: datetime | None,
) -> None:
    steps = [("first_done", at)] + ([("completed", completed_at)] if completed_at else [])
    for step, when in steps:
        await reach(
            session,
            product_kind=ProductKind.COURSE,
            product_id=enrollment.course_id,
            user_id=enrollment.user_id,
            creator_id=creator_id,
            step=step,
            at=when,
        )


# --- rebuild ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebuildReport:
    orders_attributed: int
    money_rows: int
    view_rows: int
    plan_rows: int
    funnel_rows: int


class _Funnel:
    def __init__(self) -> None:
        self.rows: dict[FunnelKey, dict[str, Any]] = {}

    def reach(self, key: FunnelKey, creator_id: int, step: str, at: datetime, **extra: Any) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = {
                "product_kind": key[0],
                "product_id": key[1],
                "user_id": key[2],
                "creator_id": creator_id,
                "entered_at": at,
                **{f"{s}_at": None for s in STEPS},
                "source": None,
                "paid_source": None,
            }
        column = f"{step}_at"
        if row[column] is None or at < row[column]:
            row[column] = at
            row.update(extra)
        row["entered_at"] = min(row["entered_at"], at)


async def _insert_all(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 5_000):
        await session.execute(insert(model), rows[start : start + 5_000])


async def rebuild(session: AsyncSession) -> RebuildReport:
    """Recompute every rollup from the raw rows (the caller commits). Rows go in in time
    order, as the live hooks write them, so a period's rows sit together on disk."""
    for model in (MoneyDaily, ViewsDaily, PlanDaily, FunnelProgress):
        await session.execute(delete(model))
    funnel = _Funnel()

    # Orders paid before sources were recorded: attribute them now, once.
    first_money = (
        select(Payment.order_id, Payment.created_at)
        .where(Payment.order_id.in_(select(Order.id).where(Order.source.is_(None))))
        .order_by(Payment.created_at, Payment.id)
    )
    attributed = 0
    seen: set[int] = set()
    for order_id, at in (await session.execute(first_money)).all():
        if order_id in seen:
            continue
        seen.add(order_id)
        order = await session.get(Order, order_id)
        if order is not None:
            await attribute(session, order, at)
            attributed += 1
    for order in await session.scalars(
        select(Order).where(Order.source.is_(None), Order.paid_at.is_not(None))
    ):
        await attribute(session, order, order.paid_at or order.created_at)
        attributed += 1
    await session.flush()

    views: dict[ViewKey, int] = defaultdict(int)
    stream = await session.stream(
        select(
            Event.kind,
            Event.user_id,
            Event.course_id,
            Event.creator_id,
            Event.created_at,
            Event.data,
        )
        .where(Event.kind.in_([EventKind.VIEW, EventKind.BUY]))
        .execution_options(yield_per=20_000)
    )
    async for kind, user_id, course_id, creator_id, at, data in stream:
        if user_id is None or creator_id is None:
            continue
        data = data or {}
        if kind == EventKind.VIEW:
            product = viewed_product(course_id, data)
            if product is None:
                continue
            source = parse(data.get("src"))
            views[(at.date(), creator_id, *product, source)] += 1
            funnel.reach((*product, user_id), creator_id, "viewed", at, source=source)
        elif kind == EventKind.BUY and data.get("id") is not None:
            key = (str(data.get("kind") or ProductKind.COURSE), int(data["id"]), user_id)
            funnel.reach(key, creator_id, "buy", at)

    money: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 7)
    ledger_rows = await session.execute(
        select(
            LedgerEntry.created_at,
            LedgerEntry.creator_id,
            Order.product_kind,
            Order.product_id,
            LedgerEntry.currency,
            Order.source,
            LedgerEntry.kind,
            LedgerEntry.gross_minor,
            LedgerEntry.fee_minor,
            LedgerEntry.net_minor,
        )
        .join(Payment, Payment.id == LedgerEntry.payment_id)
        .join(Order, Order.id == Payment.order_id)
    )
    for at, creator_id, pkind, pid, currency, src, kind, gross, fee, net in ledger_rows:
        sums = money[(at.date(), creator_id, pkind, pid, currency, src or Source.DIRECT)]
        sale = kind == LedgerKind.SALE
        sums[0] += 1 if sale else 0
        sums[1] += gross if sale else 0
        sums[2] += 0 if sale else 1
        sums[3] += 0 if sale else -gross
        sums[4] += gross
        sums[5] += fee
        sums[6] += net

    # Invoices: every order behind an invoice (not free claims).
    for pkind, pid, user_id, creator_id, at in await session.execute(
        select(
            Order.product_kind, Order.product_id, Order.user_id, Order.creator_id, Order.created_at
        ).where(
            Order.method != PaymentMethod.FREE,
            # A paid question is money (above), not a step of a product's funnel.
            Order.product_kind != ProductKind.QUESTION,
        )
    ):
        funnel.reach((pkind, pid, user_id), creator_id, "invoice", at)

    # Credited acquisitions: payments credited to an order, and free claims.
    acquisitions: list[tuple[datetime, int, Order]] = []
    orders: dict[int, Order] = {}
    for payment_at, payment_id, raw, order in await session.execute(
        select(Payment.created_at, Payment.id, Payment.raw, Order).join(
            Order, Order.id == Payment.order_id
        )
    ):
        if (raw or {}).get("credited") and order.product_kind != ProductKind.QUESTION:
            acquisitions.append((payment_at, payment_id, order))
    for order in await session.scalars(
        select(Order).where(Order.method == PaymentMethod.FREE, Order.paid_at.is_not(None))
    ):
        acquisitions.append((order.paid_at or order.created_at, 0, order))
    acquisitions.sort(key=lambda a: (a[0], a[1]))
    plans: dict[tuple[date, int, int], list[int]] = defaultdict(lambda: [0, 0])
    for at, _payment_id, order in acquisitions:
        orders[order.id] = order
        key = (order.product_kind, order.product_id, order.user_id)
        if order.product_kind == ProductKind.PLAN:
            before = funnel.rows.get(key, {}).get("paid_at")
            plans[(at.date(), order.creator_id, order.product_id)][1 if before else 0] += 1
        funnel.reach(key, order.creator_id, "paid", at, paid_source=order.source)

    # Lessons: the first Done and the completion of each enrollment.
    for user_id, course_id, creator_id, first_done, completed in await session.execute(
        select(
            Enrollment.user_id,
            Enrollment.course_id,
            _course_creator(),
            _first_done(),
            Enrollment.completed_at,
        )
    ):
        key = (ProductKind.COURSE, course_id, user_id)
        if first_done is not None:
            funnel.reach(key, creator_id, "first_done", aware(first_done))
        if completed is not None:
            funnel.reach(key, creator_id, "completed", completed)

    await _insert_all(
        session,
        MoneyDaily,
        [
            dict(
                zip(
                    ("day", "creator_id", "product_kind", "product_id", "currency", "source"),
                    key,
                    strict=True,
                ),
                **dict(
                    zip(
                        ("sales", "sales_gross", "refunds", "refunds_gross", "gross", "fee", "net"),
                        sums,
                        strict=True,
                    )
                ),
            )
            for key, sums in sorted(money.items())
        ],
    )
    await _insert_all(
        session,
        ViewsDaily,
        [{**dict(zip(VIEW_KEY, key, strict=True)), "views": n} for key, n in sorted(views.items())],
    )
    await _insert_all(
        session,
        PlanDaily,
        [
            {"day": d, "creator_id": c, "plan_id": p, "joined": j, "renewed": r}
            for (d, c, p), (j, r) in sorted(plans.items())
        ],
    )
    await _insert_all(
        session, FunnelProgress, sorted(funnel.rows.values(), key=lambda r: r["entered_at"])
    )
    await session.flush()
    return RebuildReport(attributed, len(money), len(views), len(plans), len(funnel.rows))


def _course_creator() -> Any:
    return select(Course.creator_id).where(Course.id == Enrollment.course_id).scalar_subquery()


def _first_done() -> Any:
    return (
        select(func.min(Delivery.done_at))
        .where(Delivery.enrollment_id == Enrollment.id)
        .scalar_subquery()
    )


def aware(value: Any) -> datetime:
    """Aggregates bypass the column type: SQLite hands back naive values or text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
