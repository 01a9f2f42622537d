"""A Bot session middleware: every Bot API request counted by method, and its failures
by method and code (429, 400, 403, 5xx, or 'network' when no answer came)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods.base import TelegramType

from bot.ops import metrics

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

# aiogram's exception classes by the HTTP status Telegram answered with.
_CODES = {
    "TelegramBadRequest": "400",
    "TelegramUnauthorizedError": "401",
    "TelegramForbiddenError": "403",
    "TelegramNotFound": "404",
    "TelegramConflictError": "409",
    "TelegramEntityTooLarge": "413",
    "TelegramServerError": "5xx",
    "RestartingTelegram": "5xx",
}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, TelegramRetryAfter):
        return "429"
    if isinstance(exc, TelegramNetworkError | TimeoutError | OSError):
        return "network"
    for cls in type(exc).__mro__:
        if cls.__name__ in _CODES:
            return _CODES[cls.__name__]
    return "other" if isinstance(exc, TelegramAPIError) else "error"


class ApiMetricsMiddleware(BaseRequestMiddleware):
    def __init__(self) -> None:
        # Counter children by method, looked up once (labels() locks and hashes).
        self._calls: dict[str, Any] = {}

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = str(getattr(method, "__api_method__", type(method).__name__))
        calls = self._calls.get(name)
        if calls is None:
            calls = self._calls[name] = metrics.API_CALLS.labels(name)
        calls.inc()
        try:
            return await make_request(bot, method)
        except Exception as exc:
            metrics.API_ERRORS.labels(name, error_code(exc)).inc()
            raise
