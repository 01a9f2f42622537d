"""The production Sender: aiogram's Bot, with Telegram's errors mapped to ours.

The scheduler knows only the `Sender` protocol (bot.scheduler.sender); app.py builds this.
"""

from __future__ import annotations

import json
from typing import Any

from aiogram import Bot, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import ClientError, ClientTimeout

from bot.ops import metrics
from bot.scheduler.errors import ChatNotFound, Rejected, RetryAfter, Transient, Unreachable
from bot.scheduler.sender import Button, Outgoing
from bot.telegram.observe import error_code
from bot.text import clip_html

# A caption is limited to 1024 characters, a text to 4096.
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096


def _clip(text: str | None, limit: int) -> str | None:
    # The last guard: what was checked at authoring fits; anything else is cut where
    # Telegram can still parse it (never inside a tag), not refused whole.
    return None if text is None else clip_html(text, limit)


def _markup(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row]
            for row in message.buttons
        ]
    )


def outgoing(text: str, markup: InlineKeyboardMarkup | None = None) -> Outgoing:
    """A handler's text and keyboard as the scheduler's plain message (callback buttons
    only: that is all Outgoing carries)."""
    rows: list[tuple[Button, ...]] = []
    for row in markup.inline_keyboard if markup is not None else ():
        buttons = tuple(Button(b.text, b.callback_data) for b in row if b.callback_data)
        if buttons:
            rows.append(buttons)
    return Outgoing(text=text, buttons=tuple(rows))


class TelegramSender:
    # Paid broadcasts take the lean path (_send_lean) on aiogram's HTTP session.
    lean = True

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, chat_id: int, message: Outgoing) -> int:
        if message.paid_broadcast and self.lean and isinstance(self.bot.session, AiohttpSession):
            return await self._send_lean(chat_id, message)
        common: dict[str, Any] = {
            "chat_id": chat_id,
            "protect_content": message.protect_content,
            "reply_markup": _markup(message),
        }
        if message.paid_broadcast:
            common["allow_paid_broadcast"] = True
        caption = _clip(message.caption, CAPTION_LIMIT)
        try:
            if message.copy_from is not None and message.copy_id is not None:
                copied = await self.bot.copy_message(
                    from_chat_id=message.copy_from, message_id=message.copy_id, **common
                )
                return copied.message_id
            if message.kind == "photo":
                sent = await self.bot.send_photo(
                    photo=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "video":
                sent = await self.bot.send_video(
                    video=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "document":
                sent = await self.bot.send_document(
                    document=message.file_id or "", caption=caption, **common
                )
            elif message.kind == "voice":
                sent = await self.bot.send_voice(
                    voice=message.file_id or "", caption=caption, **common
                )
            else:
                sent = await self.bot.send_message(
                    text=_clip(message.text, TEXT_LIMIT) or "…", **common
                )
        except Exception as exc:
            raise map_error(exc) from exc
        return sent.message_id

    async def _send_lean(self, chat_id: int, message: Outgoing) -> int:
        """A paid broadcast's message as one JSON request on aiogram's own HTTP session.

        Why not bot.send_message: at up to 1000 messages a second the request and reply
        models (multipart form, pydantic validation of the sent Message) were the
        largest share of a worker's CPU, and a broadcast needs only the message_id back.
        Everything else stays aiogram's: the API server and token, the connection pool,
        the default parse mode, and on any answer but "ok" its own check_response, so
        errors raise exactly the exceptions bot.send_message would (mapped as usual).
        """
        name, params = _lean_request(chat_id, message, self.bot.default.parse_mode)
        session = self.bot.session
        assert isinstance(session, AiohttpSession)  # send() checked it
        calls = metrics.API_CALLS.labels(name)
        calls.inc()
        try:
            try:
                http = await session.create_session()
                url = session.api.api_url(token=self.bot.token, method=name)
                timeout = ClientTimeout(total=session.timeout)
                async with http.post(url, json=params, timeout=timeout) as resp:
                    status, raw = resp.status, await resp.text()
            except (TimeoutError, ClientError) as exc:
                raise TelegramNetworkError(
                    method=_LEAN_METHODS[name].model_construct(**params),
                    message=f"{type(exc).__name__}: {exc}",
                ) from exc
            answer = json.loads(raw) if status == 200 else None
            if isinstance(answer, dict) and answer.get("ok"):
                return int(answer["result"]["message_id"])
            method: TelegramMethod[Any] = _LEAN_METHODS[name].model_construct(**params)
            session.check_response(self.bot, method, status, raw)  # raises
            raise TelegramServerError(method=method, message=f"unexpected answer: {raw[:200]}")
        except Exception as exc:
            metrics.API_ERRORS.labels(name, error_code(exc)).inc()
            raise map_error(exc) from exc

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        buttons: tuple[tuple[Button, ...], ...] = (),
    ) -> None:
        try:
            await self.bot.edit_message_text(
                text=_clip(text, TEXT_LIMIT) or "…",
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=_markup(Outgoing(buttons=buttons)),
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in exc.message:
                return
            raise map_error(exc) from exc
        except Exception as exc:
            raise map_error(exc) from exc


_LEAN_METHODS: dict[str, type[TelegramMethod[Any]]] = {
    "sendMessage": methods.SendMessage,
    "sendPhoto": methods.SendPhoto,
    "sendVideo": methods.SendVideo,
    "sendDocument": methods.SendDocument,
    "sendVoice": methods.SendVoice,
    "copyMessage": methods.CopyMessage,
}
_MEDIA = {
    "photo": "sendPhoto",
    "video": "sendVideo",
    "document": "sendDocument",
    "voice": "sendVoice",
}


def _lean_request(
    chat_id: int, message: Outgoing, parse_mode: str | None
) -> tuple[str, dict[str, Any]]:
    """The Bot API method and JSON parameters of one message, as bot.send_* would send
    them (the same clipping and the bot's default parse mode)."""
    params: dict[str, Any] = {
        "chat_id": chat_id,
        "protect_content": message.protect_content,
        "allow_paid_broadcast": True,
    }
    if message.buttons:
        params["reply_markup"] = {
            "inline_keyboard": [
                [{"text": b.text, "callback_data": b.data} for b in row] for row in message.buttons
            ]
        }
    if parse_mode:  # aiogram sends the default to copyMessage too (for a new caption)
        params["parse_mode"] = parse_mode
    if message.copy_from is not None and message.copy_id is not None:
        params.update(from_chat_id=message.copy_from, message_id=message.copy_id)
        return "copyMessage", params
    name = _MEDIA.get(message.kind)
    if name is None:
        params["text"] = _clip(message.text, TEXT_LIMIT) or "…"
        return "sendMessage", params
    params[message.kind] = message.file_id or ""
    caption = _clip(message.caption, CAPTION_LIMIT)
    if caption is not None:
        params["caption"] = caption
    return name, params


def map_error(exc: BaseException) -> BaseException:
    """aiogram's exception → ours. Anything unknown is passed through unchanged."""
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(exc.retry_after, exc.message)
    if isinstance(exc, TelegramForbiddenError):
        return Unreachable(exc.message)
    if isinstance(exc, TelegramBadRequest | TelegramNotFound):
        if "chat not found" in exc.message.lower() or "user not found" in exc.message.lower():
            return ChatNotFound(exc.message)
        return Rejected(exc.message)
    if isinstance(exc, TelegramNetworkError | TelegramServerError | TimeoutError | OSError):
        return Transient(str(exc))
    return exc
