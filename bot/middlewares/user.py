"""Registers the sender on first contact and hands the User row to handlers.

Reading the user row on every update costs a round trip that most updates (a page turn,
a card) do not need, so the last committed row of recent users is kept in memory and
attached to the update's session without a query. The cache is short-lived on purpose:
another process or the scheduler may change a user (language, blocked flag) and this
process sees it at most `ttl` seconds later; changes committed by any session of this
process (the scheduler marking a learner blocked, say) drop the cached copy at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import object_session

from bot.middlewares.db import AFTER_COMMIT, AFTER_ROLLBACK
from bot.models import User, utcnow
from bot.services.changes import Tracker
from bot.services.users import TelegramProfile, refresh_profile, upsert_user

# When any session in this process commits a change to a user (the scheduler marking
# them blocked, a payment, an admin command), cached copies from before are stale.
USERS = Tracker(User, key=lambda u: u.id)


class UserCache:
    def __init__(
        self,
        ttl: float = 10.0,
        max_size: int = 50_000,
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        # user id -> (when the row was read, USERS.version then, the row)
        self._items: OrderedDict[int, tuple[float, int, User]] = OrderedDict()

    def get(self, user_id: int) -> User | None:
        item = self._items.get(user_id)
        if item is None:
            return None
        read_at, version, user = item
        if (
            time.monotonic() - read_at > self.ttl
            or USERS.changed_since(version, user_id)
            # The cached object itself is attached to an update in flight, which may
            # expire it; an expired row would need a lazy load, impossible here.
            or inspect(user).unloaded
        ):
            del self._items[user_id]
            return None
        return user

    def put(self, user: User) -> None:
        item = self._items.pop(user.id, None)
        # The time to live counts from when the row was read, not from its last use:
        # re-storing the row a cache hit handed out must not keep it alive for ever,
        # or changes made by other processes would never be seen.
        if item is not None and item[2] is user:
            self._items[user.id] = item
        else:
            self._items[user.id] = (time.monotonic(), USERS.version, user)
        if len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def drop(self, user_id: int) -> None:
        self._items.pop(user_id, None)


class UserMiddleware(BaseMiddleware):
    def __init__(self, cache: UserCache | None = None) -> None:
        self.cache = cache or UserCache()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        tg_user: TgUser | None = data.get("event_from_user")
        session: AsyncSession | None = data.get("session")
        if tg_user is not None and session is not None and not tg_user.is_bot:
            user, created = await self._load(session, tg_user)
            self._track(data, user)
            data["user"] = user
            data["user_is_new"] = created
        return await handler(event, data)

    async def _load(self, session: AsyncSession, tg_user: TgUser) -> tuple[User, bool]:
        profile = TelegramProfile(
            id=tg_user.id,
            first_name=tg_user.first_name,
            last_name=tg_user.last_name,
            username=tg_user.username,
            language_code=tg_user.language_code,
        )
        cached = self.cache.get(tg_user.id)
        if cached is None:
            return await upsert_user(session, profile)
        if object_session(cached) is not None:
            # Another update of this user is in flight with that row (maybe changing it):
            # read a fresh one rather than share or copy it.
            return await upsert_user(session, profile)
        # Attach the committed row itself: no SELECT, no copy.
        session.add(cached)
        user = cached
        refresh_profile(user, profile, utcnow())
        return user, False

    def _track(self, data: dict[str, Any], user: User) -> None:
        cache = self.cache

        def committed() -> None:
            # Only a fully loaded row can be attached later without a query; a row that
            # something in the update expired (a rollback to a savepoint) is forgotten.
            if inspect(user).unloaded:
                cache.drop(user.id)
            else:
                cache.put(user)

        data[AFTER_COMMIT].append(committed)
        # A rollback expires the row's attributes: never hand that copy out again.
        data[AFTER_ROLLBACK].append(lambda: cache.drop(user.id))
