"""Alembic environment, async. Used by the alembic CLI and by bot.migrate (in-process)."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from bot.config import get_settings
from bot.db import create_engine
from bot.migrate import render_item
from bot.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _configure(connection: Connection | None = None, url: str | None = None) -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        "render_as_batch": True,  # SQLite cannot ALTER most things; batch mode copies tables.
        "compare_type": True,
        "compare_server_default": True,
        "render_item": render_item,
        **({"connection": connection} if connection is not None else {"url": url}),
    }


def _run_sync(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode recreates a table to alter it; with foreign keys on, dropping the old
        # copy would cascade-delete the rows that reference it (group_members, ...).
        # SQLite ignores this pragma inside a transaction: it must come first.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    context.configure(**_configure(connection))
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migration left dangling foreign keys: {broken[:5]}")


def _url() -> str:
    return config.attributes.get("url") or get_settings().database_url


async def _run_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(**_configure(url=_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    # bot.migrate hands over a live connection so migrations can run inside a running loop.
    _run_sync(connection)
else:
    asyncio.run(_run_online())
