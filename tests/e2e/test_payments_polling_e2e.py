"""Long polling confirms an update to Telegram with the next getUpdates. A payment update
confirmed before its booking commits is lost for good if the process dies in between:
the real bot (``python -m bot run``, polling) is SIGKILLed while its booking waits on a
database lock the test holds, and after a restart the payment is booked exactly once,
with its entitlement and ledger rows, and the learner gets a receipt."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.db import create_engine, create_sessionmaker
from bot.models import Payment
from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.e2e.conftest import start_bot
from tests.e2e.test_payments_book_first_e2e import ENV, RECEIPT, books
from tests.e2e.test_payments_e2e import buy

HELD = "is confirmed to Telegram only after its handler"


Waiting = Callable[[], Awaitable[bool]]


@asynccontextmanager
async def writes_blocked(database_url: str) -> AsyncIterator[Waiting]:
    """Hold the database's write lock: the bot can read, but its booking waits. Yields a
    check that someone waits on the lock (PostgreSQL shows it; SQLite's busy wait not)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", timeout=10, isolation_level=None)

        async def unseen() -> bool:
            await asyncio.sleep(0.3)  # time enough to reach the booking's INSERT
            return True

        try:
            conn.execute("BEGIN IMMEDIATE")
            yield unseen
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import asyncpg

    pg = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        tx = pg.transaction()
        await tx.start()
        # Reads (the pre-checkout's) go on; the booking's INSERT waits.
        await pg.execute("LOCK TABLE payments IN EXCLUSIVE MODE")

        async def waiting() -> bool:
            query = (
                "SELECT count(*) FROM pg_locks "
                "WHERE relation = 'payments'::regclass AND NOT granted"
            )
            return bool(await pg.fetchval(query))

        try:
            yield waiting
        finally:
            await tx.rollback()
    finally:
        await pg.close()


def payment_update_pending(server: SandboxServer) -> bool:
    """The successful_payment update is still unconfirmed: a getUpdates would return it."""
    updates: list[dict[str, Any]] = server.updates  # type: ignore[attr-defined]
    return any("successful_payment" in (u.get("message") or {}) for u in updates)


async def payments(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(Payment)) or 0)
    finally:
        await engine.dispose()


async def test_bot_killed_before_booking_commits_loses_no_payment(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
    tmp_path: Path,
) -> None:
    first = await start_bot(sandbox_server, database_url, tmp_path, webhook=False, extra_env=ENV)
    again = None
    try:
        alice = await learner_client.create_user("Alice", "en", stars=1000)
        invoice = await buy(alice, "⭐ Telegram Stars")
        log = tmp_path / "bot.log"
        async with writes_blocked(database_url) as bot_waits:
            outcome = await alice.pay(invoice)
            assert outcome.paid, outcome.data
            # The bot has the update and its booking waits on the lock. aiogram alone
            # would confirm it at once; the fixed bot says it holds the offset.
            deadline = time.monotonic() + 15
            while payment_update_pending(sandbox_server) and HELD not in log.read_text():
                assert time.monotonic() < deadline, first.log_tail()
                await asyncio.sleep(0.05)
            while not await bot_waits():
                assert time.monotonic() < deadline, first.log_tail()
                await asyncio.sleep(0.05)
            assert first.proc is not None
            first.proc.kill()  # SIGKILL: the booking never commits
            await first.proc.wait()
        assert payment_update_pending(sandbox_server), "confirmed to Telegram before booked"
        assert await books(database_url) == (0, 0)

        again = await start_bot(
            sandbox_server,
            database_url,
            tmp_path,
            webhook=False,
            extra_env=ENV,
            log_name="bot-after-kill.log",
        )
        receipt = await alice.wait_for_message(contains=RECEIPT, timeout=30)
        assert "Python for Absolute Beginners" in receipt.text
        assert await books(database_url) == (1, 1)
        assert await payments(database_url) == 1
        report = await again.run_command("reconcile-stars")
        assert "OK: no gaps" in report, report
    finally:
        await first.stop()
        if again is not None:
            await again.stop()
