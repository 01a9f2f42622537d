"""REDIS_URL: Telegram's limits held by every process together (a real redis-server).

Several limiter processes (each its own event loop and connection, as scheduler workers)
take slots as fast as they are given: together they never pass the global cap, one chat
gets at most one message per chat interval and a group one per group interval, and a 429
seen by one sender pauses the others. Without REDIS_URL the in-memory limiter stays
(its own tests: tests/unit/test_sender_rate_limit.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app, create_limiter
from bot.config import Settings
from bot.scheduler.clock import SystemClock
from bot.scheduler.errors import RetryAfter, Transient
from bot.scheduler.memory import MemorySender
from bot.scheduler.sender import Outgoing, RateLimitedSender, RateLimiter
from bot.scheduler.shared_limits import RedisLimiter
from tests.support.recording import RecordingSession
from tests.support.servers import free_port
from tests.support.updates import settle

ROOT = Path(__file__).resolve().parents[2]
MSG = Outgoing(text="hi")
SLACK = 5  # RedisLimiter's default catch-up allowance


@pytest.fixture
async def redis(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    for key in await client.keys("lyceum:limits:*"):
        await client.delete(key)
    yield client
    await client.aclose()


def run_processes(
    url: str, count: int, rate: float, seconds: float, chats: list[str], budget: str = "global"
) -> list[list[tuple[int | None, float]]]:
    """`count` limiter processes side by side; the grants of each."""
    start = time.time() + 2.0  # every process imported and connected by then
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIMITS_BUDGET": budget}
    cmd = [sys.executable, "-m", "tests.support.limits_load", url, str(rate), str(seconds)]
    procs = [
        subprocess.Popen([*cmd, str(start), *chats], stdout=subprocess.PIPE, env=env, cwd=ROOT)
        for _ in range(count)
    ]
    outputs = [p.communicate(timeout=seconds + 60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [[(c, t) for c, t in json.loads(out)] for out in outputs]


def most_in_one_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    j = 0
    most = 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        most = max(most, i - j + 1)
    return most


async def test_processes_together_never_pass_the_global_cap(redis: Redis, redis_url: str) -> None:
    rate = 40.0
    per_process = run_processes(redis_url, 3, rate, 3.0, ["none"])
    stamps = [t for grants in per_process for _, t in grants]
    assert all(len(grants) > 10 for grants in per_process)  # all three really took part
    # Alone, each would take ~40/s: together they share the one cap (plus the slack that
    # lets a stalled sender catch up, as the in-memory limiter allows).
    assert most_in_one_second(stamps) <= rate + SLACK + 1
    span = max(stamps) - min(stamps)
    assert len(stamps) <= rate * span + SLACK + 1


async def test_the_paid_budget_is_one_cap_for_every_process(redis: Redis, redis_url: str) -> None:
    """PAID_BROADCAST_RATE with REDIS_URL: the deployment's cap, not each worker's; slots
    are booked ahead (one round trip each), so together they come close to it."""
    rate = 300.0
    per_process = run_processes(redis_url, 3, rate, 3.0, ["none"], budget="paid")
    stamps = [t for grants in per_process for _, t in grants]
    assert all(len(grants) > 50 for grants in per_process)
    assert most_in_one_second(stamps) <= rate + SLACK + 1
    span = max(stamps) - min(stamps)
    assert len(stamps) <= rate * span + SLACK + 1
    assert len(stamps) >= 0.9 * rate * span  # booked slots are used, not lost


async def test_paid_and_free_budgets_share_chats_and_pauses(redis: Redis) -> None:
    free = RedisLimiter(redis, per_second=1000, chat_interval=1.0, group_interval=3.0, bot_id=42)
    paid = free.paid_budget(1000)
    assert paid.scope == "paid" and paid.reserve
    first = await free.acquire(5)
    then = await paid.acquire(5)  # the same learner: one message a second, whichever budget
    assert then - first >= 1.0 - 1e-3
    seconds, micros = await redis.time()
    await free.pause_all(0.5)
    after = await paid.acquire(6)
    assert after >= seconds + micros / 1e6 + 0.5 - 1e-3  # a 429 pauses paid broadcasts too
    sender = RateLimitedSender(MemorySender(SystemClock()), limiter=free, paid_per_second=1000)
    assert isinstance(sender.paid_limiter, RedisLimiter) and sender.paid_limiter.scope == "paid"


async def test_a_paid_message_takes_an_idle_free_slot_first(redis: Redis) -> None:
    """As without Redis: an idle slot of the free rate carries a paid message (Telegram
    does not bill it); when the free rate is busy it is booked on the paid budget."""
    free = RedisLimiter(redis, per_second=1.0, chat_interval=1.0, group_interval=3.0, bot_id=42)
    paid = free.paid_budget(1000)
    sender = RateLimitedSender(MemorySender(SystemClock()), limiter=free, per_second=1.0)
    first = await redis_seconds(redis)
    assert await sender.paid_slot(11) is True  # idle: free
    assert await sender.paid_slot(12) is False  # the free slot is used for a second: paid
    await free.acquire(None)  # a lesson takes the free rate's next slot
    assert await paid.book(13) is False
    # Chat 11 had a message a moment ago: its next waits its second, whichever budget.
    assert await paid.book(11) is False
    assert await redis_seconds(redis) - first >= 1.0 - 1e-3


async def redis_seconds(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1e6


async def test_one_chat_and_one_group_are_spaced_across_processes(
    redis: Redis, redis_url: str
) -> None:
    per_process = run_processes(redis_url, 2, 1000.0, 4.0, ["5", "-7"])
    grants = [g for grants in per_process for g in grants]
    private = sorted(t for chat, t in grants if chat == 5)
    group = sorted(t for chat, t in grants if chat == -7)
    assert len(private) >= 3 and len(group) >= 2
    # 1 per second per private chat; a group 1 per 3 s, so never more than 20 in a minute.
    assert min(b - a for a, b in itertools.pairwise(private)) >= 1.0 - 1e-6
    assert min(b - a for a, b in itertools.pairwise(group)) >= 3.0 - 1e-6
    # Both processes wanted each chat all the time; neither had it to itself.
    assert all({c for c, _ in g} == {5, -7} for g in per_process)


class FloodOnce(MemorySender):
    """Telegram answering the first send with 429 retry_after."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(SystemClock())
        self.retry_after = retry_after
        self.flooded = False

    async def send(self, chat_id: int, message: Outgoing) -> int:
        if not self.flooded:
            self.flooded = True
            raise RetryAfter(self.retry_after)
        return await super().send(chat_id, message)


def shared_sender(url: str, inner: MemorySender) -> RateLimitedSender:
    """A sender with its own connection to the shared limits, as another process has."""
    limiter = RedisLimiter(
        Redis.from_url(url), per_second=1000, chat_interval=1.0, group_interval=3.0, bot_id=42
    )
    return RateLimitedSender(inner, limiter=limiter, network_retries=0)


async def test_a_429_seen_by_one_process_pauses_the_others(redis: Redis, redis_url: str) -> None:
    flooded = FloodOnce(retry_after=1.0)
    one = shared_sender(redis_url, flooded)
    other = shared_sender(redis_url, MemorySender(SystemClock()))
    try:
        first = asyncio.create_task(one.send(1, MSG))
        for _ in range(1000):  # until the 429 has been shared
            if await redis.exists("lyceum:limits:{42}:pause"):
                break
            await asyncio.sleep(0.005)
        seconds, micros = await redis.time()
        paused_until = int(await redis.get("lyceum:limits:{42}:pause")) / 1_000_000
        assert 0.5 < paused_until - (seconds + micros / 1_000_000) <= 1.0  # retry_after
        granted = await other.limiter.acquire(2)  # another chat: only the pause holds it
        assert granted >= paused_until
        assert await first > 0 and one.stats.retry_after == 1 and len(flooded.sent) == 1
    finally:
        await one.limiter.redis.aclose()  # type: ignore[attr-defined]
        await other.limiter.redis.aclose()  # type: ignore[attr-defined]


async def test_an_unreachable_redis_sends_nothing(settings: Settings) -> None:
    inner = MemorySender(SystemClock())
    sender = shared_sender(f"redis://127.0.0.1:{free_port()}/0", inner)
    try:
        with pytest.raises(Transient):
            await sender.send(1, MSG)  # the scheduler puts the message back for later
        assert inner.sent == []
    finally:
        await sender.limiter.redis.aclose()  # type: ignore[attr-defined]


async def test_without_redis_url_the_limits_stay_in_memory(
    settings: Settings, engine: AsyncEngine, redis_url: str
) -> None:
    app = build_app(settings, session=RecordingSession(), engine=engine)
    assert type(app.scheduler.sender.limiter) is RateLimiter  # type: ignore[attr-defined]
    assert create_limiter(settings, app.bot, SystemClock()) is None
    await settle(app)
    await app.close()

    shared = settings.model_copy(update={"redis_url": SecretStr(redis_url), "scheduler_rate": 25.0})
    app = build_app(shared, session=RecordingSession(), engine=engine)
    limiter = app.scheduler.sender.limiter  # type: ignore[attr-defined]
    assert isinstance(limiter, RedisLimiter)
    assert (limiter.per_second, limiter.group_interval) == (25.0, 3.0)
    assert limiter.prefix == "lyceum:limits:{42}:"  # the bot's id: one Redis, several bots
    await settle(app)
    await app.close()
