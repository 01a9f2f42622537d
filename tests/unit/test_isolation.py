"""KeyedLocks: one update at a time per key, and no lock kept for a key nobody uses."""

from __future__ import annotations

import asyncio

from aiogram.fsm.storage.base import StorageKey

from bot.middlewares.isolation import KeyedLocks


async def test_updates_of_one_key_run_one_at_a_time_and_keys_are_dropped() -> None:
    locks = KeyedLocks()
    ann, bob = StorageKey(42, 1, 1), StorageKey(42, 2, 2)
    trace: list[str] = []

    async def step(key: StorageKey, name: str) -> None:
        async with locks.lock(key):
            trace.append(f"{name}+")
            await asyncio.sleep(0.01)
            trace.append(f"{name}-")

    await asyncio.gather(step(ann, "a1"), step(ann, "a2"), step(bob, "b"))
    # Ann's two never overlap; Bob's runs beside them.
    assert trace.index("a1-") < trace.index("a2+")
    assert trace.index("b+") < trace.index("a1-")
    assert locks.keys_in_use == 0
    assert locks  # the Dispatcher keeps an isolation only if it is true


async def test_a_cancelled_waiter_leaves_no_lock_behind() -> None:
    locks = KeyedLocks()
    key = StorageKey(42, 1, 1)
    async with locks.lock(key):
        waiter = asyncio.create_task(_enter(locks, key))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert locks.keys_in_use == 1
    assert locks.keys_in_use == 0


async def _enter(locks: KeyedLocks, key: StorageKey) -> None:
    async with locks.lock(key):
        pass
