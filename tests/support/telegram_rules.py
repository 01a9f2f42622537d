"""Telegram's own rules applied to what the bot sends, with the sandbox's validator.

The recording session answers every call with a plausible result; Telegram does not. This
session checks each call first, the way the sandbox server does (entities parsed from the
parse mode, lengths in UTF-16 code units after parsing, callback queries answered once,
callback_data of at most 64 bytes), records what broke which rule and raises the
`TelegramBadRequest` Telegram would raise, so the bot meets the error it would meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardMarkup

from sandbox.formatting import EntityParseError, format_text, utf16_len
from tests.support.recording import RecordingSession

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_ANSWER_LIMIT = 200
CALLBACK_DATA_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Violation:
    method: str
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.method}: {self.rule} — {self.text[:120]!r}"


def _resolved(bot: Bot, value: Any) -> Any:
    return bot.default[value.name] if isinstance(value, Default) else value


def _formatted(
    method: TelegramMethod[Any], bot: Bot, key: str, limit: int
) -> tuple[str, str] | None:
    """The broken rule of one text field (text or caption), or None."""
    raw = getattr(method, key, None)
    if raw is None:
        return None
    parse_mode = _resolved(bot, getattr(method, "parse_mode", None))
    entities_key = "entities" if key == "text" else "caption_entities"
    entities = getattr(method, entities_key, None)
    plain_entities = [e.model_dump(exclude_none=True) for e in entities] if entities else None
    try:
        text, _entities = format_text(raw, parse_mode, plain_entities)
    except EntityParseError as exc:
        return str(exc), raw
    if key == "text" and not text.strip():
        return "message text is empty", raw
    if utf16_len(text) > limit:
        what = "message is too long" if key == "text" else "message caption is too long"
        return f"{what} ({utf16_len(text)} > {limit} UTF-16 code units)", raw
    return None


class ValidatingSession(RecordingSession):
    """A RecordingSession that refuses what Telegram refuses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.violations: list[Violation] = []
        self._answered: set[str] = set()

    def broken_rule(self, bot: Bot, method: TelegramMethod[Any]) -> tuple[str, str] | None:
        for key, limit in (("text", TEXT_LIMIT), ("caption", CAPTION_LIMIT)):
            broken = _formatted(method, bot, key, limit)
            if broken is not None:
                return broken
        if isinstance(method, AnswerCallbackQuery):
            if method.callback_query_id in self._answered:
                return "query is too old and response timeout expired or query ID is invalid", ""
            if method.text and len(method.text) > CALLBACK_ANSWER_LIMIT:
                return "MESSAGE_TOO_LONG", method.text
        markup = getattr(method, "reply_markup", None)
        if isinstance(markup, InlineKeyboardMarkup):
            for row in markup.inline_keyboard:
                for button in row:
                    data = button.callback_data
                    if data is not None and len(data.encode()) > CALLBACK_DATA_LIMIT:
                        return "BUTTON_DATA_INVALID", data
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        broken = self.broken_rule(bot, method)
        if broken is not None:
            rule, text = broken
            self.violations.append(Violation(type(method).__name__, rule, text))
            self.requests.append(method)
            raise TelegramBadRequest(method=method, message=f"Bad Request: {rule}")
        if isinstance(method, AnswerCallbackQuery):
            self._answered.add(method.callback_query_id)
        return await super().make_request(bot, method, timeout)
