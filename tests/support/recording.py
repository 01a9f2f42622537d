"""A Bot session that records typed method objects instead of calling Telegram.

In the style of aiogram's own tests/mocked_bot.py: every request is kept as the typed
TelegramMethod object, answers come from a FIFO queue of prepared results or real
Telegram error classes, and when the queue is empty a plausible default is made.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import (
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SendPhoto,
    SendPoll,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    Chat,
    InlineKeyboardMarkup,
    Message,
    MessageId,
    PhotoSize,
    Poll,
    PollOption,
    User,
)

T = TypeVar("T")


class RecordingSession(BaseSession):
    def __init__(self, bot_id: int = 42, username: str = "lyceum_test_bot") -> None:
        super().__init__()
        self.requests: deque[TelegramMethod[Any]] = deque()
        self.responses: deque[Any] = deque()
        self._ids = itertools.count(1000)
        self.poll_ids: list[str] = []  # every poll sent, oldest first
        self.me = User(id=bot_id, is_bot=True, first_name="Lyceum", username=username)

    def add_result(self, result: Any) -> None:
        """Queue a result (or a TelegramAPIError instance to raise) for the next request."""
        self.responses.append(result)

    def get_request(self) -> TelegramMethod[Any]:
        return self.requests.popleft()

    def of_type(self, kind: type[T]) -> list[T]:
        return [r for r in self.requests if isinstance(r, kind)]

    def texts(self) -> list[str]:
        """Everything the bot said (sent or edited), in order."""
        out = []
        for req in self.requests:
            if isinstance(req, SendMessage | EditMessageText):
                out.append(req.text)
        return out

    def clear(self) -> None:
        self.requests.clear()

    async def close(self) -> None:
        pass

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.requests.append(method)
        if self.responses:
            result = self.responses.popleft()
            if isinstance(result, TelegramAPIError):
                raise result
            return cast(TelegramType, result)
        return cast(TelegramType, self._default(method))

    def _default(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, SendMessage | EditMessageText):
            chat_id = int(getattr(method, "chat_id", 0) or 0)
            return Message(
                message_id=next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private"),
                from_user=self.me,
                text=method.text,
                # A sent message carries only an inline keyboard; a reply keyboard is not
                # part of the Message Telegram returns.
                reply_markup=(
                    method.reply_markup
                    if isinstance(method.reply_markup, InlineKeyboardMarkup)
                    else None
                ),
            )
        if isinstance(method, EditMessageReplyMarkup):
            return True
        if isinstance(method, SendPoll):
            return self._poll_message(method)
        if isinstance(method, SendPhoto):
            # An upload gets a new file_id; a file_id is sent as itself.
            n = next(self._ids)
            file_id = method.photo if isinstance(method.photo, str) else f"PHOTO-{n}"
            return Message(
                message_id=n,
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=self.me,
                caption=method.caption,
                photo=[PhotoSize(file_id=file_id, file_unique_id=f"u{n}", width=1200, height=850)],
            )
        returning = getattr(method, "__returning__", None)
        if returning is Message:  # a photo, video, document, voice...
            return Message(
                message_id=next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(getattr(method, "chat_id", 0) or 0), type="private"),
                from_user=self.me,
                caption=getattr(method, "caption", None),
            )
        if returning is MessageId:  # copyMessage
            return MessageId(message_id=next(self._ids))
        if returning is bool:
            return True
        if returning is User:
            return self.me
        raise AssertionError(f"no queued result for {type(method).__name__}")

    def _poll_message(self, method: SendPoll) -> Message:
        n = next(self._ids)
        texts = [o if isinstance(o, str) else o.text for o in method.options]
        self.poll_ids.append(f"poll-{n}")
        poll = Poll(
            id=f"poll-{n}",
            question=method.question,
            options=[
                PollOption(persistent_id=str(i), text=t, voter_count=0) for i, t in enumerate(texts)
            ],
            total_voter_count=0,
            is_closed=False,
            is_anonymous=bool(method.is_anonymous),
            type=method.type or "regular",
            allows_multiple_answers=False,
            allows_revoting=False,
            members_only=False,
            correct_option_ids=list(method.correct_option_ids or []) or None,
            explanation=method.explanation,
        )
        return Message(
            message_id=n,
            date=datetime.now(UTC),
            chat=Chat(id=int(method.chat_id), type="private"),
            from_user=self.me,
            poll=poll,
        )

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:  # pragma: no cover - not used by the bot
        yield b""
