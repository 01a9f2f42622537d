"""A plan's card view is recorded with its source, as a course card's is: the plan funnel
starts at "viewed", the dashboard's views per source count it, and a later purchase is
credited to that first touch, not "direct"."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import rollups
from bot.analytics.dashboard import dashboard
from bot.analytics.periods import Period, Scope, parse_period, resolve_scope
from bot.analytics.sources import Source
from bot.app import App
from bot.models import (
    Creator,
    Event,
    EventKind,
    FunnelProgress,
    Order,
    OrderStatus,
    Plan,
    ProductKind,
    User,
)
from tests.support.updates import Harness, tg_user

ANN = tg_user(1001, "Ann")


def stars_order(creator_id: int, plan_id: int, amount: int) -> Order:
    return Order(
        public_ref=f"plan-{plan_id}",
        user_id=ANN.id,
        creator_id=creator_id,
        product_kind=ProductKind.PLAN,
        product_id=plan_id,
        method="stars",
        currency="XTR",
        list_amount_minor=amount,
        amount_minor=amount,
        status=OrderStatus.PAID,
    )


async def test_plan_card_view_starts_the_funnel_and_credits_the_purchase(
    harness: Harness, app: App, db: AsyncSession
) -> None:
    db.add(User(id=7, first_name="Olga", referral_code="olga"))
    await db.flush()
    creator = Creator(user_id=7, display_name="Olga")
    db.add(creator)
    await db.flush()
    plan = Plan(creator_id=creator.id, title="VIP", stars_price=100, period_days=30, published=True)
    db.add(plan)
    await db.commit()
    plan_id, creator_id = plan.id, creator.id
    await db.close()

    await harness.send("/plans", ANN)
    assert "VIP" in harness.last_text()
    await app.events.flush(app.sessionmaker)

    row = await db.scalar(
        select(FunnelProgress).where(
            FunnelProgress.product_kind == ProductKind.PLAN, FunnelProgress.user_id == ANN.id
        )
    )
    assert row is not None and row.product_id == plan_id and row.creator_id == creator_id
    assert row.viewed_at is not None and row.source == Source.CATALOG
    live = (row.product_id, row.viewed_at, row.source)
    # The dashboard's views per source count it, as the raw events say.
    events = list(await db.scalars(select(Event).where(Event.kind == EventKind.VIEW)))
    want: Counter[str] = Counter(
        e.data.get("src")
        for e in events
        if e.data.get("kind") == "plan" and e.data["id"] == plan_id
    )
    now = datetime.now(UTC)
    period = parse_period("7", now)
    scope = await resolve_scope(db, creator_id, f"p{plan_id}")
    assert isinstance(period, Period) and isinstance(scope, Scope)
    d = await dashboard(db, creator_id, period, scope, now)
    assert {r.source.value: r.views for r in d.current.sources if r.views} == dict(want)
    assert want == {"catalog": 1} and d.current.funnel[0] == 1
    # stats-rebuild writes the same from the raw events.
    await rollups.rebuild(db)
    await db.commit()
    db.expunge_all()
    again = await db.scalar(
        select(FunnelProgress).where(
            FunnelProgress.product_kind == ProductKind.PLAN, FunnelProgress.user_id == ANN.id
        )
    )
    assert again is not None and (again.product_id, again.viewed_at, again.source) == live

    # The purchase that follows is credited to the card view: catalog, not direct.
    order = stars_order(creator_id, plan_id, 100)
    db.add(order)
    await db.flush()
    assert await rollups.attribute(db, order, datetime.now(UTC)) == Source.CATALOG
    # Another plan of the same creator was never viewed: its purchase stays direct.
    other = Plan(creator_id=creator_id, title="Gold", stars_price=5, period_days=30)
    db.add(other)
    await db.flush()
    order2 = stars_order(creator_id, other.id, 5)
    db.add(order2)
    await db.flush()
    assert await rollups.attribute(db, order2, datetime.now(UTC)) == Source.DIRECT
