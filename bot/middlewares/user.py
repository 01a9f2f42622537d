"""Registers the sender on first contact and hands the User row to handlers.

Reading the user row on every update costs a round trip that most updates (a page turn,
a card) do not need, so the last committed row of recent users is kept in memory and
handed to the update without a query (joined to its session only if the update uses the
session). The cache is short-lived on purpose:
another process or the scheduler may change a user (language, blocked flag) and this
process sees it at most `ttl` seconds later; changes committed by any session of this
process (the scheduler marking a learner blocked, say) drop the cached copy at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiogram.types import User as TgUser
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from bot.middlewares.db import AFTER_COMMIT, attach_if_changed, attach_on_use
from bot.models import User, utcnow
from bot.scheduler.clock import Clock
from bot.services.changes import Tracker
from bot.services.users import TelegramProfile, refresh_profile, upsert_user

# When any session in this process commits a change to a user (the scheduler marking
# them blocked, a payment, an admin command), cached copies from before are stale.
USERS = Tracker(User, key=lambda u: u.id)


@dataclass(slots=True)
class _Entry:
    read_at: float  # when the row was read from the database (monotonic)
    version: int  # USERS.version then
    user: User


class UserCache:
    def __init__(
        self,
        ttl: float = 10.0,
        max_size: int = 50_000,
    ) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self._items: OrderedDict[int, _Entry] = OrderedDict()

    def get(self, user_id: int) -> User | None:
        """The cached row if it may still be used, without taking it."""
        entry = self._valid(user_id)
        return entry.user if entry is not None else None

    def take(self, user_id: int) -> _Entry | None:
        """Hand the row to one update: until `keep` puts it back, a concurrent update of
        the same user reads its own row instead of sharing (and changing) this one."""
        entry = self._valid(user_id)
        if entry is not None:
            del self._items[user_id]
        return entry

    def keep(self, entry: _Entry) -> None:
        self._items.pop(entry.user.id, None)
        self._items[entry.user.id] = entry
        if len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def put(self, user: User) -> None:
        """A row just read (or written) and committed."""
        self.keep(_Entry(time.monotonic(), USERS.version, user))

    def _valid(self, user_id: int) -> _Entry | None:
        entry = self._items.get(user_id)
        if entry is None:
            return None
        if (
            # The time to live counts from the read, not from the last use: a busy
            # user's row must still be read again, or other processes' changes
            # (language, blocked flag) would never show.
            time.monotonic() - entry.read_at > self.ttl
            or USERS.changed_since(entry.version, user_id)
            # Something expired the row (a rollback while it was attached); an expired
            # row would need a lazy load, impossible here.
            or inspect(entry.user).unloaded
        ):
            del self._items[user_id]
            return None
        return entry


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
        if tg_user is None or session is None or tg_user.is_bot:
            return await handler(event, data)
        clock: Clock | None = data.get("clock")
        now = clock.now() if clock is not None else utcnow()
        user, created, entry = await self._load(session, tg_user, now)
        data["user"] = user
        data["user_is_new"] = created
        cache = self.cache

        def committed() -> None:
            # Only a fully loaded row can be handed out later without a query; a row
            # that something expired (a rollback to a savepoint) is forgotten.
            if inspect(user).unloaded:
                return
            if entry is None:
                cache.put(user)  # read (or created) by this update
            else:
                cache.keep(entry)  # as it was, with the time and version of its read

        # After a rollback the row is simply not put back: its attributes may have
        # been expired, or changed in memory and never written.
        data[AFTER_COMMIT].append(committed)
        result = await handler(event, data)
        # A cached row that the update changed without ever using the session (a new
        # username, last_seen_at) still has to be written.
        attach_if_changed(session, user)
        return result

    async def _load(
        self, session: AsyncSession, tg_user: TgUser, now: datetime
    ) -> tuple[User, bool, _Entry | None]:
        """The user, whether they are new, and the cache entry the row came from."""
        profile = TelegramProfile(
            id=tg_user.id,
            first_name=tg_user.first_name,
            last_name=tg_user.last_name,
            username=tg_user.username,
            language_code=tg_user.language_code,
        )
        entry = self.cache.take(tg_user.id)
        if entry is None:
            user, created = await upsert_user(session, profile, now)
            return user, created, None
        # The committed row itself, joined to the session only if the update uses the
        # session (see attach_on_use): a page turn never pays for adding it.
        attach_on_use(session, entry.user)
        refresh_profile(entry.user, profile, now)
        return entry.user, False, entry
