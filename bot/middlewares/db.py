"""One AsyncSession per update. This middleware owns the commit; handlers never commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Callbacks other middlewares register to learn how the update's transaction ended.
AFTER_COMMIT = "after_commit"
AFTER_ROLLBACK = "after_rollback"


class DbSessionMiddleware(BaseMiddleware):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        after_commit: list[Callable[[], None]] = []
        after_rollback: list[Callable[[], None]] = []
        async with self.sessionmaker() as session:
            data["session"] = session
            data[AFTER_COMMIT] = after_commit
            data[AFTER_ROLLBACK] = after_rollback
            try:
                result = await handler(event, data)
                # An update that never touched the database (a cached page) has no
                # transaction to commit; skip the round trip.
                if session.in_transaction() or session.new or session.dirty or session.deleted:
                    await session.commit()
            except BaseException:
                await session.rollback()
                for callback in after_rollback:
                    callback()
                raise
        for callback in after_commit:
            callback()
        return result
