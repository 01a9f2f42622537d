"""The real bot (``python -m bot run``) as a child process against the sandbox, on SQLite
with the demo catalog — polling or webhook — and the learner's side to drive it."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxConfig, SandboxServer
from sandbox.client import SandboxClient
from sandbox.demo import BotProcess
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated and seeded once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("e2e-template") / "demo.sqlite3"
    prepare_database(f"sqlite+aiosqlite:///{path}")
    return path


def prepare_database(url: str) -> None:
    """``python -m bot migrate`` and ``python -m bot seed --demo``, as an operator would."""
    import subprocess

    env = dict(os.environ, DATABASE_URL=url, BOT_TOKEN="123456:TEST")
    for args in (["migrate"], ["seed", "--demo"]):
        subprocess.run(
            [sys.executable, "-m", "bot", *args],
            env=env, cwd=ROOT, check=True, capture_output=True, timeout=120,
        )  # fmt: skip


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The demo catalog in a fresh database: PostgreSQL when TEST_DATABASE_URL says so,
    else a copy of a SQLite file seeded once per session."""
    from tests.conftest import PG_URL, create_pg_database, is_postgres

    if is_postgres():
        url = asyncio.run(create_pg_database(PG_URL))
        prepare_database(url)
        return url
    template: Path = request.getfixturevalue("demo_db_template")
    target = tmp_path / "db.sqlite"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
async def sandbox_server() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(token="123456:TEST", webhook_retry_delay=0.1))
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()
    # Whatever the test did, every request the bot made and everything the sandbox emitted
    # conformed to the Bot API spec.
    assert server.violations == [], server.violations[:5]


@pytest.fixture
async def learner_client(sandbox_server: SandboxServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(sandbox_server.base_url) as client:
        yield client


async def start_bot(
    server: SandboxServer,
    database_url: str,
    tmp_path: Path,
    *,
    webhook: bool,
    extra_env: dict[str, str] | None = None,
    public_url: str | None = None,
    log_name: str = "bot.log",
) -> BotProcess:
    """`python -m bot run` against the sandbox. A webhook bot listens on a free port; it
    tells Telegram `public_url` when something (a load balancer) stands in front of it."""
    env = {"THROTTLE_RATE": "0", "ADMIN_IDS": "7000001", **(extra_env or {})}
    if webhook:
        port = free_port()
        env.update(
            WEBHOOK_URL=public_url or f"http://127.0.0.1:{port}/telegram/webhook",
            WEBHOOK_SECRET="e2e-secret_123",
            WEBHOOK_HOST="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )
    log_path = tmp_path / log_name
    bot = BotProcess(server, database_url, extra_env=env, cwd=ROOT, log_path=log_path)
    try:
        await bot.start(webhook=webhook, ready_timeout=60)
    except BaseException:
        await bot.stop()
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    return bot


@pytest.fixture(params=["polling", "webhook"])
async def running_bot(
    request: pytest.FixtureRequest,
    sandbox_server: SandboxServer,
    database_url: str,
    tmp_path: Path,
) -> AsyncIterator[BotProcess]:
    bot = await start_bot(
        sandbox_server, database_url, tmp_path, webhook=request.param == "webhook"
    )
    yield bot
    await bot.stop()
    await asyncio.sleep(0)
