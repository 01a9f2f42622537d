"""Models and migrations agree, and every revision goes up, down and up again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
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


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


async def test_0002_moves_chat_plans_into_plan_chats_and_back(empty_url: str) -> None:
    """groups.plan_id becomes plan_chats rows; group_members survive SQLite's table copy."""
    await upgrade(empty_url, "0001")
    engine = create_engine(empty_url)
    now = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO users (id, first_name, interests, onboarded, quiet_start, "
                    "quiet_end, is_blocked, referral_code, last_seen_at, created_at) "
                    "VALUES (1, 'Ana', '[]', false, 0, 0, false, 'r1', :t, :t)"
                ),
                {"t": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO creators (id, user_id, display_name, role, created_at) "
                    "VALUES (1, 1, 'Ana', 'creator', :t)"
                ),
                {"t": now},
            )
            for plan_id in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO plans (id, creator_id, title, description, price_minor, "
                        "currency, stars_price, accepts_stars, accepts_card, period_days, "
                        "trial_days, stars_subscription, published, course_ids, created_at) "
                        "VALUES (:id, 1, 'P', '', 0, 'USD', 100, true, true, 30, 0, false, "
                        "true, '[]', :t)"
                    ),
                    {"id": plan_id, "t": now},
                )
            for group_id, chat_id, plan_id in ((1, -101, 2), (2, -102, None)):
                await conn.execute(
                    text(
                        "INSERT INTO groups (id, chat_id, kind, title, creator_id, plan_id, "
                        "whitelist, created_at) "
                        "VALUES (:id, :chat, 'supergroup', 'G', 1, :plan, '[]', :t)"
                    ),
                    {"id": group_id, "chat": chat_id, "plan": plan_id, "t": now},
                )
            await conn.execute(
                text(
                    "INSERT INTO group_members (id, group_id, user_id, status, updated_at) "
                    "VALUES (1, 1, 1001, 'member', :t)"
                ),
                {"t": now},
            )
    finally:
        await engine.dispose()

    await upgrade(empty_url, "0002")
    assert await _rows(empty_url, "SELECT plan_id, group_id FROM plan_chats") == [(2, 1)]
    assert await _rows(empty_url, "SELECT group_id, user_id FROM group_members") == [(1, 1001)]
    assert len(await _rows(empty_url, "SELECT id FROM groups")) == 2

    # A second plan sells chat 1 too; going back keeps the lowest plan id.
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO plan_chats (plan_id, group_id, created_at) VALUES (1, 1, :t)"),
                {"t": now},
            )
    finally:
        await engine.dispose()
    await downgrade(empty_url, "0001")
    assert await _rows(empty_url, "SELECT id, plan_id FROM groups ORDER BY id") == [
        (1, 1),
        (2, None),
    ]
    assert await _rows(empty_url, "SELECT group_id, user_id FROM group_members") == [(1, 1001)]
