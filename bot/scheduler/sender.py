"""The one interface every scheduled message goes through, and its rate limiter.

The scheduler depends on the `Sender` Protocol, not on aiogram: production wraps the Bot
(`bot.telegram.sender.TelegramSender`), tests and benchmarks pass anything with the same
shape. `RateLimitedSender` sits in front of it and is the only place that decides *when*
a message may go: a global messages-per-second cap, a minimum spacing per chat, a global
pause on 429 and retries with backoff on network errors. The limits themselves are a
`Limiter`: this process's memory (`RateLimiter`), or Redis shared by every process when
REDIS_URL is set (bot.scheduler.shared_limits).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from bot.ops import metrics
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.errors import RetryAfter, Transient

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Button:
    text: str
    data: str  # callback_data, at most 64 bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as plain data: text, or a file_id with a caption, plus inline buttons."""

    kind: str = "text"  # ContentType: text | photo | video | document | voice
    text: str | None = None
    file_id: str | None = None
    caption: str | None = None
    protect_content: bool = False
    buttons: tuple[tuple[Button, ...], ...] = ()
    # A copy of a message already in a chat (copyMessage): any content type, as it was.
    copy_from: int | None = None
    copy_id: int | None = None
    # allow_paid_broadcast: Telegram lets it past the free 30/s for 0.1 Star a message.
    paid_broadcast: bool = False


class Sender(Protocol):
    async def send(self, chat_id: int, message: Outgoing) -> int:
        """Send one message and return Telegram's message_id.

        Raises the types of bot.scheduler.errors: RetryAfter, Unreachable, ChatNotFound,
        Rejected, Transient.
        """
        ...

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
    ) -> None:
        """Replace a message's text and its inline buttons (none: the buttons go)."""
        ...


# Telegram's limit for one group: 20 messages per minute.
GROUP_INTERVAL = 3.0


class Limiter(Protocol):
    """Who decides when a send may go: `RateLimiter` (this process's memory) or
    `bot.scheduler.shared_limits.RedisLimiter` (every process together, REDIS_URL)."""

    per_second: float

    def chat_wait(self, chat_id: int) -> float: ...

    async def acquire(self, chat_id: int | None) -> float:
        """Wait for and take the next slot for `chat_id`; returns when it was granted."""
        ...

    async def pause_all(self, seconds: float) -> None:
        """A 429: nobody sends until `seconds` from now."""
        ...


class RateLimiter:
    """Slots for sends: a global spacing of 1/rate seconds and a per-chat spacing.

    Slots are handed out from the previous slot, not from the moment the caller woke up,
    so small sleep overshoots do not add up; a little slack lets the sender catch up on
    at most `slack` missed slots (a GC pause, a slow commit), which Telegram's bucket (a
    burst of ~30) tolerates. Over any second the cap is exceeded by at most `slack`.
    """

    MAX_CHATS = 100_000

    def __init__(
        self,
        per_second: float,
        chat_interval: float,
        clock: Clock,
        slack: int = 5,
        group_interval: float = GROUP_INTERVAL,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self.chat_interval = chat_interval
        # Groups and channels (negative ids) take 20 messages a minute from a bot.
        self.group_interval = max(chat_interval, group_interval)
        self.clock = clock
        self.slack = slack
        self._next = 0.0
        self._paused_until = 0.0
        self._chats: OrderedDict[int, float] = OrderedDict()

    def chat_wait(self, chat_id: int) -> float:
        """Seconds until this chat may receive again (0 when it may now)."""
        return max(0.0, self._chats.get(chat_id, 0.0) - self.clock.monotonic())

    def reserve(self, chat_id: int | None) -> float:
        """Take the next slot for `chat_id` (None: a call that is not a message to a
        chat, bound by the global cap only); returns how long to wait before sending."""
        now = self.clock.monotonic()
        floor = now - self.slack * self.interval
        chat_free = self._chats.get(chat_id, 0.0) if chat_id is not None else 0.0
        start = max(self._next, floor, self._paused_until, chat_free)
        self._next = start + self.interval
        if chat_id is not None:
            self._chats.pop(chat_id, None)
            spacing = self.group_interval if chat_id < 0 else self.chat_interval
            self._chats[chat_id] = max(start, now) + spacing
            if len(self._chats) > self.MAX_CHATS:
                self._chats.popitem(last=False)
        return max(0.0, start - now)

    def take_if_free(self, chat_id: int | None) -> bool:
        """Take a slot only if one is free right now (nobody is waiting for it): a paid
        broadcast uses the free rate's idle slots and never queues in front of a lesson."""
        now = self.clock.monotonic()
        chat_free = self._chats.get(chat_id, 0.0) if chat_id is not None else 0.0
        if max(self._next, self._paused_until, chat_free) > now:
            return False
        self.reserve(chat_id)
        return True

    def pause(self, seconds: float) -> None:
        """429: nobody sends until `seconds` from now."""
        until = self.clock.monotonic() + seconds
        self._paused_until = max(self._paused_until, until)
        self._next = max(self._next, until)

    async def acquire(self, chat_id: int | None) -> float:
        wait = self.reserve(chat_id)
        await self.clock.sleep(wait)
        return self.clock.monotonic()

    async def pause_all(self, seconds: float) -> None:
        self.pause(seconds)


@dataclass
class SenderStats:
    sent: int = 0
    retry_after: int = 0
    network_errors: int = 0
    billed: int = 0  # paid-broadcast messages sent above the free rate (0.1 Star each)
    waited_429: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


class RateLimitedSender:
    """A Sender that spaces sends and absorbs 429s and short network trouble.

    429 pauses every send of this process (with shared limits: of every process) for
    retry_after, then the same message is tried again. Network errors are retried
    `network_retries` times with doubling backoff; after that the Transient error goes up
    to the scheduler, which puts the message back with a later due time (so nothing is
    dropped).
    """

    def __init__(
        self,
        inner: Sender,
        *,
        per_second: float = 30.0,
        chat_interval: float = 1.0,
        clock: Clock | None = None,
        network_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        limiter: Limiter | None = None,
        group_interval: float = GROUP_INTERVAL,
        paid_per_second: float = 1000.0,
    ) -> None:
        self.inner = inner
        self.clock = clock or SystemClock()
        # Without a limiter given: this process's own (no REDIS_URL, tests, benchmarks).
        self.limiter: Limiter = limiter or RateLimiter(
            per_second, chat_interval, self.clock, group_interval=group_interval
        )
        # Paid broadcasts (allow_paid_broadcast) have their own cap, PAID_BROADCAST_RATE
        # in all: the free rate's idle slots plus the rest as paid slots (Telegram's
        # 1000/s counts both), so the paid limiter gets the difference. With shared
        # limits in Redis the paid budget is shared too (the deployment's cap, however
        # many workers); else it is this process's.
        self.paid_total = paid_per_second
        paid_rate = max(paid_per_second - per_second, paid_per_second / 2)
        shared_paid = getattr(self.limiter, "paid_budget", None)
        self.paid_limiter: Limiter = (
            shared_paid(paid_rate)
            if shared_paid is not None
            else RateLimiter(paid_rate, chat_interval, self.clock, group_interval=group_interval)
        )
        self.network_retries = network_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = SenderStats()

    @property
    def per_second(self) -> float:
        return self.limiter.per_second

    @property
    def paid_per_second(self) -> float:
        return self.paid_total

    def chat_wait(self, chat_id: int) -> float:
        return self.limiter.chat_wait(chat_id)

    async def send(self, chat_id: int, message: Outgoing) -> int:
        if message.paid_broadcast:
            return (await self.send_paid(chat_id, message))[0]
        result = await self.call(lambda: self.inner.send(chat_id, message), chat_id)
        self.stats.sent += 1
        return int(result or 0)

    async def paid_slot(self, chat_id: int) -> bool:
        """Wait for and take the slot of one paid-broadcast message; True when it is a
        free-rate slot. The rule: a free-rate slot only when one is idle right now (so
        Telegram does not bill it and no lesson waits longer than one slot for it);
        otherwise a slot of the paid cap, billed 0.1 Star. With shared limits the test
        is made in Redis (RedisLimiter.book) against every process's free-rate sends."""
        book = getattr(self.paid_limiter, "book", None)
        if book is not None:  # shared limits: the same rule, decided in Redis
            return bool(await book(chat_id))
        take = getattr(self.limiter, "take_if_free", None)
        if take is not None and take(chat_id):
            return True
        await self.paid_limiter.acquire(chat_id)
        return False

    async def send_paid(
        self, chat_id: int, message: Outgoing, *, free: bool | None = None
    ) -> tuple[int, bool]:
        """A paid-broadcast message: (message_id, billed). `free`: its slot was taken
        already by `paid_slot` (which said whether it was a free-rate one)."""
        if free is None:
            free = await self.paid_slot(chat_id)
        result = await self.call(
            lambda: self.inner.send(chat_id, message),
            chat_id,
            limiter=self.paid_limiter,  # a retry after a 429 waits for a paid slot
            acquired=True,
        )
        self.stats.sent += 1
        if not free:
            self.stats.billed += 1
        return int(result or 0), not free

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
    ) -> None:
        await self.call(lambda: self.inner.edit_text(chat_id, message_id, text, buttons), chat_id)

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        chat_id: int | None = None,
        *,
        limiter: Limiter | None = None,
        acquired: bool = False,
    ) -> T:
        """Run one Bot API call in this sender's budget: `fn` raises the types of
        bot.scheduler.errors. With a `chat_id` it is a message to that chat (spaced per
        chat too); without, another call the scheduler makes (a ban, an invite link),
        which shares the global cap and waits out the same 429 pauses. `limiter`: another
        budget (the paid cap); `acquired`: the first slot is taken already."""
        budget = limiter or self.limiter
        failures = 0
        while True:
            try:
                # Inside the try: a shared limiter that cannot be reached is a network
                # error like any other (retried, then the message is put back), and
                # nothing goes out without its permission.
                if not acquired:
                    await budget.acquire(chat_id)
                acquired = False
                return await fn()
            except RetryAfter as exc:
                self.stats.retry_after += 1
                self.stats.waited_429 += exc.retry_after
                metrics.PAUSES_429.inc()
                metrics.PAUSED_429_SECONDS.inc(exc.retry_after)
                log.warning("429 from Telegram: every send waits %.1fs", exc.retry_after)
                await self.limiter.pause_all(exc.retry_after)
                await self.paid_limiter.pause_all(exc.retry_after)
            except Transient:
                self.stats.network_errors += 1
                failures += 1
                if failures > self.network_retries:
                    raise
                delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
                log.info("network error (chat %s); retry %d in %.1fs", chat_id, failures, delay)
                await self.clock.sleep(delay)
