"""What the scheduler benchmarks' worker processes share (bench/drip.py, bench/broadcast.py):
the sender as a deployed worker has it (aiogram's Bot on the sandbox, the rate-limited
sender, its limits in this process or shared in Redis) and the loop that runs a Scheduler
until no work is left for anyone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.scheduler.sender import RateLimitedSender
from bot.scheduler.worker import Scheduler
from bot.telegram.sender import TelegramSender


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
