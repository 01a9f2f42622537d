"""Builders of incoming updates, and a harness that feeds them to the real Dispatcher."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import (
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    Sticker,
    Update,
    User,
)

from bot.app import App
from bot.services.recommendations import recommendations
from tests.support.recording import RecordingSession

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def tg_user(user_id: int = 1001, first_name: str = "Ann", language_code: str | None = "en") -> User:
    return User(id=user_id, is_bot=False, first_name=first_name, language_code=language_code)


def message_update(text: str | None, user: User, **extra: Any) -> Update:
    entities = None
    if text and text.startswith("/"):
        entities = [MessageEntity(type="bot_command", offset=0, length=len(text.split()[0]))]
    msg = Message(
        message_id=next(_message_ids),
        date=datetime.now(UTC),
        chat=Chat(id=user.id, type="private", first_name=user.first_name),
        from_user=user,
        text=text,
        entities=entities,
        **extra,
    )
    return Update(update_id=next(_update_ids), message=msg)


def sticker_update(user: User) -> Update:
    sticker = Sticker(
        file_id="CAAC",
        file_unique_id="u1",
        type="regular",
        width=512,
        height=512,
        is_animated=False,
        is_video=False,
    )
    return message_update(None, user, sticker=sticker)


def callback_update(
    data: str,
    user: User,
    message_id: int = 1,
    text: str = "…",
    reply_markup: InlineKeyboardMarkup | None = None,
) -> Update:
    msg = Message(
        message_id=message_id,
        date=datetime.now(UTC),
        chat=Chat(id=user.id, type="private", first_name=user.first_name),
        from_user=User(id=42, is_bot=True, first_name="Lyceum"),
        text=text,
        reply_markup=reply_markup,
    )
    query = CallbackQuery(
        id=str(next(_update_ids)), from_user=user, chat_instance="ci", message=msg, data=data
    )
    return Update(update_id=next(_update_ids), callback_query=query)


class Harness:
    """Drives the real Dispatcher as Telegram would and reads back what the bot did."""

    def __init__(self, app: App) -> None:
        self.app = app
        session = app.bot.session
        assert isinstance(session, RecordingSession)
        self.session: RecordingSession = session

    async def feed(self, update: Update) -> None:
        await self.app.dp.feed_update(self.app.bot, update)

    async def send(self, text: str | None, user: User) -> None:
        await self.feed(message_update(text, user))

    async def press(self, data: str, user: User) -> None:
        await self.feed(callback_update(data, user))

    def last_markup(self) -> InlineKeyboardMarkup | None:
        for req in reversed(self.session.requests):
            if isinstance(req, SendMessage | EditMessageText):
                markup = req.reply_markup
                return markup if isinstance(markup, InlineKeyboardMarkup) else None
        return None

    def last_text(self) -> str:
        texts = self.session.texts()
        assert texts, "the bot said nothing"
        return texts[-1]

    def button(self, label_part: str) -> str:
        """callback_data of the last keyboard's button whose label contains label_part."""
        markup = self.last_markup()
        assert markup is not None, "the last message has no inline keyboard"
        for row in markup.inline_keyboard:
            for button in row:
                if label_part in button.text and button.callback_data:
                    return button.callback_data
        labels = [b.text for row in markup.inline_keyboard for b in row]
        raise AssertionError(f"no button with {label_part!r}; have {labels}")

    async def click(self, label_part: str, user: User) -> None:
        await self.press(self.button(label_part), user)


async def settle(app: App) -> None:
    """End a test's app: a recommender refit still in flight (onboarding and receipts
    start one) must land before the loop closes, or its session stays open in a
    transaction and the next test's TRUNCATE waits on it for ever (PostgreSQL)."""
    await recommendations(app.search).wait_fresh()
    await app.events.flush(app.sessionmaker)
    await app.search.close()
