"""Telegram's limits held by every process together, in Redis (when REDIS_URL is set).

Several scheduler and webhook workers send as one bot, and Telegram counts the bot, not
the process: the global cap (SCHEDULER_RATE, for the whole deployment), one message per
second per private chat, 20 per minute per group, and a 429 means *nobody* sends for
retry_after. So the decision "may this message go now?" is taken in Redis, atomically,
by one small Lua script, and a 429 writes a `pause` key that every acquire checks.

Libraries weighed (see README "Running at scale"):
- `limits` (async Redis storage): fixed/moving/sliding windows with `hit`/`test` per key,
  but no atomic check of several keys at once (the global slot would be spent even when
  the chat must wait), no "wait X ms" answer to sleep on (callers would poll), no shared
  pause; and its async Redis storage is built on `coredis`, a second Redis client.
- `aiolimiter`: a leaky bucket in one process's memory: the limit we already have.
- redis-py's own scripting (`register_script`, EVALSHA with a fallback to EVAL): chosen;
  the algorithm is GCRA (the generic cell rate algorithm): one key per scope holding its
  "theoretical arrival time", so a scope costs one key and one comparison, and the
  answer is either "go" or exactly how long to wait.

Times are the Redis server's clock (TIME), in microseconds, so processes on machines
with skewed clocks still agree.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.errors import Transient

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# KEYS: global TAT, pause_until, [chat TAT]. ARGV: global interval, global tolerance,
# chat interval (µs). Returns {1, server time} when the slot is taken, else {0, wait µs}.
# Nothing is written unless the send may go now: a chat that must wait does not spend
# a global slot, and a caller told to wait simply asks again after waiting.
ACQUIRE = """
redis.replicate_commands()  -- TIME then writes: Redis < 5 needs this, later a no-op
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gi, gt, ci = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = (tonumber(redis.call('GET', KEYS[2])) or 0) - now
local g = tonumber(redis.call('GET', KEYS[1])) or 0
wait = math.max(wait, g - gt - now)
local c = nil
if #KEYS > 2 then
  c = tonumber(redis.call('GET', KEYS[3])) or 0
  wait = math.max(wait, c - now)
end
if wait > 0 then
  return {0, math.ceil(wait)}
end
local tat = math.max(g, now) + gi
redis.call('SET', KEYS[1], string.format('%.0f', math.ceil(tat)),
  'PX', math.ceil((tat - now) / 1000) + 1000)
if c then
  redis.call('SET', KEYS[3], string.format('%.0f', math.ceil(now + ci)),
    'PX', math.ceil(ci / 1000) + 1000)
end
return {1, now}
"""

# The same keys and arguments plus ARGV[4], a horizon (µs). Instead of "go now or ask
# again", it books the earliest slot within the horizon and returns {1, wait µs, now}
# (the caller sleeps that long, then sends), or {0, wait µs, now} when none is near: one
# round trip per message however many processes compete (a paid broadcast's 1000/s).
# The global key's tolerance gives the same catch-up slack as ACQUIRE. With KEYS[4] (the
# free budget's key) and ARGV[5] (its interval), a slot of the free budget that is idle
# at this instant is taken instead when the chat may receive now: {2, 0, now}.
RESERVE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local gi, gt, ci = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local g = tonumber(redis.call('GET', KEYS[1])) or 0
local pause = tonumber(redis.call('GET', KEYS[2])) or 0
local at = math.max(now, pause, g - gt)
local c = nil
if #KEYS > 2 then
  c = tonumber(redis.call('GET', KEYS[3])) or 0
  at = math.max(at, c)
end
if #KEYS > 3 then
  -- The free budget's slot, if it is idle right now (nobody waits for it): {2, 0, now}.
  local f, fi = tonumber(redis.call('GET', KEYS[4])) or 0, tonumber(ARGV[5])
  if f <= now and pause <= now and c <= now then
    redis.call('SET', KEYS[4], string.format('%.0f', math.ceil(now + fi)),
      'PX', math.ceil(fi / 1000) + 1000)
    redis.call('SET', KEYS[3], string.format('%.0f', math.ceil(now + ci)),
      'PX', math.ceil(ci / 1000) + 1000)
    return {2, 0, now}
  end
end
if at - now > horizon then
  return {0, math.ceil(at - now), now}
end
local tat = math.max(g, at) + gi
redis.call('SET', KEYS[1], string.format('%.0f', math.ceil(tat)),
  'PX', math.ceil((tat - now) / 1000) + 1000)
if c then
  redis.call('SET', KEYS[3], string.format('%.0f', math.ceil(at + ci)),
    'PX', math.ceil((at + ci - now) / 1000) + 1000)
end
return {1, math.ceil(at - now), now}
"""

# KEYS: pause_until. ARGV: seconds (µs). Only ever extends a pause already set.
PAUSE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local old = tonumber(redis.call('GET', KEYS[1])) or 0
if untl > old then
  redis.call('SET', KEYS[1], string.format('%.0f', untl),
    'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
"""

US = 1_000_000


class RedisLimiter:
    """The RateLimiter's job for a whole deployment: the same interface, state in Redis.

    `slack` is the global catch-up allowance, as in the in-memory limiter: after a stall
    up to `slack` slots may go back to back (Telegram tolerates a burst of about 30), so
    over any second the cap is exceeded by at most `slack`. Chats get no slack.
    """

    MAX_CHATS = 100_000
    # RESERVE books at most this far ahead (a slot further away is asked for again).
    HORIZON = 1.0

    def __init__(
        self,
        redis: Redis,
        *,
        per_second: float,
        chat_interval: float,
        group_interval: float,
        bot_id: int,
        clock: Clock | None = None,
        slack: int = 5,
        scope: str = "global",
        reserve: bool = False,
        free_per_second: float | None = None,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.redis = redis
        self.bot_id = bot_id
        # The key of this budget's slots: "global" (SCHEDULER_RATE) or "paid" (paid
        # broadcasts). Chats and the 429 pause are the bot's, whatever the budget.
        self.scope = scope
        self.reserve = reserve
        # A booking budget beside the free one (paid broadcasts): the free budget's
        # rate, so that its idle slots are used first (not billed by Telegram).
        self.free_per_second = free_per_second
        self.per_second = per_second
        self.chat_interval = chat_interval
        self.group_interval = group_interval
        self.clock = clock or SystemClock()
        self.slack = slack
        # One Redis may serve several bots; the braces keep one bot's keys in one
        # Redis Cluster slot, which a multi-key script needs.
        self.prefix = f"lyceum:limits:{{{bot_id}}}:"
        self._acquire = redis.register_script(RESERVE if reserve else ACQUIRE)
        self._pause = redis.register_script(PAUSE)
        # Only a hint for the worker's ordering (chat_wait); Redis has the final word.
        self._chats: OrderedDict[int, float] = OrderedDict()

    def paid_budget(self, per_second: float) -> RedisLimiter:
        """The paid broadcasts' budget beside this one (RateLimitedSender asks for it):
        `per_second` for the whole deployment, the same chats and 429 pause, and slots
        booked ahead (RESERVE) so that every message costs one round trip, and this
        budget's idle slots taken first (`book`)."""
        return RedisLimiter(
            self.redis,
            per_second=per_second,
            chat_interval=self.chat_interval,
            group_interval=self.group_interval,
            bot_id=self.bot_id,
            clock=self.clock,
            slack=self.slack,
            scope="paid",
            reserve=True,
            free_per_second=self.per_second if self.scope == "global" else None,
        )

    def interval_for(self, chat_id: int) -> float:
        """Private chats have positive ids; groups, supergroups and channels negative."""
        return self.group_interval if chat_id < 0 else self.chat_interval

    def chat_wait(self, chat_id: int) -> float:
        """Seconds until this chat may receive again, as far as this process knows."""
        return max(0.0, self._chats.get(chat_id, 0.0) - self.clock.monotonic())

    async def _run(self, chat_id: int | None, free: bool = False) -> tuple[int, float, float]:
        """The script's answer in seconds: (taken, wait, Redis time now). ACQUIRE gives
        (1, Redis time of the grant, 0) when taken; RESERVE (1, wait, now), or (2, 0,
        now) when `free` and the free budget's slot was idle; 0: not taken, wait."""
        interval = 1.0 / self.per_second
        keys = [self.prefix + self.scope, self.prefix + "pause"]
        args = [interval * US, self.slack * interval * US, 0]
        if chat_id is not None:
            keys.append(f"{self.prefix}chat:{chat_id}")
            args[2] = self.interval_for(chat_id) * US
        if self.reserve:
            args.append(self.HORIZON * US)
            if free and chat_id is not None and self.free_per_second:
                keys.append(self.prefix + "global")
                args.append(US / self.free_per_second)
        try:
            taken, value, *now = await self._acquire(keys=keys, args=args)
        except Exception as exc:  # redis errors: fail closed, the caller retries later
            raise Transient(f"rate limiter unreachable: {exc}") from exc
        return int(taken), int(value) / US, int(now[0]) / US if now else 0.0

    async def try_acquire(self, chat_id: int | None) -> tuple[bool, float]:
        """(True, server time of the grant in seconds) or (False, seconds to wait). A
        booking limiter (`reserve`): (True, seconds until the booked slot) instead."""
        taken, value, _ = await self._run(chat_id)
        return taken > 0, value

    async def acquire(self, chat_id: int | None) -> float:
        """Wait until a send to `chat_id` may go (None: a call bound by the global cap
        only), take its slot, and return the Redis time of the grant in seconds."""
        return (await self._wait_for_slot(chat_id, free=False))[0]

    async def book(self, chat_id: int) -> bool:
        """A paid broadcast's slot (a booking budget): waits for it and says whether it
        was an idle slot of the free budget (True: Telegram will not bill it)."""
        return (await self._wait_for_slot(chat_id, free=True))[1]

    async def _wait_for_slot(self, chat_id: int | None, free: bool) -> tuple[float, bool]:
        while True:
            taken, wait, now = await self._run(chat_id, free)
            if taken and self.reserve:
                await self.clock.sleep(wait)  # booked that far ahead: then it is ours
            elif not taken:
                await self.clock.sleep(min(wait, self.HORIZON) if self.reserve else wait)
                continue
            if chat_id is not None:
                self._remember(chat_id)
            # ACQUIRE answers a grant with the Redis time itself (in `wait`'s place).
            return (now + wait if self.reserve else wait), taken == 2

    async def pause_all(self, seconds: float) -> None:
        """A 429: every process waits `seconds` from now."""
        try:
            await self._pause(keys=[self.prefix + "pause"], args=[seconds * US])
        except Exception:  # Redis gone: at least this process waits it out
            log.exception("could not share a 429 pause through Redis")
            await self.clock.sleep(seconds)

    def _remember(self, chat_id: int) -> None:
        self._chats.pop(chat_id, None)
        self._chats[chat_id] = self.clock.monotonic() + self.interval_for(chat_id)
        if len(self._chats) > self.MAX_CHATS:
            self._chats.popitem(last=False)
