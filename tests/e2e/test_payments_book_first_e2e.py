"""Book first, then speak, with the real bot process (``python -m bot run``, polling and
webhook) against the sandbox: a bot SIGKILLed between booking and receipt, and a storm of
429s and 500s on sendMessage while five learners pay. Every paid order ends with its
entitlement and ledger rows, every learner gets a receipt, and reconcile-stars agrees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exists, func, select

from bot.db import create_engine, create_sessionmaker
from bot.models import Entitlement, LedgerEntry, LedgerKind, Order, OrderStatus, Payment
from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxUser
from sandbox.demo import BotProcess
from sandbox.server import ApiError
from tests.e2e.conftest import start_bot
from tests.e2e.test_payments_e2e import buy

RECEIPT = "Payment received"
ENV = {
    # Quick retries for the test: the worker polls often, a dead process's claim ends soon.
    "SCHEDULER_POLL_INTERVAL": "0.2",
    "SCHEDULER_LEASE": "5",
}

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


def wrap_send_message(server: SandboxServer, wrapper: Callable[[Handler], Handler]) -> None:
    """Fault injection in the sandbox's own sendMessage (the bot still talks HTTP to it)."""
    original: Handler = server.api_sendMessage  # type: ignore[attr-defined]
    server.api_sendMessage = wrapper(original)  # type: ignore[attr-defined]


async def books(database_url: str) -> tuple[int, int]:
    """(paid orders, paid orders whose payment has its ledger sale and entitlement)."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            paid = await session.scalar(
                select(func.count()).select_from(Order).where(Order.status == OrderStatus.PAID)
            )
            sale = exists().where(
                LedgerEntry.payment_id == Payment.id, LedgerEntry.kind == LedgerKind.SALE
            )
            access = exists().where(
                Entitlement.user_id == Order.user_id,
                Entitlement.product_kind == Order.product_kind,
                Entitlement.product_id == Order.product_id,
                Entitlement.source_order_id == Order.id,
            )
            whole = await session.scalar(
                select(func.count())
                .select_from(Order)
                .join(Payment, Payment.order_id == Order.id)
                .where(Order.status == OrderStatus.PAID, sale, access)
            )
            return int(paid or 0), int(whole or 0)
    finally:
        await engine.dispose()


@pytest.fixture(params=["polling", "webhook"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def bots(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path, mode: str
) -> AsyncIterator[list[BotProcess]]:
    """The running bot processes, first to last (a test may start another)."""
    started: list[BotProcess] = []
    started.append(
        await start_bot(
            sandbox_server, database_url, tmp_path, webhook=mode == "webhook", extra_env=ENV
        )
    )
    yield started
    for bot in started:
        await bot.stop()


async def test_bot_killed_between_booking_and_receipt_loses_nothing(
    bots: list[BotProcess],
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
    tmp_path: Path,
    mode: str,
) -> None:
    alice = await learner_client.create_user("Alice", "en", stars=1000)
    invoice = await buy(alice, "⭐ Telegram Stars")

    # The receipt reaches the sandbox and hangs there: the bot is mid-send when killed.
    in_flight = asyncio.Event()
    never = asyncio.Event()

    def hang_first_receipt(send: Handler) -> Handler:
        async def wrapped(params: dict[str, Any]) -> Any:
            if RECEIPT in str(params.get("text", "")) and not in_flight.is_set():
                in_flight.set()
                await never.wait()
            return await send(params)

        return wrapped

    wrap_send_message(sandbox_server, hang_first_receipt)
    outcome = await alice.pay(invoice)
    assert outcome.paid, outcome.data
    await asyncio.wait_for(in_flight.wait(), 30)
    first = bots[0]
    assert first.proc is not None
    first.proc.kill()  # SIGKILL: no cleanup, no commit after this point
    await first.proc.wait()

    again = await start_bot(
        sandbox_server,
        database_url,
        tmp_path,
        webhook=mode == "webhook",
        extra_env=ENV,
        log_name="bot-after-kill.log",
    )
    bots.append(again)
    receipt = await alice.wait_for_message(contains=RECEIPT, timeout=40)
    assert "Python for Absolute Beginners" in receipt.text
    assert await books(database_url) == (1, 1)
    report = await again.run_command("reconcile-stars")
    assert "OK: no gaps" in report, report
    never.set()


async def test_a_storm_of_429_and_500_during_five_purchases(
    bots: list[BotProcess],
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
) -> None:
    learners = [await learner_client.create_user(f"Learner{n}", "en", stars=1000) for n in range(5)]
    invoices = [await buy(user, "⭐ Telegram Stars") for user in learners]

    # From now on each chat's first sendMessage answers 429, its second 500.
    failures: dict[int, int] = {}

    def storm(send: Handler) -> Handler:
        async def wrapped(params: dict[str, Any]) -> Any:
            chat = int(params.get("chat_id") or 0)
            failures[chat] = failures.get(chat, 0) + 1
            if failures[chat] == 1:
                raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
            if failures[chat] == 2:
                raise ApiError(500, "Internal Server Error")
            return await send(params)

        return wrapped

    wrap_send_message(sandbox_server, storm)
    outcomes = await asyncio.gather(
        *(user.pay(invoice) for user, invoice in zip(learners, invoices, strict=True))
    )
    assert all(o.paid for o in outcomes), [o.data for o in outcomes]

    async def receipt(user: SandboxUser) -> None:
        await user.wait_for_message(contains=RECEIPT, timeout=60)

    await asyncio.gather(*(receipt(user) for user in learners))
    assert await books(database_url) == (5, 5)
    report = await bots[-1].run_command("reconcile-stars")
    assert "Telegram Stars payments: 5; recorded here: 5" in report, report
    assert "OK: no gaps" in report, report
