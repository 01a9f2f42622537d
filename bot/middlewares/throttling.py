"""Per-user flood control: a token bucket in memory, checked before any database work."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, TelegramObject, Update
from aiogram.types import User as TgUser

MAX_TRACKED_USERS = 100_000


def _throttled_kind(event: TelegramObject) -> bool:
    """Only what a person types or presses is throttled.

    Payment updates (pre_checkout_query must be answered within 10 s; a successful or
    refunded payment must be booked), join requests and membership changes are never
    dropped: losing one loses money or access.
    """
    if not isinstance(event, Update):
        return False
    if event.callback_query is not None or event.inline_query is not None:
        return True
    message = event.message or event.edited_message
    if message is None:
        return False
    return message.successful_payment is None and message.refunded_payment is None


class ThrottlingMiddleware(BaseMiddleware):
    """Allow `burst` updates at once, refilled at one per `rate` seconds, per user.

    Dropped messages get no reply at all (a reply would itself feed the flood); a dropped
    button press is answered so the client stops its spinner.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def allow(self, user_id: int) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens, last = self._buckets.pop(user_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) / self.rate)
        allowed = tokens >= 1.0
        self._buckets[user_id] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > MAX_TRACKED_USERS:
            self._buckets.popitem(last=False)
        return allowed

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        if tg_user is None or not _throttled_kind(event) or self.allow(tg_user.id):
            return await handler(event, data)
        if isinstance(event, Update) and isinstance(event.callback_query, CallbackQuery):
            await event.callback_query.answer("⏳", cache_time=1)
        return None
