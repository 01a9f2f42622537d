"""The Settings the tests run the bot with: no .env file, a test token, admin 7, no
throttling; a test adds what it needs on top (payments, scheduler rates)."""

from __future__ import annotations

from typing import Any

from bot.config import Settings


def bot_settings(database_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "bot_token": "42:TEST-TOKEN",
        "database_url": database_url,
        "admin_ids": "7",
        "throttle_rate": 0,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
