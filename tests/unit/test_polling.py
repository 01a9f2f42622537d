"""Polling holds the getUpdates offset at a payment update until its booking commits.

These run aiogram's own `start_polling` against a session that answers getUpdates from a
script and records each call's offset. They fail if aiogram's polling stops going through
the internals bot.polling relies on (`_listen_updates`, `_process_update`, the offset
moved only when the next update is asked for)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.methods import GetMe, GetUpdates, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, SuccessfulPayment, Update, User
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bot.middlewares.db import DbSessionMiddleware
from bot.polling import BookingFailed, PaymentSafeDispatcher, books_money
from tests.support.recording import RecordingSession

ANN = User(id=1001, is_bot=False, first_name="Ann")


def text_update(update_id: int, text: str = "hello") -> Update:
    return Update(update_id=update_id, message=_message(update_id, text=text))


def payment_update(update_id: int) -> Update:
    paid = SuccessfulPayment(
        currency="XTR",
        total_amount=50,
        invoice_payload="order-1",
        telegram_payment_charge_id=f"charge-{update_id}",
        provider_payment_charge_id="",
    )
    return Update(update_id=update_id, message=_message(update_id, successful_payment=paid))


def _message(message_id: int, **fields: Any) -> Message:
    chat = Chat(id=ANN.id, type="private", first_name=ANN.first_name)
    return Message(
        message_id=message_id, date=datetime.now(UTC), chat=chat, from_user=ANN, **fields
    )


class PollingSession(RecordingSession):
    """getUpdates answered batch by batch from a script, then a long poll that never ends."""

    def __init__(self, *batches: list[Update]) -> None:
        super().__init__()
        self.batches = deque(batches)
        self.offsets: list[int | None] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        if isinstance(method, GetMe):
            return cast(TelegramType, self.me)
        if isinstance(method, GetUpdates):
            self.offsets.append(method.offset)
            if self.batches:
                return cast(TelegramType, self.batches.popleft())
            await asyncio.Event().wait()
        return await super().make_request(bot, method, timeout)

    def confirmed(self) -> int:
        """Every update below this id is confirmed to Telegram."""
        return max((o for o in self.offsets if o is not None), default=0)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the condition never held")


async def settle() -> None:
    """Long enough for polling to confirm whatever it would confirm."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


def dispatcher(retry_delays: tuple[float, ...] = (0.01, 0.01)) -> PaymentSafeDispatcher:
    dp = PaymentSafeDispatcher()
    dp.retry_delays = retry_delays
    # The real commit owner: its first after-commit step releases the payment update.
    engine = create_async_engine("sqlite+aiosqlite://")  # never connects: nothing queried
    dp.update.outer_middleware(DbSessionMiddleware(async_sessionmaker(engine)))
    return dp


async def is_payment(message: Message) -> bool:
    return message.successful_payment is not None


async def is_text(message: Message) -> bool:
    return message.text is not None


def polling(dp: PaymentSafeDispatcher, session: PollingSession) -> asyncio.Task[None]:
    bot = Bot("42:TEST", session=session)
    return asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_money_updates_are_payments_received_or_refunded() -> None:
    assert books_money(payment_update(1))
    assert not books_money(text_update(2))


async def test_a_payment_update_is_confirmed_only_after_its_booking_commits() -> None:
    session = PollingSession([text_update(1), payment_update(2), text_update(3)])
    dp = dispatcher()
    text_running, payment_running = asyncio.Event(), asyncio.Event()
    release_text, commit, receipt_sent = asyncio.Event(), asyncio.Event(), asyncio.Event()

    @dp.message(is_text)
    async def on_text(message: Message) -> None:
        if message.message_id == 1:
            text_running.set()
            await release_text.wait()

    @dp.message(is_payment)
    async def on_payment(message: Message, after_commit: list[Callable[[], object]]) -> None:
        payment_running.set()
        await commit.wait()
        # The receipt's send, after the commit: it need not hold polling up.
        after_commit.append(receipt_sent.wait)

    task = polling(dp, session)
    try:
        await until(payment_running.is_set)
        # Other updates are still tasks: the first text is running beside the payment.
        assert text_running.is_set()
        await settle()
        assert session.confirmed() <= 2, "a payment update was confirmed before its commit"

        commit.set()
        await until(lambda: session.confirmed() == 4)
        assert not receipt_sent.is_set()
        assert not release_text.is_set()
    finally:
        release_text.set()
        receipt_sent.set()
        await stop(task)


async def test_a_failed_booking_is_tried_again_before_it_is_confirmed() -> None:
    session = PollingSession([payment_update(7)])
    dp = dispatcher()
    seen: list[int] = []

    @dp.message(is_payment)
    async def on_payment(message: Message) -> None:
        seen.append(session.confirmed())
        if len(seen) == 1:
            raise RuntimeError("database went away")

    task = polling(dp, session)
    try:
        await until(lambda: session.confirmed() == 8)
        assert seen == [0, 0]  # tried twice, confirmed after the second
    finally:
        await stop(task)


async def test_a_payment_that_keeps_failing_stops_polling_unconfirmed() -> None:
    session = PollingSession([payment_update(7), text_update(8)])
    dp = dispatcher(retry_delays=(0.01, 0.01))
    attempts = 0

    @dp.message(is_payment)
    async def on_payment(message: Message) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("poison")

    task = polling(dp, session)
    with pytest.raises(BookingFailed):
        await asyncio.wait_for(task, 5)
    assert attempts == 3
    assert session.confirmed() == 0
