"""REDIS_URL: conversation steps live in Redis, where every worker sees them (a real
redis-server); without it, in the process's memory. The whole flow across two worker
processes is tests/e2e/test_scale_out_e2e.py."""

from __future__ import annotations

from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from pydantic import SecretStr

from bot.app import create_fsm_storage
from bot.config import Settings

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)


async def test_without_redis_url_steps_stay_in_memory(settings: Settings) -> None:
    assert isinstance(create_fsm_storage(settings), MemoryStorage)
    blank = settings.model_copy(update={"redis_url": SecretStr("")})
    assert isinstance(create_fsm_storage(blank), MemoryStorage)


async def test_a_step_written_by_one_worker_is_read_by_another(
    settings: Settings, redis_url: str
) -> None:
    shared = settings.model_copy(update={"redis_url": SecretStr(redis_url), "fsm_ttl_days": 2})
    one, other = create_fsm_storage(shared), create_fsm_storage(shared)
    assert isinstance(one, RedisStorage) and isinstance(other, RedisStorage)
    try:
        await one.set_state(KEY, "NewCourse:description")
        await one.set_data(KEY, {"title": "SQL in 10 days", "tags": ["sql", "data"]})
        assert await other.get_state(KEY) == "NewCourse:description"
        assert await other.get_data(KEY) == {"title": "SQL in 10 days", "tags": ["sql", "data"]}
        # Keys name the bot (one Redis may serve several) and are forgotten after the TTL.
        keys = [k.decode() for k in await one.redis.keys("lyceum:42:*")]
        ttls = [await one.redis.ttl(k) for k in keys]
        assert keys and all(86400 < ttl <= 2 * 86400 for ttl in ttls)
        await other.set_state(KEY, None)
        assert await one.get_state(KEY) is None
    finally:
        await one.close()
        await other.close()
