"""One update at a time per (bot, chat, user): the events isolation of aiogram's FSM.

aiogram's dispatcher handles updates concurrently. Two quick messages in one conversation
step would both read the step before either finished it: two lessons from one /addlesson,
two broadcasts, or a KeyError once the first cleared the step's data. aiogram's
FSMContextMiddleware takes the isolation's lock for the update's storage key and reads
the state only inside it, so the second message waits and then sees the step done.

With REDIS_URL the lock is aiogram's RedisEventIsolation (the next message may reach
another worker); in one process it is KeyedLocks below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # updates holding or waiting for the lock


class KeyedLocks(BaseEventIsolation):
    """aiogram's SimpleEventIsolation keeps a lock for every key it has ever seen (one per
    user, for ever); this one drops a key's lock when no update holds or awaits it."""

    def __init__(self) -> None:
        self._entries: dict[StorageKey, _Entry] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]

    @property
    def keys_in_use(self) -> int:
        # Not __len__: the Dispatcher tests `events_isolation or Disabled…`, and an empty
        # sized object is false.
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()
