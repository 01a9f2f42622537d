"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via TEST_DATABASE_URL),
the real App wired with a recording Bot session, and a harness to feed updates."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.db import create_engine, create_sessionmaker
from bot.migrate import upgrade
from bot.models import Base
from bot.scheduler.clock import ManualClock
from tests.support.payments import PayRecordingSession, pay_settings
from tests.support.recording import RecordingSession
from tests.support.servers import free_port, wait_for_port
from tests.support.settings import bot_settings
from tests.support.updates import Harness, settle

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def is_postgres() -> bool:
    return PG_URL.startswith("postgresql")


async def create_pg_database(base_url: str) -> str:
    """A fresh, empty PostgreSQL database next to TEST_DATABASE_URL's; returns its URL."""
    import asyncpg

    url = make_url(base_url)
    name = f"lyceum_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def _pg_migrated() -> str:
    import asyncio

    async def make() -> str:
        url = await create_pg_database(PG_URL)
        await upgrade(url)
        return url

    return asyncio.run(make())


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database for one test."""
    if is_postgres():
        yield request.getfixturevalue("_pg_migrated")
    else:
        template: Path = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "test.sqlite3"
        shutil.copy(template, target)
        yield f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    if is_postgres():
        # Tests share one migrated PostgreSQL database; start each from empty tables.
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine)() as session:
        yield session


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "payments: the bot takes payments (pay_settings) and Telegram answers its invoice "
        "calls (PayRecordingSession); mark a module with pytestmark = pytest.mark.payments",
    )


def takes_payments(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("payments") is not None


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    if takes_payments(request):
        return pay_settings(database_url)
    return bot_settings(database_url)


@pytest.fixture
def bot_session(request: pytest.FixtureRequest) -> RecordingSession:
    """What answers the bot's Telegram calls: recorded, and invoices too for payments."""
    return PayRecordingSession() if takes_payments(request) else RecordingSession()


@pytest.fixture
def clock() -> ManualClock | None:
    """None: the app keeps the real time. A module that moves the bot's clock overrides
    this with its own ManualClock, and `app` (so `harness` and `h`) runs on it."""
    return None


@pytest.fixture
async def app(
    settings: Settings,
    engine: AsyncEngine,
    clock: ManualClock | None,
    bot_session: RecordingSession,
) -> AsyncIterator[App]:
    app = build_app(settings, session=bot_session, engine=engine, clock=clock)
    yield app
    await settle(app)


@pytest.fixture
def harness(app: App) -> Harness:
    return Harness(app)


@pytest.fixture
def h(harness: Harness) -> Harness:
    """The short name the chat-flow tests use."""
    return harness


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL, or a private redis-server on a free loopback port (CI installs it)."""
    if os.environ.get("TEST_REDIS_URL"):
        yield os.environ["TEST_REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        # CI must run the Redis-backed tests (shared conversations, shared limits): there a
        # missing redis-server is a failure, not a reason to skip them.
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail("redis-server is not installed, and CI must run the Redis tests")
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, server)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
