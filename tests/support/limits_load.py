"""One process taking slots from the shared limits as fast as they come (a test helper).

python -m tests.support.limits_load REDIS_URL RATE SECONDS START CHAT... (START: the
time.time() to begin at, so that every copy runs in the same span) prints JSON: the grants
as [chat or null, Redis time in seconds]; "none" as a chat is a call bound by the global
cap only. LIMITS_BUDGET=paid: the paid broadcasts' budget (booked slots) instead.
Several copies run side by side in test_shared_limits, each its own process,
event loop and connection, as scheduler workers would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time

from redis.asyncio import Redis

from bot.scheduler.shared_limits import RedisLimiter


async def main(
    url: str, rate: float, seconds: float, start: float, chats: list[int | None]
) -> None:
    redis = Redis.from_url(url)
    limiter = RedisLimiter(redis, per_second=rate, chat_interval=1.0, group_interval=3.0, bot_id=42)
    if os.environ.get("LIMITS_BUDGET") == "paid":  # the paid broadcasts' budget instead
        limiter = limiter.paid_budget(rate)
    grants: list[tuple[int | None, float]] = []
    await asyncio.sleep(max(0.0, start - time.time()))
    end = time.monotonic() + seconds
    try:
        for chat in itertools.cycle(chats):
            if time.monotonic() >= end:
                break
            grants.append((chat, await limiter.acquire(chat)))
    finally:
        await redis.aclose()
    print(json.dumps(grants))


if __name__ == "__main__":
    url, rate, seconds, start, *chats = sys.argv[1:]
    parsed = [None if c == "none" else int(c) for c in chats]
    asyncio.run(main(url, float(rate), float(seconds), float(start), parsed))
