"""/stats cost against the length of the history: 100,000 and 1,000,000 events.

Both histories have the same creators, catalog and daily activity (the longer one spans
ten times as many days), built by bot.analytics.fake on SQLite in time order, as a live
bot writes its rows, and rolled up as stats-rebuild does. Times the 30-day
dashboard of one creator (queries and text, no chart): warm-up presses first, then the
two histories in turn, and prints JSON with p50, p95 and both 1M / 100k ratios.
Goal: both ratios <= 1.5, p95 < 100 ms at 1,000,000 events. Building the histories takes
6 to 15 minutes (the machine's load decides); --keep DIR keeps them for the next run, and
--explain prints the query plan of every read.

    .venv/bin/python bench/stats.py [--small 100000] [--large 1000000] [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
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


async def render_once(maker: Any, i18n: Any) -> tuple[float, float]:
    """One press of the 30-day dashboard, every query and the text: wall and CPU time
    of the process (the SQLite thread's included), in milliseconds."""
    async with maker() as session:
        t0, c0 = time.perf_counter(), time.process_time()
        period = parse_period("30", NOW)
        assert isinstance(period, Period)
        scope = await resolve_scope(session, 1, "a")
        assert not isinstance(scope, str)
        d = await dashboard(session, 1, period, scope, NOW)
        with i18n.context(), i18n.use_locale("en"):
            text = dashboard_text(d, "en", "Creator 1")
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert "Money" in text
    return elapsed * 1000, cpu * 1000


async def measure(
    paths: dict[str, Path], runs: int, warmup: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Presses on every history in turn (small, large, small, …), so a moment of load on
    the machine falls on both alike; after `warmup` unrecorded presses on each (SQLite's
    page cache, the ORM's compiled statements). The objects alive after the warm-up are
    frozen out of the garbage collector: a full collection walks every model class of
    the bot (most of a second) and would land on whichever press triggered it."""
    engines = {label: create_engine(f"sqlite+aiosqlite:///{p}") for label, p in paths.items()}
    i18n = create_i18n("en")
    times: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in paths}
    try:
        makers = {label: create_sessionmaker(e) for label, e in engines.items()}
        for maker in makers.values():
            for _i in range(warmup):
                await render_once(maker, i18n)
        gc.collect()
        gc.freeze()
        for _i in range(runs):
            for label, maker in makers.items():
                wall, cpu = await render_once(maker, i18n)
                times[label][0].append(wall)
                times[label][1].append(cpu)
    finally:
        gc.unfreeze()
        for e in engines.values():
            await e.dispose()
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
        paths: dict[str, Path] = {}
        built: dict[str, float] = {}
        for label, events in (("small", args.small), ("large", args.large)):
            folder = Path(args.keep) if args.keep else Path(tmp)
            path = paths[label] = folder / f"{label}-{events}.sqlite3"
            if path.exists():  # --keep: built before; only new migrations run
                await upgrade(f"sqlite+aiosqlite:///{path}")
                built[label] = 0.0
            else:
                built[label] = await build(path, events)
        if args.explain:
            print("\n".join(await explain(paths["large"])), file=sys.stderr)
        load = os.getloadavg()[0]
        times = await measure(paths, args.runs, args.warmup)
        for label, events in (("small", args.small), ("large", args.large)):
            wall, cpu = times[label]
            out[label] = {
                "events": events,
                "build_s": round(built[label], 1),
                "runs": len(wall),
                "p50_ms": pct(wall, 50),
                "p95_ms": pct(wall, 95),
                "cpu_p50_ms": pct(cpu, 50),
            }
        # Other work on the machine stretches the wall times: say how busy it was.
        out["load_avg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        out["cpus"] = os.cpu_count()
    small, large = out["small"], out["large"]
    assert isinstance(small, dict) and isinstance(large, dict)
    out["ratio_p50"] = round(large["p50_ms"] / small["p50_ms"], 2)
    out["ratio_p95"] = round(large["p95_ms"] / small["p95_ms"], 2)
    out["goals_met"] = out["ratio_p50"] <= 1.5 and out["ratio_p95"] <= 1.5 and large["p95_ms"] < 100
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", help="a folder to keep the built histories in, and reuse")
    parser.add_argument("--explain", action="store_true", help="query plans on stderr")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
