"""Catalog hot path through the real Dispatcher versus a bare aiogram echo bot.

Feeds N updates (page turns, course cards, searches) to the real App on a 10,000-course
SQLite catalog, with a recording Bot session (no network), and the same number of
messages through a bare aiogram echo bot, in alternating batches of the same run.
Prints JSON: updates/s of each (over the whole timed batches, the event loop's turns
between updates and the background work done in them included), their ratio, p50/p99
latency and p50 and mean per kind. The process is set up as `python -m bot run` sets up
its own (garbage collector thresholds, the funnel-event writer in the background); the
echo bot shares it.

    python bench/handlers.py [--updates 20000] [--courses 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiogram import Bot, Dispatcher, Router  # noqa: E402
from aiogram.types import Message  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bot.app import build_app, tune_gc  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.db import create_engine, create_sessionmaker  # noqa: E402
from bot.keyboards.callbacks import CourseCB, PageCB  # noqa: E402
from bot.migrate import upgrade  # noqa: E402
from bot.models import Course, Creator, User  # noqa: E402
from tests.support.recording import RecordingSession  # noqa: E402
from tests.support.updates import callback_update, message_update, tg_user  # noqa: E402

WORDS = [
    "python",
    "data",
    "design",
    "marketing",
    "finance",
    "guitar",
    "photo",
    "startup",
    "sql",
    "machine",
    "learning",
    "deep",
    "statistics",
    "ux",
    "figma",
    "investing",
    "productivity",
    "speaking",
    "linux",
    "git",
    "javascript",
    "english",
    "编程",
    "数据",
    "分析",
    "设计",
    "营销",
    "理财",
    "摄影",
    "音乐",
    "创业",
    "管理",
    "学习",
    "人工智能",
]


def course_rows(n: int, creator_id: int, rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for i in range(n):
        words = rng.sample(WORDS, 3)
        rows.append(
            {
                "creator_id": creator_id,
                "title": f"{' '.join(words).title()} {i}",
                "description": " ".join(rng.choices(WORDS, k=20)),
                "tags": words[:2],
                "language": "zh" if any(ord(c) > 127 for c in "".join(words)) else "en",
                "price_minor": rng.randrange(500, 9900),
                "currency": "USD",
                "stars_price": rng.randrange(50, 800),
                "published": True,
            }
        )
    return rows


async def prepare(url: str, courses: int) -> None:
    await upgrade(url)
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        session.add(User(id=1, first_name="Creator", referral_code="bench", interests=[]))
        await session.flush()
        creator = Creator(user_id=1, display_name="Bench Academy")
        session.add(creator)
        await session.flush()
        rows = course_rows(courses, creator.id, random.Random(7))
        for start in range(0, len(rows), 2000):
            await session.execute(insert(Course), rows[start : start + 2000])
        await session.commit()
    await engine.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Update = Any
BATCH = 500


def catalog_updates(n: int, courses: int, page_size: int) -> list[tuple[str, Update]]:
    """A third each: page turns, course cards, searches with a typo; 200 learners."""
    rng = random.Random(11)
    users = [tg_user(10_000 + i) for i in range(200)]
    pages = max(1, courses // page_size)
    out: list[tuple[str, Update]] = []
    for i in range(n):
        user = users[i % len(users)]
        kind = ("page", "card", "search")[i % 3]
        if kind == "page":
            update = callback_update(PageCB(page=rng.randrange(pages)).pack(), user)
        elif kind == "card":
            update = callback_update(CourseCB(id=rng.randrange(1, courses + 1)).pack(), user)
        else:
            word = rng.choice(WORDS)
            update = message_update(word[:-1] + word[-1] * 2, user)
        out.append((kind, update))
    return out


def echo_updates(n: int) -> list[tuple[str, Update]]:
    users = [tg_user(10_000 + i) for i in range(200)]
    return [("echo", message_update(f"hello {i}", users[i % len(users)])) for i in range(n)]


def echo_dispatcher() -> tuple[Dispatcher, Bot]:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    return dp, Bot("42:ECHO", session=RecordingSession())


class Runner:
    """Feeds updates one at a time and keeps each latency, by kind."""

    def __init__(self, dp: Dispatcher, bot: Bot) -> None:
        self.dp, self.bot = dp, bot
        self.latencies: dict[str, list[float]] = {}
        self.elapsed = 0.0

    async def run(self, batch: list[tuple[str, Update]]) -> None:
        session = self.bot.session
        assert isinstance(session, RecordingSession)
        start = time.perf_counter()
        for kind, update in batch:
            t0 = time.perf_counter()
            await self.dp.feed_update(self.bot, update)
            self.latencies.setdefault(kind, []).append(time.perf_counter() - t0)
            # A running bot's loop turns between updates (it waits for the next one),
            # and the background work runs there: the funnel-event writer's flushes.
            # Without this turn an update that never waits for the database would never
            # let them run, and their cost would fall outside the timed batches.
            await asyncio.sleep(0)
        # Throughput over the whole batch, the background work in it included.
        self.elapsed += time.perf_counter() - start
        session.requests.clear()

    def report(self) -> dict[str, float]:
        every = [x for xs in self.latencies.values() for x in xs]
        out = {
            "updates_per_s": len(every) / self.elapsed,
            "p50_ms": statistics.median(every) * 1000,
            "p99_ms": percentile(every, 0.99) * 1000,
        }
        if len(self.latencies) > 1:
            for kind, xs in self.latencies.items():
                out[f"{kind}_p50_ms"] = statistics.median(xs) * 1000
                out[f"{kind}_mean_ms"] = statistics.fmean(xs) * 1000
        return {k: round(v, 3) for k, v in out.items()}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--courses", type=int, default=10_000)
    args = parser.parse_args()
    tune_gc()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        await prepare(url, args.courses)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            bot_token="42:BENCH",
            database_url=url,
            throttle_rate=0,
        )
        mine = catalog_updates(args.updates, args.courses, settings.catalog_page_size)
        theirs = echo_updates(args.updates)
        # The 40,000 prepared updates (some 430,000 objects the collector tracks) are the
        # bench's own data, not the bot's: left young, the collector walks them all in the
        # middle of a timed batch (a 0.3 s pause). A running bot gets updates one by one.
        # Frozen before the app exists, so that none of the bot's own objects are.
        gc.collect()
        gc.freeze()
        app = build_app(settings, session=RecordingSession())
        await app.search.snapshot()  # built once before timing, as in a warm process
        # As `python -m bot run` does: the funnel events of views and searches are
        # written in batches in the background (their cost is part of the run).
        app.events.start(app.sessionmaker)
        ours = Runner(app.dp, app.bot)
        echo = Runner(*echo_dispatcher())
        # Alternate batches so that both see the same machine (other load, CPU clocks).
        for start in range(0, args.updates, BATCH):
            await ours.run(mine[start : start + BATCH])
            await echo.run(theirs[start : start + BATCH])
        await app.close()
    lyceum, baseline = ours.report(), echo.report()
    print(
        json.dumps(
            {
                "bench": "handlers",
                "updates": args.updates,
                "courses": args.courses,
                "lyceum": lyceum,
                "echo": baseline,
                "ratio": round(lyceum["updates_per_s"] / baseline["updates_per_s"], 3),
                "goal": {"ratio_min": 0.4, "p99_ms_max": 10},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
