"""The event buffer's flush writes its rollups as a few statements for many rows; the rows
must be what counting the raw events one by one gives (plain Python below, no rollups)."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.models import Event, EventKind, FunnelProgress, ViewsDaily
from bot.services.events import EventBuffer

T0 = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
SOURCES = ["catalog", "search", "rec", "link", None, "bogus"]


def history(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Views of a few courses and plans by a few learners (the same keys many times,
    with equal and out-of-order times across midnight), Buy presses, and noise."""
    out: list[dict[str, Any]] = []
    for _ in range(n):
        user = rng.choice([101, 102, 103, None])
        # A product's events name its creator (or none, as a few events do).
        creator = None if rng.random() < 0.05 else 1
        # Nine times over three hours: many equal times, and two days.
        at = T0 + timedelta(minutes=20 * rng.randrange(0, 9))
        roll = rng.random()
        if roll < 0.55:
            out.append(
                dict(
                    kind=EventKind.VIEW,
                    user_id=user,
                    course_id=rng.choice([1, 2, 3]),
                    creator_id=creator,
                    data={"src": rng.choice(SOURCES)},
                    at=at,
                )
            )
        elif roll < 0.7:
            plan = rng.choice([7, 8, "x"])
            creator = None if creator is None else 2
            out.append(
                dict(
                    kind=EventKind.VIEW,
                    user_id=user,
                    creator_id=creator,
                    data={"kind": "plan", "id": plan, "src": rng.choice(SOURCES)},
                    at=at,
                )
            )
        elif roll < 0.9:
            data: dict[str, Any] = {"id": rng.choice([1, 2, 7])}
            if data["id"] == 7:
                data["kind"] = "plan"
                creator = None if creator is None else 2
            out.append(dict(kind=EventKind.BUY, user_id=user, creator_id=creator, data=data, at=at))
        else:
            out.append(dict(kind=EventKind.SEARCH, user_id=user, data={"q": "x"}, at=at))
    return out


def product(e: Event) -> tuple[str, int] | None:
    if e.kind == EventKind.VIEW:
        if e.course_id is not None:
            return ("course", e.course_id)
        if e.data.get("kind") == "plan" and str(e.data.get("id")).isdigit():
            return ("plan", int(e.data["id"]))
        return None
    if e.kind == EventKind.BUY:
        return (e.data.get("kind") or "course", int(e.data["id"]))
    return None


def expected(
    events: list[Event],
) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], dict[str, Any]]]:
    """Views per day, product and source; and per learner and product the first view
    (with its source: the first written of equal times) and the first Buy press."""
    views: dict[tuple[Any, ...], int] = defaultdict(int)
    funnel: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in sorted(events, key=lambda e: e.id):  # written in the order recorded
        p = product(e)
        if p is None or e.user_id is None or e.creator_id is None:
            continue
        src = e.data.get("src")
        source = src if src in {"catalog", "search", "rec", "link"} else "direct"
        row = funnel.setdefault(
            (*p, e.user_id),
            {"creator_id": e.creator_id, "entered_at": e.created_at, "viewed_at": None,
             "buy_at": None, "source": None},
        )  # fmt: skip
        row["entered_at"] = min(row["entered_at"], e.created_at)
        if e.kind == EventKind.VIEW:
            views[(e.created_at.date(), e.creator_id, *p, source)] += 1
            if row["viewed_at"] is None or e.created_at < row["viewed_at"]:
                row["viewed_at"], row["source"] = e.created_at, source
        elif row["buy_at"] is None or e.created_at < row["buy_at"]:
            row["buy_at"] = e.created_at
    return dict(views), funnel


def aware(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


async def observed(
    db: AsyncSession,
) -> tuple[dict[tuple[Any, ...], int], dict[tuple[Any, ...], dict[str, Any]]]:
    views = {
        (v.day, v.creator_id, v.product_kind, v.product_id, v.source): v.views
        for v in await db.scalars(select(ViewsDaily))
    }
    funnel = {
        (f.product_kind, f.product_id, f.user_id): {
            "creator_id": f.creator_id,
            "entered_at": aware(f.entered_at),
            "viewed_at": aware(f.viewed_at),
            "buy_at": aware(f.buy_at),
            "source": f.source,
        }
        for f in await db.scalars(select(FunnelProgress))
    }
    return views, funnel


async def test_flushes_of_many_events_give_the_rows_raw_counting_gives(
    engine: AsyncEngine, db: AsyncSession
) -> None:
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    buffer = EventBuffer(max_buffer=10_000)
    rng = random.Random(5)
    # Three flushes: the later ones meet rows the earlier wrote (earlier and later times).
    for size in (300, 1, 700):
        for e in history(rng, size):
            at = e.pop("at")
            buffer.record(e.pop("kind"), at=at, **e)
        assert await buffer.flush(sessionmaker) == size
        db.expire_all()
        events = list(await db.scalars(select(Event)))
        for e in events:
            e.created_at = aware(e.created_at)  # type: ignore[assignment]
        assert await observed(db) == expected(events)
    views, funnel = expected(events)
    # Not trivial: keys seen many times, plans, both steps, several sources and days.
    assert max(views.values()) > 5 and {k[2] for k in views} == {"course", "plan"}
    assert any(r["viewed_at"] and r["buy_at"] for r in funnel.values())
    assert len({r["source"] for r in funnel.values()}) >= 4
    assert len({k[0] for k in views}) == 2
