"""Models and migrations agree, and every revision goes up, down and up again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.db import create_engine
from bot.migrate import alembic_config, downgrade, render_item, upgrade
from bot.models import Base
from tests.conftest import PG_URL, create_pg_database, is_postgres


@pytest.fixture
async def empty_url(tmp_path: Path) -> str:
    if is_postgres():
        return await create_pg_database(PG_URL)
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}"


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)

    def compare(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "render_item": render_item,
            },
        )
        return list(compare_metadata(ctx, Base.metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1


async def test_models_and_migrations_agree(empty_url: str) -> None:
    await upgrade(empty_url)
    assert await _diff(empty_url) == []


async def test_stairway(empty_url: str) -> None:
    revisions = _revisions()
    assert revisions
    for i, revision in enumerate(revisions):
        await upgrade(empty_url, revision)
        await downgrade(empty_url, revisions[i - 1] if i > 0 else "base")
        await upgrade(empty_url, revision)
