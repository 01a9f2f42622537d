"""Long polling that never confirms a payment update before it is booked.

getUpdates confirms every update below its `offset`. aiogram's polling runs each update as
a task and moves the offset past it as soon as the task is started, so the next getUpdates
tells Telegram a `successful_payment` was received while its booking may still be on its
way to the database: a process killed in between loses the payment for good (money taken,
nothing booked). Webhook mode has no such gap: Telegram redelivers an update until it is
answered, and it is answered after it is handled (bot.app.run_webhook).

Here an update that books money is held: polling goes on only once its transaction has
committed. Other updates still run as concurrent tasks; those after a payment in the same
batch wait for its booking (milliseconds). A booking that fails is tried again with a
pause; one that keeps failing stops polling (the process exits) rather than being skipped:
it is still unconfirmed, so the next start fetches it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.middlewares.db import AFTER_COMMIT

log = logging.getLogger(__name__)


def books_money(update: Update) -> bool:
    """A payment received or refunded: its handler books it, and losing it loses money."""
    message = update.message
    return message is not None and (
        message.successful_payment is not None or message.refunded_payment is not None
    )


class BookingFailed(RuntimeError):
    """A payment update kept failing; polling stops so that it is not confirmed."""


class PaymentSafeDispatcher(Dispatcher):
    """aiogram's Dispatcher whose polling holds the offset at an unbooked payment update.

    It relies on two things aiogram's `_polling` does (tests/unit/test_polling.py fails if
    either changes): it takes updates from `self._listen_updates(...)` and starts each with
    `self._process_update(bot=..., update=..., **kwargs)` before asking for the next one;
    and the inner `_listen_updates` sets the offset past an update only when it is asked
    for the next one.
    """

    # Pauses between attempts at a failing payment update; after the last one, stop.
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._holds: dict[tuple[int, int], asyncio.Future[bool]] = {}

    async def _listen_updates(  # type: ignore[override]  # aiogram's is a classmethod
        self, bot: Bot, *args: Any, **kwargs: Any
    ) -> AsyncGenerator[Update, None]:
        async for update in super()._listen_updates(bot, *args, **kwargs):
            if not books_money(update):
                yield update
                continue
            key = (bot.id, update.update_id)
            for delay in (*self.retry_delays, None):
                held = self._holds[key] = asyncio.get_running_loop().create_future()
                log.info(
                    "update %s books money: it is confirmed to Telegram only after its "
                    "handler has committed",
                    update.update_id,
                )
                try:
                    # _polling starts the update's task, then asks for the next update:
                    # until this resumes, the offset stays at this update.
                    yield update
                    booked = await held
                finally:
                    self._holds.pop(key, None)
                if booked:
                    break
                if delay is None:
                    log.critical(
                        "update %s (a payment) failed %d times; polling stops with it "
                        "unconfirmed: fix the cause and restart the bot to book it",
                        update.update_id,
                        len(self.retry_delays) + 1,
                    )
                    raise BookingFailed(f"update {update.update_id} could not be booked")
                log.error(
                    "update %s (a payment) was not booked; trying it again in %.0f s",
                    update.update_id,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _process_update(
        self, bot: Bot, update: Update, call_answer: bool = True, **kwargs: Any
    ) -> bool:
        held = self._holds.get((bot.id, update.update_id))
        if held is None:
            return await super()._process_update(bot, update, call_answer, **kwargs)
        # The first step after the commit (bot.middlewares.db) releases it: the receipt's
        # send that follows need not hold polling up.
        kwargs[AFTER_COMMIT] = [_resolver(held, True)]
        try:
            return await super()._process_update(bot, update, call_answer, **kwargs)
        finally:
            # No commit (an error, now logged and rolled back): not booked.
            _resolver(held, False)()


def _resolver(future: asyncio.Future[bool], value: bool) -> Callable[[], None]:
    def resolve() -> None:
        if not future.done():
            future.set_result(value)

    return resolve
