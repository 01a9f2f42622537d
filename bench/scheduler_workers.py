"""What the scheduler benchmarks share (bench/drip.py, bench/broadcast.py). In the worker
processes: the sender as a deployed worker has it (aiogram's Bot on the sandbox, the
rate-limited sender, its limits in this process or shared in Redis) and the loop that
runs a Scheduler until no work is left for anyone. In the bench process: the course and
its learners, the sandbox with Telegram's limits and what it accepted, learner by
learner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Creator, Entitlement, ProductKind, User
from bot.scheduler.sender import RateLimitedSender
from bot.scheduler.worker import Scheduler
from bot.telegram.sender import TelegramSender
from sandbox.control import create_user
from sandbox.limits import RateLimits, SandboxConfig
from sandbox.server import ApiError, SandboxServer


def make_sender(
    api: str,
    token: str,
    *,
    per_second: float,
    chat_interval: float = 1.0,
    paid_per_second: float = 1000.0,
    redis_url: str | None = None,
) -> RateLimitedSender:
    """Telegram's limits in this process, or in Redis with `redis_url` (as REDIS_URL)."""
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api)))
    limiter = None
    if redis_url:
        from redis.asyncio import Redis

        from bot.scheduler.shared_limits import RedisLimiter

        limiter = RedisLimiter(
            Redis.from_url(redis_url),
            per_second=per_second,
            chat_interval=chat_interval,
            group_interval=3.0,
            bot_id=bot.id,
        )
    return RateLimitedSender(
        TelegramSender(bot),
        per_second=per_second,
        chat_interval=chat_interval,
        paid_per_second=paid_per_second,
        limiter=limiter,
    )


async def close_sender(sender: RateLimitedSender) -> None:
    inner = sender.inner
    assert isinstance(inner, TelegramSender)
    await inner.bot.session.close()
    redis = getattr(sender.limiter, "redis", None)
    if redis is not None:
        await redis.aclose()


async def run_until_done(worker: Scheduler, unfinished: Callable[[], Awaitable[int]]) -> None:
    """Run rounds until nothing is left for anyone: a killed worker's rows come back to
    the others when its lease runs out, so idle rounds alone do not mean done."""
    idle = 0
    while idle < 3 or await unfinished() > 0:
        idle = idle + 1 if await worker.run_once() == 0 else 0
        if idle:
            await asyncio.sleep(0.2)


# --- the bench process: the sandbox standing in for Telegram ------------------------------


class Tally:
    """What the sandbox saw: when each message was accepted, how many 429s it answered,
    and, at the end, how many messages each learner got."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.accepted: list[float] = []
        self.too_many = 0
        check_rate = server.check_rate

        def counting(chat: Any, paid: bool = False) -> None:
            try:
                check_rate(chat, paid)
            except ApiError as exc:
                self.too_many += exc.code == 429
                raise
            self.accepted.append(time.monotonic())

        server.check_rate = counting  # type: ignore[method-assign]

    def rate(self) -> tuple[float, float]:
        """(messages a second from the first accepted to the last, that span in s)."""
        span = self.accepted[-1] - self.accepted[0] if len(self.accepted) > 1 else 0.0
        return ((len(self.accepted) - 1) / span if span else 0.0), span

    def per_learner(self, first_uid: int, n: int) -> list[int]:
        got = [0] * n
        for chat_id, chat in self.server.chats.items():
            if 0 <= chat_id - first_uid < n:
                got[chat_id - first_uid] = sum(1 for m in chat.messages.values() if m.outgoing)
        return got


async def start_sandbox(first_uid: int, n: int, latency: float) -> tuple[SandboxServer, str, Tally]:
    """The sandbox with Telegram's limits and `latency` a call, `n` learners who started
    the bot (ids from `first_uid`), counting what it accepts."""
    config = SandboxConfig(limits=RateLimits(), latency=latency, validate_output=False)
    server = SandboxServer(config)
    api = await server.start("127.0.0.1", 0)
    for i in range(n):
        create_user(server, {"id": first_uid + i}).started = True
    return server, api, Tally(server)


def lost_and_duplicates(per_learner: list[int]) -> dict[str, int]:
    return {
        "lost": sum(1 for c in per_learner if c == 0),
        "duplicates": sum(max(0, c - 1) for c in per_learner),
    }


async def course_with_learners(
    s: AsyncSession, first_uid: int, n: int, now: datetime
) -> tuple[Course, list[int]]:
    """One creator's published course and `n` learners entitled to it (ids from
    `first_uid`), quiet hours off: a bench must not depend on the hour it runs."""
    s.add(User(id=1, first_name="Owner", referral_code="owner"))
    await s.flush()
    creator = Creator(user_id=1, display_name="Owner")
    s.add(creator)
    await s.flush()
    course = Course(creator_id=creator.id, title="Bench course", published=True)
    s.add(course)
    await s.flush()
    uids = [first_uid + i for i in range(n)]
    await s.execute(
        insert(User),
        [
            {
                "id": uid,
                "first_name": f"L{uid}",
                "referral_code": f"b{uid}",
                "interests": [],
                "quiet_start": 0,
                "quiet_end": 0,
            }
            for uid in uids
        ],
    )
    await s.execute(
        insert(Entitlement),
        [
            {
                "user_id": uid,
                "product_kind": ProductKind.COURSE,
                "product_id": course.id,
                "starts_at": now,
            }
            for uid in uids
        ],
    )
    return course, uids
