"""An in-memory Sender: records what would have been sent; failures can be scripted.

For tests and dry runs. `fail[chat_id]` holds exceptions to raise, one per attempt.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass

from bot.scheduler.clock import Clock
from bot.scheduler.sender import Button, Outgoing


@dataclass(frozen=True, slots=True)
class Sent:
    chat_id: int
    message: Outgoing
    message_id: int
    at: float  # the clock's monotonic reading


class MemorySender:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.edits: list[tuple[int, int, str]] = []
        self.fail: dict[int, list[Exception]] = defaultdict(list)
        self._ids = itertools.count(5000)

    async def send(self, chat_id: int, message: Outgoing) -> int:
        if self.fail.get(chat_id):
            raise self.fail[chat_id].pop(0)
        message_id = next(self._ids)
        at = self.clock.monotonic() if self.clock else 0.0
        self.sent.append(Sent(chat_id, message, message_id, at))
        return message_id

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
    ) -> None:
        self.edits.append((chat_id, message_id, text))

    def to(self, chat_id: int) -> list[Outgoing]:
        return [s.message for s in self.sent if s.chat_id == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m.text or m.caption or "" for m in self.to(chat_id)]
