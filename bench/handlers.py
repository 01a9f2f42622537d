"""Catalog hot path through the real Dispatcher versus a bare aiogram echo bot.

Feeds N updates (page turns, course cards, searches) to the real App on a 10,000-course
SQLite catalog, with a recording Bot session (no network), then the same number of
messages through an echo bot in the same run. Prints JSON: updates/s of each, their
ratio, and p50/p99 latency of ours.

    python bench/handlers.py [--updates 20000] [--courses 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiogram import Dispatcher, Router  # noqa: E402
from aiogram.types import Message  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bot.app import build_app  # noqa: E402
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


async def bench_ours(url: str, updates: int, courses: int) -> dict[str, float]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token="42:BENCH",
        database_url=url,
        throttle_rate=0,
    )
    app = build_app(settings, session=RecordingSession())
    rng = random.Random(11)
    users = [tg_user(10_000 + i) for i in range(200)]
    pages = max(1, courses // settings.catalog_page_size)
    await app.search.snapshot()  # built once before timing, as in a warm process
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {"page": [], "card": [], "search": []}
    started = time.perf_counter()
    for i in range(updates):
        user = users[i % len(users)]
        kind = i % 3
        if kind == 0:
            update = callback_update(PageCB(page=rng.randrange(pages)).pack(), user)
        elif kind == 1:
            update = callback_update(CourseCB(id=rng.randrange(1, courses + 1)).pack(), user)
        else:
            word = rng.choice(WORDS)
            update = message_update(word[:-1] + word[-1] * 2, user)  # a typo
        t0 = time.perf_counter()
        await app.dp.feed_update(app.bot, update)
        latencies.append(time.perf_counter() - t0)
        by_kind[("page", "card", "search")[kind]].append(latencies[-1])
        if len(app.bot.session.requests) > 1000:  # type: ignore[attr-defined]
            app.bot.session.requests.clear()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    await app.close()
    return {
        "updates_per_s": updates / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        **{f"{k}_p50_ms": statistics.median(v) * 1000 for k, v in by_kind.items()},
    }


async def bench_echo(updates: int) -> dict[str, float]:
    from aiogram import Bot

    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    bot = Bot("42:ECHO", session=RecordingSession())
    users = [tg_user(10_000 + i) for i in range(200)]
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(updates):
        update = message_update(f"hello {i}", users[i % len(users)])
        t0 = time.perf_counter()
        await dp.feed_update(bot, update)
        latencies.append(time.perf_counter() - t0)
        if len(bot.session.requests) > 1000:  # type: ignore[attr-defined]
            bot.session.requests.clear()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return {
        "updates_per_s": updates / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--courses", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        await prepare(url, args.courses)
        ours = await bench_ours(url, args.updates, args.courses)
    echo = await bench_echo(args.updates)
    print(
        json.dumps(
            {
                "bench": "handlers",
                "updates": args.updates,
                "courses": args.courses,
                "lyceum": {k: round(v, 3) for k, v in ours.items()},
                "echo": {k: round(v, 3) for k, v in echo.items()},
                "ratio": round(ours["updates_per_s"] / echo["updates_per_s"], 3),
                "goal": {"ratio_min": 0.4, "p99_ms_max": 10},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
