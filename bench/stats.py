"""/stats cost against the length of the history: 100,000 and 1,000,000 events.

Both histories have the same creators, catalog and daily activity (the longer one spans
ten times as many days), built by bot.analytics.fake on SQLite. Times the 30-day
dashboard of one creator (queries and text, no chart) and prints JSON with p50, p95 and
the 1M / 100k ratio. Goal: ratio <= 1.5, p95 < 100 ms at 1,000,000 events.

    .venv/bin/python bench/stats.py [--small 100000] [--large 1000000] [--runs 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.analytics import fake
from bot.analytics.dashboard import dashboard
from bot.analytics.periods import Period, parse_period, resolve_scope
from bot.db import create_engine, create_sessionmaker
from bot.handlers.stats import dashboard_text
from bot.i18n import create_i18n
from bot.migrate import upgrade

NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
DAYS_PER_100K = 90


async def build(path: Path, events: int) -> float:
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    engine = create_engine(url)
    started = time.perf_counter()
    try:
        async with create_sessionmaker(engine)() as session:
            days = max(1, round(DAYS_PER_100K * events / 100_000))
            await fake.generate(session, seed=11, events=events, days=days, now=NOW)
            await session.commit()
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def measure(path: Path, runs: int) -> list[float]:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    i18n = create_i18n("en")
    times: list[float] = []
    try:
        maker = create_sessionmaker(engine)
        for i in range(runs + 5):
            async with maker() as session:
                t0 = time.perf_counter()
                period = parse_period("30", NOW)
                assert isinstance(period, Period)
                scope = await resolve_scope(session, 1, "a")
                assert not isinstance(scope, str)
                d = await dashboard(session, 1, period, scope, NOW)
                with i18n.context(), i18n.use_locale("en"):
                    text = dashboard_text(d, "en", "Creator 1")
                elapsed = time.perf_counter() - t0
                assert "Money" in text
            if i >= 5:  # warm-up: SQLite's page cache
                times.append(elapsed * 1000)
    finally:
        await engine.dispose()
    return times


def pct(values: list[float], q: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(q) - 1], 2)


async def explain(path: Path) -> list[str]:
    """EXPLAIN QUERY PLAN of every statement one 30-day dashboard press runs."""
    from sqlalchemy import event

    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    lines: list[str] = []
    try:
        async with create_sessionmaker(engine)() as session:
            period = parse_period("30", NOW)
            assert isinstance(period, Period)
            scope = await resolve_scope(session, 1, "a")
            assert not isinstance(scope, str)
            await dashboard(session, 1, period, scope, NOW)
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        async with engine.connect() as conn:
            for statement, params in seen:
                lines.append(" ".join(statement.split())[:160])
                plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
                lines += ["    " + str(row[-1]) for row in plan]
    finally:
        await engine.dispose()
    return lines


async def main(args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, events in (("small", args.small), ("large", args.large)):
            path = Path(tmp) / f"{label}.sqlite3"
            seconds = await build(path, events)
            times = await measure(path, args.runs)
            if args.explain and label == "large":
                print("\n".join(await explain(path)), file=sys.stderr)
            out[label] = {
                "events": events,
                "build_s": round(seconds, 1),
                "p50_ms": pct(times, 50),
                "p95_ms": pct(times, 95),
            }
    small, large = out["small"], out["large"]
    assert isinstance(small, dict) and isinstance(large, dict)
    out["ratio_p50"] = round(large["p50_ms"] / small["p50_ms"], 2)
    out["ratio_p95"] = round(large["p95_ms"] / small["p95_ms"], 2)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--explain", action="store_true", help="query plans on stderr")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
