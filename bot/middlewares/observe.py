"""The outermost update middleware: who and what for the logs, counts and timings for
the metrics. It runs first, so the time includes every other middleware."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bot.ops import metrics
from bot.ops.logs import UPDATE_ID, USER_ID


def _user_id(update: Update) -> int | None:
    event = update.event
    sender = getattr(event, "from_user", None)
    if sender is None:  # a channel post, a poll: no person behind it
        return None
    return int(sender.id)


class _Series:
    """The metric children of one update type, looked up once: `labels()` takes a lock
    and hashes on every call, several microseconds per update."""

    __slots__ = ("errors", "seconds", "updates")

    def __init__(self, kind: str) -> None:
        self.updates = metrics.UPDATES.labels(kind)
        self.seconds = metrics.HANDLER_SECONDS.labels(kind)
        self.errors = metrics.HANDLER_ERRORS.labels(kind)


class ObserveMiddleware(BaseMiddleware):
    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        kind = event.event_type
        series = self._series.get(kind)
        if series is None:
            series = self._series[kind] = _Series(kind)
        update_token = UPDATE_ID.set(event.update_id)
        user_token = USER_ID.set(_user_id(event))
        series.updates.inc()
        started = time.perf_counter()
        try:
            result = await handler(event, data)
        except BaseException:
            series.errors.inc()
            series.seconds.observe(time.perf_counter() - started)
            # Left set: the error handler runs outside this middleware (aiogram's errors
            # middleware is the outermost) and its lines should name the update too. The
            # next update sets both again; each runs in a task of its own in production.
            raise
        series.seconds.observe(time.perf_counter() - started)
        UPDATE_ID.reset(update_token)
        USER_ID.reset(user_token)
        return result
