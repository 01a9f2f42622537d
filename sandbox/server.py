"""The sandbox: a local Telegram Bot API server (aiohttp) with the world around the bot.

``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` speak the Bot API; ``/sandbox/api/``
is the learner's side (see control.py); ``/`` is the web chat (static/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.formatting import EntityParseError, format_text, utf16_len
from sandbox.limits import SandboxConfig, TokenBucket, retry_after
from sandbox.spec import FileUpload, Spec, load_spec
from sandbox.state import (
    ADMIN_RIGHTS,
    OPTIONAL_RIGHTS,
    ChatState,
    InviteLink,
    Invoice,
    JoinRequest,
    MemberState,
    Payment,
    StoredFile,
    StoredMessage,
    Subscription,
    UserState,
    new_id,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
ALL_UPDATE_TYPES = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "message_reaction",
    "message_reaction_count",
]
# Telegram leaves these out unless the bot asks for them.
OPT_IN_UPDATES = {"chat_member", "message_reaction", "message_reaction_count"}
SEND_METHODS = {
    "sendMessage",
    "sendPhoto",
    "sendVideo",
    "sendDocument",
    "sendVoice",
    "sendAudio",
    "sendAnimation",
    "sendInvoice",
    "copyMessage",
    "forwardMessage",
}
COPYABLE = {"text", "entities", "caption", "caption_entities", "photo", "video", "document",
            "voice", "audio", "animation", "contact", "location"}  # fmt: skip
NOT_FORWARDED = {"message_id", "from", "sender_chat", "date", "chat", "reply_markup",
                 "edit_date", "reply_to_message"}  # fmt: skip
MEDIA_KINDS = ("photo", "video", "document", "voice", "audio", "animation")
SUBSCRIPTION_PERIOD = 2_592_000
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class SandboxServer:
    """One bot's world. ``await start(host, port)``, drive it, ``await stop()``."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.spec: Spec = load_spec()
        self.token = self.config.token
        self.bot_id = int(self.token.split(":", 1)[0])
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.reset()

    # --- lifecycle ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything but the configuration."""
        cfg = self.config
        self.bot_user = UserState(
            self.bot_id, cfg.bot_first_name, username=cfg.bot_username, is_bot=True
        )
        self.users: dict[int, UserState] = {self.bot_id: self.bot_user}
        self.chats: dict[int, ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.invite_links: dict[str, InviteLink] = {}
        self.invoices: dict[str, Invoice] = {}  # by link slug
        self.payments: dict[str, Payment] = {}
        self.subscriptions: dict[str, Subscription] = {}  # by first charge id
        self.star_transactions: list[dict[str, Any]] = []
        self.bot_stars = 0
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}
        self.pre_checkouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 10_000
        self.allowed_updates: list[str] | None = None
        self.webhook: dict[str, Any] | None = None
        self.webhook_errors: dict[str, Any] = {}
        self.violations: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.emitted = 0
        # Answers per method and HTTP code, e.g. stats["sendMessage"][429] (benchmarks).
        self.stats: dict[str, Counter[int]] = defaultdict(Counter)
        self.seq = 0
        self.time_offset = 0
        self.next_group_id = 1000
        self._poll_generation = 0
        self._poll_interrupts = 0
        self._stopping = False
        self._limits_global: TokenBucket | None = None
        self._private_buckets: dict[int, TokenBucket] = {}
        self._group_buckets: dict[int, TokenBucket] = {}
        self._changed: asyncio.Condition | None = None
        self._updates_changed: asyncio.Condition | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._delivery_tasks: set[asyncio.Task[None]] = set()

    def make_app(self) -> web.Application:
        from sandbox.control import setup_control_routes

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        setup_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); returns the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        real_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{real_port}"
        self._ensure_webhook_task()
        return self.base_url

    async def stop(self) -> None:
        # Wake long polls (getUpdates, /sandbox/api/wait) so the HTTP server can close now.
        self._stopping = True
        await self._notify(self.changed)
        await self._notify(self.updates_changed)
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        for task in list(self._delivery_tasks):
            task.cancel()
        for fut in self.pre_checkouts.values():
            if not fut.done():
                fut.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """TELEGRAM_API_URL for the bot (aiogram's TelegramAPIServer.from_base)."""
        return self.base_url

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/"

    # --- time, change notification ----------------------------------------------------------

    def now(self) -> int:
        return int(time.time()) + self.time_offset

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @property
    def updates_changed(self) -> asyncio.Condition:
        if self._updates_changed is None:
            self._updates_changed = asyncio.Condition()
        return self._updates_changed

    def bump(self) -> int:
        """Mark a visible change (messages, answers, payments) for waiting clients."""
        self.seq += 1
        asyncio.get_running_loop().create_task(self._notify(self.changed))
        return self.seq

    @staticmethod
    async def _notify(cond: asyncio.Condition) -> None:
        async with cond:
            cond.notify_all()

    async def wait_change(self, seq: int, timeout: float) -> int:
        if self.seq > seq:
            return self.seq
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self.changed:
                await self.changed.wait_for(lambda: self.seq > seq or self._stopping)
        return self.seq

    def violation(self, kind: str, method: str, detail: Any) -> None:
        self.violations.append({"kind": kind, "method": method, "detail": detail})
        log.warning("sandbox violation %s in %s: %s", kind, method, detail)

    # --- the Bot API over HTTP ----------------------------------------------------------------

    async def _handle_bot_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json(ApiError(401, "Unauthorized").to_json(), 401)
        name = self.spec.method_name(request.match_info["method"])
        if name is None:
            return _json(ApiError(404, "Not Found").to_json(), 404)
        try:
            raw, from_json = await _read_params(request)
        except ValueError:
            return _json(bad("can't parse request body").to_json(), 400)
        response = await self.call(name, raw, from_json=from_json)
        return _json(response, 200 if response["ok"] else response["error_code"])

    async def call(self, name: str, raw: dict[str, Any], from_json: bool = True) -> dict[str, Any]:
        """Run one Bot API call; returns Telegram's response object."""
        parsed = self.spec.parse_request(name, raw, from_json)
        if parsed.unknown:
            self.violation("unknown_parameter", name, parsed.unknown)
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        if parsed.error:
            self.stats[name][400] += 1
            return bad(parsed.error.removeprefix("Bad Request: ")).to_json()
        self.calls.append((name, parsed.params))
        if len(self.calls) > 5000:
            del self.calls[:1000]
        handler: Callable[[dict[str, Any]], Awaitable[Any]] | None = getattr(
            self, f"api_{name}", None
        )
        try:
            result = await self._run(name, handler, parsed.params)
        except ApiError as exc:
            self.stats[name][exc.code] += 1
            return exc.to_json()
        self.stats[name][200] += 1
        if self.config.validate_output:
            errors = self.spec.check_result(name, result)
            if errors:
                self.violation("nonconforming_result", name, errors[:5])
        return {"ok": True, "result": result}

    async def _run(
        self,
        name: str,
        handler: Callable[[dict[str, Any]], Awaitable[Any]] | None,
        params: dict[str, Any],
    ) -> Any:
        if handler is None:
            if self.spec.methods[name]["returns"] == ["Boolean"]:
                return True
            self.violation("unsupported_method", name, "not simulated by the sandbox")
            raise bad(f"method {name} is not supported by the sandbox")
        return await handler(params)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        path = request.match_info["path"]
        for f in self.files.values():
            if f.file_path == path:
                return web.Response(
                    body=f.data, content_type=f.mime_type or "application/octet-stream"
                )
        raise web.HTTPNotFound()

    # --- lookups --------------------------------------------------------------------------------

    def chat(self, chat_id: int | str) -> ChatState:
        if isinstance(chat_id, str):
            if chat_id.lstrip("-").isdigit():
                chat_id = int(chat_id)
            else:
                name = chat_id.lstrip("@").lower()
                for chat in self.chats.values():
                    if chat.username and chat.username.lower() == name:
                        return chat
                raise bad("chat not found")
        found = self.chats.get(chat_id)
        if found is None and chat_id in self.users and chat_id != self.bot_id:
            found = self.private_chat(self.users[chat_id])  # known user, not started yet
        if found is None:
            raise bad("chat not found")
        return found

    def user(self, user_id: int) -> UserState:
        user = self.users.get(user_id)
        if user is None:
            raise bad("user not found")
        return user

    def private_chat(self, user: UserState) -> ChatState:
        chat = self.chats.get(user.id)
        if chat is None:
            chat = ChatState(
                user.id,
                "private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
            chat.members[user.id] = MemberState(user.id, "member")
            chat.members[self.bot_id] = MemberState(self.bot_id, "member")
            self.chats[user.id] = chat
        return chat

    def bot_member(self, chat: ChatState) -> MemberState:
        return chat.member(self.bot_id)

    def writable_chat(self, chat_id: int | str) -> ChatState:
        """The chat the bot sends to, or Telegram's 400/403 for why it can't."""
        chat = self.chat(chat_id)
        if chat.type == "private":
            user = self.users[chat.id]
            if user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not user.started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            return chat
        me = self.bot_member(chat)
        if me.status == "kicked":
            kind = "channel" if chat.type == "channel" else "group"
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if not me.is_member:
            if chat.type == "channel":
                raise bad("need administrator rights in the channel chat")
            raise ApiError(403, "Forbidden: bot is not a member of the group chat")
        if chat.type == "channel" and not me.can("can_post_messages"):
            raise bad("need administrator rights in the channel chat")
        return chat

    def check_rate(self, chat: ChatState) -> None:
        limits = self.config.limits
        if limits is None:
            return
        if self._limits_global is None:
            self._limits_global = TokenBucket(limits.global_per_second, limits.global_burst)
        buckets = [self._limits_global]
        if chat.type == "private":
            b = self._private_buckets.get(chat.id)
            if b is None:
                b = TokenBucket(limits.private_per_second, limits.private_burst)
                self._private_buckets[chat.id] = b
            buckets.append(b)
        elif chat.type in ("group", "supergroup"):
            b = self._group_buckets.get(chat.id)
            if b is None:
                b = TokenBucket(limits.group_per_minute / 60.0, limits.group_burst)
                self._group_buckets[chat.id] = b
            buckets.append(b)
        wait = max(b.wait_time() for b in buckets)
        if wait > 0:
            after = retry_after(wait)
            raise ApiError(429, f"Too Many Requests: retry after {after}", retry_after=after)
        for b in buckets:
            b.take()

    # --- messages -------------------------------------------------------------------------------

    def store_message(
        self,
        chat: ChatState,
        sender: UserState | None,
        body: dict[str, Any],
        outgoing: bool,
        meta: dict[str, Any] | None = None,
    ) -> StoredMessage:
        tg: dict[str, Any] = {"message_id": chat.take_message_id()}
        if chat.type == "channel":
            tg["sender_chat"] = chat.to_tg()
        elif sender is not None:
            tg["from"] = sender.to_tg()
        tg["date"] = self.now()
        tg["chat"] = chat.to_tg()
        tg.update(body)
        stored = StoredMessage(tg, self.bump(), outgoing, meta=meta or {})
        chat.messages[tg["message_id"]] = stored
        return stored

    def message(self, chat: ChatState, message_id: int) -> StoredMessage | None:
        m = chat.messages.get(message_id)
        return None if m is None or m.deleted else m

    def text_body(
        self, p: dict[str, Any], text_key: str = "text", limit: int = TEXT_LIMIT
    ) -> dict[str, Any]:
        raw = p.get(text_key)
        if raw is None:
            return {}
        ent_key = "entities" if text_key == "text" else "caption_entities"
        try:
            text, entities = format_text(raw, p.get("parse_mode"), p.get(ent_key))
        except EntityParseError as exc:
            raise bad(str(exc)) from None
        if text_key == "text" and not text.strip():
            raise bad("message text is empty")
        if utf16_len(text) > limit:
            raise bad(
                "message is too long" if text_key == "text" else "message caption is too long"
            )
        body: dict[str, Any] = {text_key: text}
        if entities:
            body[ent_key] = entities
        return body

    def check_inline_markup(self, markup: dict[str, Any]) -> dict[str, Any]:
        rows = markup.get("inline_keyboard")
        if not isinstance(rows, list):
            raise bad("can't parse inline keyboard markup JSON object")
        actions = (
            "url",
            "callback_data",
            "web_app",
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
            "copy_text",
            "callback_game",
            "pay",
        )
        # Telegram keeps only the fields it knows.
        known = {f["name"] for f in self.spec.types["InlineKeyboardButton"]["fields"]}
        rows = [[{k: v for k, v in b.items() if k in known} for b in row] for row in rows]
        for row in rows:
            for button in row:
                present = [a for a in actions if a in button]
                if len(present) != 1:
                    raise bad(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise bad("BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise bad("BUTTON_TEXT_INVALID")
        return {"inline_keyboard": rows}

    def apply_markup(self, chat: ChatState, p: dict[str, Any], body: dict[str, Any]) -> None:
        markup = p.get("reply_markup")
        if not markup:
            return
        if "inline_keyboard" in markup:
            body["reply_markup"] = self.check_inline_markup(markup)
        elif chat.type == "private":
            user = self.users[chat.id]
            if "keyboard" in markup:
                user.reply_keyboard = markup
            elif markup.get("remove_keyboard"):
                user.reply_keyboard = None

    def common_send(self, chat: ChatState, p: dict[str, Any], body: dict[str, Any]) -> None:
        if p.get("protect_content"):
            body["has_protected_content"] = True
        rp = p.get("reply_parameters")
        if rp:
            target_chat = self.chat(rp["chat_id"]) if rp.get("chat_id") else chat
            target = self.message(target_chat, int(rp["message_id"]))
            if target is None:
                if not rp.get("allow_sending_without_reply"):
                    raise bad("message to be replied not found")
            else:
                reply = {k: v for k, v in target.tg.items() if k != "reply_to_message"}
                body["reply_to_message"] = reply
        self.apply_markup(chat, p, body)

    def bot_sends(
        self,
        p: dict[str, Any],
        body: dict[str, Any],
        chat: ChatState | None = None,
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        chat = chat or self.writable_chat(p["chat_id"])
        self.common_send(chat, p, body)
        self.check_rate(chat)
        return self.store_message(chat, self.bot_user, body, outgoing=True, meta=meta).tg

    async def api_getMe(self, p: dict[str, Any]) -> Any:
        me = self.bot_user.to_tg()
        me.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=True,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return me

    async def api_logOut(self, p: dict[str, Any]) -> Any:
        return True

    async def api_close(self, p: dict[str, Any]) -> Any:
        return True

    async def api_sendMessage(self, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        body = self.text_body(p)
        lp = p.get("link_preview_options")
        if lp and lp.get("is_disabled"):
            body["link_preview_options"] = {"is_disabled": True}
        return self.bot_sends(p, body, chat)

    def input_file(self, value: Any, kind: str, default_name: str | None = None) -> StoredFile:
        if isinstance(value, FileUpload):
            unique = new_id("", 8)
            stored = StoredFile(
                file_id=new_id(kind[:2].upper() + "Aa", 24),
                file_unique_id=unique,
                data=value.data,
                kind=kind,
                file_name=value.filename or default_name,
                mime_type=value.content_type or None,
            )
            self.files[stored.file_id] = stored
            return stored
        if isinstance(value, str):
            if value in self.files:
                return self.files[value]
            if value.startswith(("http://", "https://")):
                stored = StoredFile(
                    new_id("URL", 24), new_id("", 8), b"", kind, value.rsplit("/")[-1]
                )
                self.files[stored.file_id] = stored
                return stored
            if value.startswith("attach://"):
                raise bad("can't use attach:// outside of a media group")
        raise bad("wrong file identifier/HTTP URL specified")

    def media_object(self, f: StoredFile, kind: str, p: dict[str, Any]) -> Any:
        base: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
        if f.data:
            base["file_size"] = len(f.data)
        if kind == "photo":
            return [dict(base, width=p.get("width") or 800, height=p.get("height") or 600)]
        if kind == "video":
            base.update(width=p.get("width") or 1280, height=p.get("height") or 720)
            base["duration"] = p.get("duration") or 0
        elif kind == "voice":
            base["duration"] = p.get("duration") or 0
        elif kind in ("document", "audio", "animation"):
            if f.file_name:
                base["file_name"] = f.file_name
            if kind == "audio":
                base["duration"] = p.get("duration") or 0
            if kind == "animation":
                base.update(width=320, height=240, duration=p.get("duration") or 0)
        if f.mime_type and kind != "photo":
            base["mime_type"] = f.mime_type
        return base

    async def _send_media(self, kind: str, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        f = self.input_file(p[kind], kind)
        body: dict[str, Any] = {kind: self.media_object(f, kind, p)}
        body.update(self.text_body(p, "caption", CAPTION_LIMIT))
        return self.bot_sends(p, body, chat)

    async def api_sendPhoto(self, p: dict[str, Any]) -> Any:
        return await self._send_media("photo", p)

    async def api_sendVideo(self, p: dict[str, Any]) -> Any:
        return await self._send_media("video", p)

    async def api_sendDocument(self, p: dict[str, Any]) -> Any:
        return await self._send_media("document", p)

    async def api_sendVoice(self, p: dict[str, Any]) -> Any:
        return await self._send_media("voice", p)

    async def api_sendAudio(self, p: dict[str, Any]) -> Any:
        return await self._send_media("audio", p)

    async def api_sendAnimation(self, p: dict[str, Any]) -> Any:
        return await self._send_media("animation", p)

    async def api_getFile(self, p: dict[str, Any]) -> Any:
        f = self.files.get(p["file_id"])
        if f is None:
            raise bad("invalid file_id")
        out: dict[str, Any] = {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_path": f.file_path,
        }
        if f.data:
            out["file_size"] = len(f.data)
        return out

    async def api_sendChatAction(self, p: dict[str, Any]) -> Any:
        self.writable_chat(p["chat_id"])
        return True

    async def api_copyMessage(self, p: dict[str, Any]) -> Any:
        source = self.chat(p["from_chat_id"])
        original = self.message(source, p["message_id"])
        if original is None:
            raise bad("message to copy not found")
        if original.tg.get("has_protected_content"):
            raise bad("message can't be copied")
        chat = self.writable_chat(p["chat_id"])
        body = {k: v for k, v in original.tg.items() if k in COPYABLE}
        if not body:
            raise bad("message can't be copied")
        if "caption" in p:
            body.pop("caption_entities", None)
            body.update(self.text_body(p, "caption", CAPTION_LIMIT))
        msg = self.bot_sends(p, body, chat)
        return {"message_id": msg["message_id"]}

    async def api_forwardMessage(self, p: dict[str, Any]) -> Any:
        source = self.chat(p["from_chat_id"])
        original = self.message(source, p["message_id"])
        if original is None:
            raise bad("message to forward not found")
        if original.tg.get("has_protected_content"):
            raise bad("message can't be forwarded")
        chat = self.writable_chat(p["chat_id"])
        body = {k: v for k, v in original.tg.items() if k not in NOT_FORWARDED}
        if "sender_chat" in original.tg:
            body["forward_origin"] = {
                "type": "channel",
                "date": original.tg["date"],
                "chat": original.tg["sender_chat"],
                "message_id": original.tg["message_id"],
            }
        else:
            body["forward_origin"] = {
                "type": "user",
                "date": original.tg["date"],
                "sender_user": original.tg["from"],
            }
        return self.bot_sends({k: v for k, v in p.items() if k != "reply_markup"}, body, chat)

    # --- edits and deletes ----------------------------------------------------------------------

    def editable(self, p: dict[str, Any]) -> tuple[ChatState, StoredMessage]:
        if p.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")
        if p.get("chat_id") is None or p.get("message_id") is None:
            raise bad("message identifier is not specified")
        chat = self.chat(p["chat_id"])
        msg = self.message(chat, p["message_id"])
        if msg is None:
            raise bad("message to edit not found")
        if not msg.outgoing:
            raise bad("message can't be edited")
        return chat, msg

    def finish_edit(self, chat: ChatState, msg: StoredMessage, new: dict[str, Any]) -> Any:
        if all(msg.tg.get(k) == v for k, v in new.items() if v is not None) and all(
            (k in msg.tg) == (v is not None) for k, v in new.items()
        ):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        for k, v in new.items():
            if v is None:
                msg.tg.pop(k, None)
            else:
                msg.tg[k] = v
        msg.tg["edit_date"] = self.now()
        msg.edited = True
        msg.seq = self.bump()
        return dict(msg.tg)

    async def api_editMessageText(self, p: dict[str, Any]) -> Any:
        chat, msg = self.editable(p)
        if "text" not in msg.tg:
            raise bad("there is no text in the message to edit")
        if p.get("text") is None:
            raise bad("message text is empty")
        body = self.text_body(p)
        markup = p.get("reply_markup")
        new: dict[str, Any] = {
            "text": body["text"],
            "entities": body.get("entities"),
            "reply_markup": self.check_inline_markup(markup) if markup else None,
        }
        return self.finish_edit(chat, msg, new)

    async def api_editMessageCaption(self, p: dict[str, Any]) -> Any:
        chat, msg = self.editable(p)
        if not any(k in msg.tg for k in MEDIA_KINDS):
            raise bad("there is no caption in the message to edit")
        body = self.text_body(p, "caption", CAPTION_LIMIT) if p.get("caption") else {}
        markup = p.get("reply_markup")
        new: dict[str, Any] = {
            "caption": body.get("caption"),
            "caption_entities": body.get("caption_entities"),
            "reply_markup": self.check_inline_markup(markup) if markup else None,
        }
        return self.finish_edit(chat, msg, new)

    async def api_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        chat, msg = self.editable(p)
        markup = p.get("reply_markup")
        new = {"reply_markup": self.check_inline_markup(markup) if markup else None}
        return self.finish_edit(chat, msg, new)

    def _delete(self, chat: ChatState, message_id: int) -> None:
        msg = self.message(chat, message_id)
        if msg is None:
            raise bad("message to delete not found")
        if (
            chat.type != "private"
            and not msg.outgoing
            and not self.bot_member(chat).can("can_delete_messages")
        ):
            raise bad("message can't be deleted")
        msg.deleted = True
        msg.seq = self.bump()

    async def api_deleteMessage(self, p: dict[str, Any]) -> Any:
        self._delete(self.chat(p["chat_id"]), p["message_id"])
        return True

    async def api_deleteMessages(self, p: dict[str, Any]) -> Any:
        chat = self.chat(p["chat_id"])
        for mid in p["message_ids"]:
            with contextlib.suppress(ApiError):
                self._delete(chat, mid)
        return True

    # --- callbacks and inline -------------------------------------------------------------------

    async def api_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        q = self.callback_queries.get(p["callback_query_id"])
        if q is None or q["answered"]:
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        text = p.get("text")
        if text and len(text) > 200:
            raise bad("MESSAGE_TOO_LONG")
        q.update(answered=True, text=text, show_alert=bool(p.get("show_alert")), url=p.get("url"))
        self.bump()
        return True

    async def api_answerInlineQuery(self, p: dict[str, Any]) -> Any:
        q = self.inline_queries.get(p["inline_query_id"])
        if q is None or q["answered"]:
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        if len(p["results"]) > 50:
            raise bad("RESULTS_TOO_MUCH")
        ids = [r.get("id") for r in p["results"]]
        if len(set(ids)) != len(ids):
            raise bad("RESULT_ID_DUPLICATE")
        q.update(answered=True, results=p["results"], next_offset=p.get("next_offset", ""))
        self.bump()
        return True

    # --- commands -------------------------------------------------------------------------------

    @staticmethod
    def scope_key(scope: dict[str, Any] | None) -> str:
        if not scope:
            return "default"
        key = scope.get("type", "default")
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        if "user_id" in scope:
            key += f":{scope['user_id']}"
        return key

    async def api_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = p["commands"]
        if len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        for c in commands:
            cmd = c["command"]
            if not (1 <= len(cmd) <= 32) or not all(ch.isalnum() or ch == "_" for ch in cmd):
                raise bad("BOT_COMMAND_INVALID")
            if cmd.lower() != cmd:
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(c["description"]) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        self.commands[key] = [{"command": c["command"], "description": c["description"]}
                              for c in commands]  # fmt: skip
        return True

    async def api_getMyCommands(self, p: dict[str, Any]) -> Any:
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        return self.commands.get(key, [])

    async def api_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        self.commands.pop(key, None)
        return True

    def commands_for(self, user: UserState) -> list[dict[str, Any]]:
        """What the user's command menu shows in the private chat."""
        langs = [user.language_code or "", ""] if user.language_code else [""]
        for scope in (f"chat:{user.id}", "all_private_chats", "default"):
            for lang in langs:
                if (scope, lang) in self.commands:
                    return self.commands[(scope, lang)]
        return []

    # --- chats and members ----------------------------------------------------------------------

    def member_tg(self, chat: ChatState, m: MemberState) -> dict[str, Any]:
        user = self.users[m.user_id].to_tg()
        if m.status == "creator":
            out: dict[str, Any] = {"status": "creator", "user": user, "is_anonymous": False}
            if m.custom_title:
                out["custom_title"] = m.custom_title
            return out
        if m.status == "administrator":
            out = {
                "status": "administrator",
                "user": user,
                "can_be_edited": m.user_id == self.bot_id,
            }
            out["is_anonymous"] = False
            for r in ADMIN_RIGHTS:
                out[r] = bool(m.rights.get(r, False))
            out["can_send_welcome_messages"] = bool(m.rights.get("can_send_welcome_messages"))
            for r in OPTIONAL_RIGHTS:
                if r in m.rights:
                    out[r] = bool(m.rights[r])
            return out
        if m.status == "member":
            return {"status": "member", "user": user}
        if m.status == "kicked":
            return {"status": "kicked", "user": user, "until_date": m.until_date}
        if m.status == "restricted":
            out = {
                "status": "restricted",
                "user": user,
                "is_member": True,
                "until_date": m.until_date,
            }
            for r in ("can_send_messages", "can_send_audios", "can_send_documents",
                      "can_send_photos", "can_send_videos", "can_send_video_notes",
                      "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
                      "can_add_web_page_previews", "can_react_to_messages", "can_edit_tag",
                      "can_change_info", "can_invite_users", "can_pin_messages",
                      "can_manage_topics"):  # fmt: skip
                out[r] = bool(m.rights.get(r, False))
            return out
        return {"status": "left", "user": user}

    def set_member(
        self,
        chat: ChatState,
        user_id: int,
        status: str,
        *,
        actor_id: int,
        rights: dict[str, bool] | None = None,
        until_date: int = 0,
        invite_link: InviteLink | None = None,
        via_join_request: bool = False,
    ) -> None:
        """Change a membership and tell the bot (my_chat_member / chat_member)."""
        old = chat.member(user_id)
        old_tg = self.member_tg(chat, old)
        new = MemberState(user_id, status, dict(rights or {}), until_date)
        chat.members[user_id] = new
        update: dict[str, Any] = {
            "chat": chat.to_tg(),
            "from": self.users[actor_id].to_tg(),
            "date": self.now(),
            "old_chat_member": old_tg,
            "new_chat_member": self.member_tg(chat, new),
        }
        if invite_link is not None:
            update["invite_link"] = self.link_tg(invite_link)
        if via_join_request:
            update["via_join_request"] = True
        if user_id == self.bot_id:
            self.push_update("my_chat_member", update)
        elif chat.type != "private" and self.bot_member(chat).status == "administrator":
            self.push_update("chat_member", update)
        joined = chat.type in ("group", "supergroup") and new.is_member and not old.is_member
        if joined and (user_id == self.bot_id or self.bot_member(chat).is_member):
            who = self.users[user_id].to_tg()
            sender = self.users[user_id if actor_id == self.bot_id else actor_id]
            msg = self.store_message(chat, sender, {"new_chat_members": [who]}, False)
            if user_id != self.bot_id:
                self.push_update("message", msg.tg)
        left = chat.type in ("group", "supergroup") and old.is_member and not new.is_member
        if left and user_id != self.bot_id and self.bot_member(chat).is_member:
            sender = self.users[actor_id]
            who = self.users[user_id].to_tg()
            msg = self.store_message(chat, sender, {"left_chat_member": who}, False)
            self.push_update("message", msg.tg)
        self.bump()

    def bot_sees(self, chat: ChatState, message: dict[str, Any]) -> bool:
        """Whether a member's message in a group reaches the bot: always for an admin bot;
        with privacy mode on, a member bot sees only commands and replies to itself."""
        me = self.bot_member(chat)
        if not me.is_member:
            return False
        if me.status == "administrator" or not self.config.privacy_mode:
            return True
        reply = message.get("reply_to_message") or {}
        to_bot = reply.get("from", {}).get("id") == self.bot_id
        return to_bot or str(message.get("text", "")).startswith("/")

    def create_chat(
        self, type_: str, title: str, creator: UserState, username: str | None = None
    ) -> ChatState:
        self.next_group_id += 1
        n = self.next_group_id
        chat_id = -n if type_ == "group" else -(1_000_000_000_000 + n)
        chat = ChatState(chat_id, type_, title=title, username=username)
        chat.members[creator.id] = MemberState(creator.id, "creator")
        self.chats[chat_id] = chat
        service = {
            "group": "group_chat_created",
            "supergroup": "supergroup_chat_created",
            "channel": "channel_chat_created",
        }[type_]
        self.store_message(chat, creator, {service: True}, False)
        return chat

    async def api_getChat(self, p: dict[str, Any]) -> Any:
        chat = self.chat(p["chat_id"])
        if chat.type != "private" and not self.bot_member(chat).is_member:
            raise bad("chat not found")
        out = chat.to_tg()
        out.update(
            accent_color_id=0,
            max_reaction_count=11,
            accepted_gift_types={
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        )
        if chat.description:
            out["description"] = chat.description
        if chat.type != "private":
            primary = next(
                (x for x in self.invite_links.values() if x.chat_id == chat.id and x.is_primary),
                None,
            )
            if primary:
                out["invite_link"] = primary.link
        return out

    def group_chat(self, chat_id: int | str) -> ChatState:
        chat = self.chat(chat_id)
        if chat.type == "private":
            raise bad("method is available for supergroup and channel chats only")
        if not self.bot_member(chat).is_member:
            raise bad("chat not found")
        return chat

    async def api_getChatMember(self, p: dict[str, Any]) -> Any:
        chat = self.chat(p["chat_id"])
        if p["user_id"] not in self.users:
            raise bad("user not found")
        if chat.type == "private":
            status = "member" if p["user_id"] in (chat.id, self.bot_id) else "left"
            return self.member_tg(chat, MemberState(p["user_id"], status))
        if not self.bot_member(chat).is_member:
            raise bad("chat not found")
        return self.member_tg(chat, chat.member(p["user_id"]))

    async def api_getChatAdministrators(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        return [
            self.member_tg(chat, m)
            for m in chat.members.values()
            if m.status in ("creator", "administrator")
        ]

    async def api_getChatMemberCount(self, p: dict[str, Any]) -> Any:
        chat = self.chat(p["chat_id"])
        return sum(1 for m in chat.members.values() if m.is_member)

    async def api_leaveChat(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.set_member(chat, self.bot_id, "left", actor_id=self.bot_id)
        return True

    def need_right(self, chat: ChatState, right: str) -> None:
        me = self.bot_member(chat)
        if me.status != "administrator":
            raise bad("CHAT_ADMIN_REQUIRED")
        if not me.can(right):
            if right == "can_restrict_members":
                raise bad("not enough rights to restrict/unrestrict chat member")
            raise bad("not enough rights to manage chat invite link" if right == "can_invite_users"
                      else "not enough rights")  # fmt: skip

    async def api_banChatMember(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        user_id = p["user_id"]
        if user_id not in self.users:
            raise bad("user not found")
        self.need_right(chat, "can_restrict_members")
        target = chat.member(user_id)
        if target.status == "creator":
            raise bad("can't remove chat owner")
        if user_id == self.bot_id:
            raise bad("can't restrict self")
        if target.status == "administrator":
            raise bad("user is an administrator of the chat")
        until = p.get("until_date") or 0
        if until and (until - self.now() < 30 or until - self.now() > 366 * 86400):
            until = 0  # Telegram: outside 30 s .. 366 d means "forever"
        self.set_member(chat, user_id, "kicked", actor_id=self.bot_id, until_date=until)
        chat.join_requests.pop(user_id, None)
        return True

    async def api_unbanChatMember(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        user_id = p["user_id"]
        if user_id not in self.users:
            raise bad("user not found")
        self.need_right(chat, "can_restrict_members")
        target = chat.member(user_id)
        if target.status == "creator":
            raise bad("can't remove chat owner")
        if p.get("only_if_banned") and target.status != "kicked":
            return True
        if target.status in ("kicked", "member", "restricted"):
            # Without only_if_banned a current member is removed (and may come back).
            self.set_member(chat, user_id, "left", actor_id=self.bot_id)
        return True

    async def api_restrictChatMember(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_restrict_members")
        perms = p["permissions"]
        self.set_member(
            chat, p["user_id"], "restricted", actor_id=self.bot_id,
            rights={k: bool(v) for k, v in perms.items()}, until_date=p.get("until_date") or 0,
        )  # fmt: skip
        return True

    # --- invite links and join requests -----------------------------------------------------

    def link_tg(self, link: InviteLink) -> dict[str, Any]:
        out: dict[str, Any] = {
            "invite_link": link.link,
            "creator": self.users[link.creator_id].to_tg(),
            "creates_join_request": link.creates_join_request,
            "is_primary": link.is_primary,
            "is_revoked": link.is_revoked,
        }
        if link.name:
            out["name"] = link.name
        if link.expire_date:
            out["expire_date"] = link.expire_date
        if link.member_limit:
            out["member_limit"] = link.member_limit
        if link.creates_join_request:
            chat = self.chats[link.chat_id]
            out["pending_join_request_count"] = sum(
                1 for r in chat.join_requests.values() if r.invite_link == link.link
            )
        if link.subscription_period:
            out["subscription_period"] = link.subscription_period
            out["subscription_price"] = link.subscription_price
        return out

    def check_link_params(self, p: dict[str, Any]) -> None:
        if p.get("member_limit") is not None and p.get("creates_join_request"):
            raise bad("member_limit can't be specified for links requiring administrator approval")
        if p.get("member_limit") is not None and not 1 <= p["member_limit"] <= 99999:
            raise bad("USAGE_LIMIT_INVALID")
        if p.get("expire_date") and p["expire_date"] <= self.now():
            raise bad("EXPIRE_DATE_INVALID")
        if p.get("name") and len(p["name"]) > 32:
            raise bad("invite link name is too long")

    async def api_createChatInviteLink(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_invite_users")
        self.check_link_params(p)
        link = InviteLink(
            link=f"https://t.me/+{new_id('', 12)}",
            chat_id=chat.id,
            creator_id=self.bot_id,
            name=p.get("name"),
            expire_date=p.get("expire_date"),
            member_limit=p.get("member_limit"),
            creates_join_request=bool(p.get("creates_join_request")),
        )
        self.invite_links[link.link] = link
        return self.link_tg(link)

    async def api_createChatSubscriptionInviteLink(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        if chat.type != "channel":
            raise bad("method is available only for channels")
        self.need_right(chat, "can_invite_users")
        if p["subscription_period"] != SUBSCRIPTION_PERIOD:
            raise bad("SUBSCRIPTION_PERIOD_INVALID")
        if not 1 <= p["subscription_price"] <= 10000:
            raise bad("SUBSCRIPTION_PRICE_INVALID")
        link = InviteLink(
            link=f"https://t.me/+{new_id('', 12)}",
            chat_id=chat.id,
            creator_id=self.bot_id,
            name=p.get("name"),
            subscription_period=p["subscription_period"],
            subscription_price=p["subscription_price"],
        )
        self.invite_links[link.link] = link
        return self.link_tg(link)

    def own_link(self, p: dict[str, Any]) -> tuple[ChatState, InviteLink]:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_invite_users")
        link = self.invite_links.get(p["invite_link"])
        if link is None or link.chat_id != chat.id:
            raise bad("INVITE_HASH_EXPIRED")
        return chat, link

    async def api_editChatInviteLink(self, p: dict[str, Any]) -> Any:
        _, link = self.own_link(p)
        merged = {
            "member_limit": p.get("member_limit", link.member_limit),
            "creates_join_request": p.get("creates_join_request", link.creates_join_request),
            "expire_date": p.get("expire_date"),
            "name": p.get("name"),
        }
        self.check_link_params(merged)
        for key in ("name", "expire_date", "member_limit", "creates_join_request"):
            if key in p:
                setattr(link, key, p[key])
        return self.link_tg(link)

    async def api_revokeChatInviteLink(self, p: dict[str, Any]) -> Any:
        chat, link = self.own_link(p)
        link.is_revoked = True
        if link.is_primary:
            link.is_primary = False
            self._new_primary(chat)
        return self.link_tg(link)

    def _new_primary(self, chat: ChatState) -> InviteLink:
        link = InviteLink(f"https://t.me/+{new_id('', 12)}", chat.id, self.bot_id, is_primary=True)
        self.invite_links[link.link] = link
        return link

    async def api_exportChatInviteLink(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_invite_users")
        for link in self.invite_links.values():
            if link.chat_id == chat.id and link.is_primary:
                link.is_primary = False
                link.is_revoked = True
        return self._new_primary(chat).link

    def join(self, user: UserState, link_url: str) -> dict[str, Any]:
        """The user opens an invite link: joins, asks to join, or is refused."""
        link = self.invite_links.get(link_url.strip())
        if link is None:
            return {"status": "failed", "reason": "INVITE_HASH_INVALID"}
        chat = self.chats[link.chat_id]
        if link.is_revoked or (link.expire_date and link.expire_date <= self.now()):
            return {"status": "failed", "reason": "INVITE_HASH_EXPIRED"}
        member = chat.member(user.id)
        if member.is_member:
            return {"status": "already_member", "chat_id": chat.id}
        if member.status == "kicked" and (not member.until_date or member.until_date > self.now()):
            return {"status": "failed", "reason": "USER_BANNED_IN_CHANNEL"}
        if link.creates_join_request:
            if user.id in chat.join_requests:
                return {"status": "failed", "reason": "INVITE_REQUEST_SENT", "chat_id": chat.id}
            chat.join_requests[user.id] = JoinRequest(user.id, chat.id, self.now(), link.link)
            if self.bot_member(chat).can("can_invite_users"):
                self.push_update(
                    "chat_join_request",
                    {
                        "chat": chat.to_tg(),
                        "from": user.to_tg(),
                        "user_chat_id": user.id,
                        "date": self.now(),
                        "invite_link": self.link_tg(link),
                    },
                )
            self.bump()
            return {"status": "requested", "chat_id": chat.id}
        if link.member_limit and link.joined >= link.member_limit:
            return {"status": "failed", "reason": "USERS_TOO_MUCH"}
        link.joined += 1
        self.set_member(chat, user.id, "member", actor_id=user.id, invite_link=link)
        return {"status": "joined", "chat_id": chat.id}

    async def api_approveChatJoinRequest(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_invite_users")
        req = chat.join_requests.pop(p["user_id"], None)
        if req is None:
            raise bad("HIDE_REQUESTER_MISSING")
        link = self.invite_links.get(req.invite_link or "")
        if link is not None:
            link.joined += 1
        self.set_member(
            chat, req.user_id, "member", actor_id=self.bot_id, invite_link=link,
            via_join_request=True,
        )  # fmt: skip
        return True

    async def api_declineChatJoinRequest(self, p: dict[str, Any]) -> Any:
        chat = self.group_chat(p["chat_id"])
        self.need_right(chat, "can_invite_users")
        if chat.join_requests.pop(p["user_id"], None) is None:
            raise bad("HIDE_REQUESTER_MISSING")
        self.bump()
        return True

    # --- payments -------------------------------------------------------------------------------

    def check_invoice(self, p: dict[str, Any]) -> Invoice:
        payload = p["payload"]
        if not 1 <= len(payload.encode()) <= 128:
            raise bad("INVOICE_PAYLOAD_INVALID")
        if not 1 <= len(p["title"]) <= 32:
            raise bad("INVOICE_TITLE_INVALID" if p["title"] else "title is empty")
        if not 1 <= len(p["description"]) <= 255:
            raise bad("INVOICE_DESCRIPTION_INVALID")
        prices = p["prices"]
        if not prices:
            raise bad("prices must be non-empty")
        currency = p["currency"].upper()
        if currency == "XTR":
            if p.get("provider_token"):
                raise bad("PROVIDER_TOKEN_INVALID")  # Stars take an empty provider token
            if len(prices) != 1:
                raise bad("STARS_INVOICE_INVALID")
        elif not p.get("provider_token"):
            raise bad("PAYMENT_PROVIDER_INVALID")
        if p.get("subscription_period") is not None:
            if p["subscription_period"] != SUBSCRIPTION_PERIOD:
                raise bad("SUBSCRIPTION_PERIOD_INVALID")
            if currency != "XTR":
                raise bad("SUBSCRIPTION_EXPORT_MISSING")  # subscriptions are Stars-only
        total = sum(int(x["amount"]) for x in prices)
        if total <= 0:
            raise bad("CURRENCY_TOTAL_AMOUNT_INVALID")
        return Invoice(
            title=p["title"],
            description=p["description"],
            payload=payload,
            currency=currency,
            prices=prices,
            provider_token=p.get("provider_token") or "",
            subscription_period=p.get("subscription_period"),
            start_parameter=p.get("start_parameter") or "",
        )

    async def api_sendInvoice(self, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        inv = self.check_invoice(p)
        body: dict[str, Any] = {
            "invoice": {
                "title": inv.title,
                "description": inv.description,
                "start_parameter": inv.start_parameter,
                "currency": inv.currency,
                "total_amount": inv.total_amount,
            }
        }
        if not p.get("reply_markup"):
            label = f"Pay ⭐️{inv.total_amount}" if inv.currency == "XTR" else (
                f"Pay {inv.total_amount / 100:.2f} {inv.currency}")  # fmt: skip
            body["reply_markup"] = {"inline_keyboard": [[{"text": label, "pay": True}]]}
        else:
            rows = p["reply_markup"].get("inline_keyboard") or [[]]
            if not rows[0] or not rows[0][0].get("pay"):
                raise bad("REPLY_MARKUP_BUY_EMPTY")
        msg = self.bot_sends(p, body, chat, meta={"invoice": inv})
        inv.chat_id, inv.message_id = chat.id, msg["message_id"]
        return msg

    async def api_createInvoiceLink(self, p: dict[str, Any]) -> Any:
        inv = self.check_invoice(p)
        slug = new_id("", 10)
        inv.link = f"https://t.me/$${slug}".replace("$$", "$")
        self.invoices[slug] = inv
        return inv.link

    def invoice_by_link(self, link: str) -> Invoice | None:
        slug = link.rsplit("$", 1)[-1]
        return self.invoices.get(slug)

    async def api_answerPreCheckoutQuery(self, p: dict[str, Any]) -> Any:
        fut = self.pre_checkouts.get(p["pre_checkout_query_id"])
        if fut is None or fut.done():
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        if not p["ok"] and not p.get("error_message"):
            raise bad("error_message is required when ok is False")
        fut.set_result((bool(p["ok"]), p.get("error_message")))
        return True

    async def pay(
        self, user: UserState, inv: Invoice, *, fail: str | None = None
    ) -> dict[str, Any]:
        """The user presses Pay: pre_checkout_query → the bot's answer → successful_payment."""
        self.private_chat(user)
        user.started = True
        if fail:
            self.bump()
            return {"status": "failed", "reason": fail}
        total = inv.total_amount
        if inv.currency == "XTR" and user.stars < total:
            return {"status": "failed", "reason": "insufficient_stars"}
        if inv.subscription_period:
            active = [
                s for s in self.subscriptions.values()
                if s.user_id == user.id and s.invoice is inv and s.expires_at > self.now()
            ]  # fmt: skip
            if active:
                return {"status": "failed", "reason": "already_subscribed"}
        query_id = new_id("", 12)
        fut: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        self.pre_checkouts[query_id] = fut
        self.push_update(
            "pre_checkout_query",
            {
                "id": query_id,
                "from": user.to_tg(),
                "currency": inv.currency,
                "total_amount": total,
                "invoice_payload": inv.payload,
            },
        )
        try:
            ok, error = await asyncio.wait_for(
                asyncio.shield(fut), timeout=self.config.pre_checkout_timeout
            )
        except TimeoutError:
            fut.cancel()
            self.bump()
            return {"status": "failed", "reason": "timeout", "pre_checkout_query_id": query_id}
        finally:
            self.pre_checkouts.pop(query_id, None)
        if not ok:
            self.bump()
            return {"status": "failed", "reason": "rejected", "error_message": error}
        payment = self.charge(user, inv, first_recurring=bool(inv.subscription_period))
        return {
            "status": "paid",
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
            "total_amount": total,
            "currency": inv.currency,
        }

    def charge(
        self,
        user: UserState,
        inv: Invoice,
        *,
        first_recurring: bool = False,
        renewal_of: Subscription | None = None,
    ) -> Payment:
        total = inv.total_amount
        stars = inv.currency == "XTR"
        charge_id = new_id("stxT" if stars else "tgCH", 24)
        payment = Payment(
            user_id=user.id,
            currency=inv.currency,
            total_amount=total,
            payload=inv.payload,
            telegram_payment_charge_id=charge_id,
            provider_payment_charge_id=new_id("stars_" if stars else "ch_", 16),
            date=self.now(),
        )
        body: dict[str, Any] = {
            "currency": inv.currency,
            "total_amount": total,
            "invoice_payload": inv.payload,
            "telegram_payment_charge_id": payment.telegram_payment_charge_id,
            "provider_payment_charge_id": payment.provider_payment_charge_id,
        }
        if inv.subscription_period:
            if renewal_of is None:
                expires = self.now() + inv.subscription_period
                self.subscriptions[charge_id] = Subscription(
                    user.id, inv, charge_id, charge_id, expires
                )
            else:
                expires = max(self.now(), renewal_of.expires_at) + inv.subscription_period
                renewal_of.expires_at = expires
                renewal_of.last_charge_id = charge_id
            payment.subscription_expiration_date = expires
            payment.is_recurring = True
            payment.is_first_recurring = first_recurring
            body["subscription_expiration_date"] = expires
            body["is_recurring"] = True
            if first_recurring:
                body["is_first_recurring"] = True
        self.payments[charge_id] = payment
        if stars:
            user.stars -= total
            self.bot_stars += total
            source: dict[str, Any] = {
                "type": "user",
                "transaction_type": "invoice_payment",
                "user": user.to_tg(),
                "invoice_payload": inv.payload,
            }
            if inv.subscription_period:
                source["subscription_period"] = inv.subscription_period
            self.star_transactions.append(
                {"id": charge_id, "amount": total, "date": self.now(), "source": source}
            )
        chat = self.chats.get(inv.chat_id or user.id) or self.private_chat(user)
        if chat.type != "private" and not chat.member(user.id).is_member:
            chat = self.private_chat(user)
        msg = self.store_message(chat, user, {"successful_payment": body}, outgoing=False)
        self.push_update("message", msg.tg)
        return payment

    def renew_subscriptions(self, user_id: int | None = None) -> list[dict[str, Any]]:
        """A renewal date comes: every active subscription is charged again (or lapses)."""
        out: list[dict[str, Any]] = []
        for sub in list(self.subscriptions.values()):
            if user_id is not None and sub.user_id != user_id:
                continue
            user = self.users[sub.user_id]
            if sub.canceled_by_bot or sub.canceled_by_user:
                out.append({"first_charge_id": sub.first_charge_id, "status": "canceled"})
                continue
            if user.stars < sub.invoice.total_amount:
                out.append({"first_charge_id": sub.first_charge_id, "status": "insufficient_stars"})
                continue
            payment = self.charge(user, sub.invoice, renewal_of=sub)
            out.append(
                {
                    "first_charge_id": sub.first_charge_id,
                    "status": "renewed",
                    "telegram_payment_charge_id": payment.telegram_payment_charge_id,
                    "subscription_expiration_date": sub.expires_at,
                }
            )
        return out

    async def api_refundStarPayment(self, p: dict[str, Any]) -> Any:
        payment = self.payments.get(p["telegram_payment_charge_id"])
        if payment is None or payment.user_id != p["user_id"] or payment.currency != "XTR":
            raise bad("CHARGE_NOT_FOUND")
        if payment.refunded:
            raise bad("CHARGE_ALREADY_REFUNDED")
        if self.bot_stars < payment.total_amount:
            raise bad("BALANCE_TOO_LOW")
        payment.refunded = True
        user = self.users[payment.user_id]
        user.stars += payment.total_amount
        self.bot_stars -= payment.total_amount
        self.star_transactions.append(
            {
                "id": new_id("rf", 16),
                "amount": payment.total_amount,
                "date": self.now(),
                "receiver": {
                    "type": "user",
                    "transaction_type": "invoice_payment",
                    "user": user.to_tg(),
                    "invoice_payload": payment.payload,
                },
            }
        )
        chat = self.private_chat(user)
        body = {
            "refunded_payment": {
                "currency": "XTR",
                "total_amount": payment.total_amount,
                "invoice_payload": payment.payload,
                "telegram_payment_charge_id": payment.telegram_payment_charge_id,
                "provider_payment_charge_id": payment.provider_payment_charge_id,
            }
        }
        msg = self.store_message(chat, user, body, outgoing=False)
        self.push_update("message", msg.tg)
        return True

    async def api_getStarTransactions(self, p: dict[str, Any]) -> Any:
        offset = p.get("offset") or 0
        limit = min(max(p.get("limit") or 100, 1), 100)
        return {"transactions": self.star_transactions[offset : offset + limit]}

    async def api_getMyStarBalance(self, p: dict[str, Any]) -> Any:
        return {"amount": self.bot_stars}

    async def api_editUserStarSubscription(self, p: dict[str, Any]) -> Any:
        charge = p["telegram_payment_charge_id"]
        sub = self.subscriptions.get(charge) or next(
            (s for s in self.subscriptions.values() if s.last_charge_id == charge), None
        )
        if sub is None or sub.user_id != p["user_id"]:
            raise bad("SUBSCRIPTION_NOT_FOUND")
        if not p["is_canceled"] and sub.canceled_by_user:
            raise bad("SUBSCRIPTION_CANCELED_BY_USER")
        sub.canceled_by_bot = bool(p["is_canceled"])
        return True

    # --- updates: queue, getUpdates, webhook --------------------------------------------------

    def effective_allowed(self) -> set[str]:
        allowed = self.allowed_updates
        if not allowed:
            return {t for t in ALL_UPDATE_TYPES if t not in OPT_IN_UPDATES}
        return set(allowed)

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update for the bot, if the bot asked for this kind."""
        if kind not in self.effective_allowed():
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        if self.config.validate_output:
            errors = self.spec.check("Update", update)
            if errors:
                self.violation("nonconforming_update", kind, errors[:5])
        self.emitted += 1
        self.updates.append(update)
        asyncio.get_running_loop().create_task(self._notify(self.updates_changed))
        return update

    async def api_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        offset = p.get("offset")
        self.confirm(offset)
        limit = min(max(p.get("limit") or 100, 1), 100)
        timeout = min(max(p.get("timeout") or 0, 0), self.config.max_poll_timeout)
        self._poll_generation += 1
        generation = self._poll_generation

        interrupts = self._poll_interrupts

        def ready() -> bool:
            return (
                bool(self.updates)
                or generation != self._poll_generation
                or interrupts != self._poll_interrupts
                or self._stopping
            )

        if not self.updates and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout), self.updates_changed:
                    await self.updates_changed.wait_for(ready)
        if interrupts != self._poll_interrupts:
            return []
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        return self.updates[:limit]

    async def interrupt_polling(self) -> None:
        """End every waiting getUpdates now with no updates (a bot shutting down need not
        wait out its long-poll timeout)."""
        self._poll_interrupts += 1
        await self._notify(self.updates_changed)

    def confirm(self, offset: int | None) -> None:
        """Telegram's offset: every update below it is confirmed and forgotten;
        a negative offset keeps only the last -offset updates."""
        if offset is None:
            return
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    async def api_setWebhook(self, p: dict[str, Any]) -> Any:
        url = p["url"]
        if not url:
            return await self.api_deleteWebhook(p)
        if not url.startswith(("http://", "https://")):
            raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = p.get("secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256 or not all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad("secret token contains unallowed characters")
        max_conn = p.get("max_connections") or 40
        if not 1 <= max_conn <= 100:
            raise bad("bad webhook: max_connections must be between 1 and 100")
        if p.get("drop_pending_updates"):
            self.updates.clear()
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        self.webhook = {"url": url, "secret_token": secret, "max_connections": max_conn}
        self.webhook_errors = {}
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        await self._notify(self.updates_changed)
        self._ensure_webhook_task()
        return True

    async def api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        if p.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = None
        await self._notify(self.updates_changed)
        return True

    async def api_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        out: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook:
            out["max_connections"] = self.webhook["max_connections"]
            if self.allowed_updates:
                out["allowed_updates"] = list(self.allowed_updates)
            if self.webhook_errors:
                out["last_error_date"] = self.webhook_errors["date"]
                out["last_error_message"] = self.webhook_errors["message"]
        return out

    def _ensure_webhook_task(self) -> None:
        if self._runner is None:
            return
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())

    @staticmethod
    def update_key(update: dict[str, Any]) -> Any:
        """Updates about one chat (or user) are delivered in order, one at a time."""
        body = next(v for k, v in update.items() if k != "update_id")
        if "chat" in body:
            return ("chat", body["chat"]["id"])
        if "message" in body and isinstance(body["message"], dict):
            return ("chat", body["message"]["chat"]["id"])
        if "from" in body:
            return ("user", body["from"]["id"])
        return ("update", update["update_id"])

    async def _webhook_loop(self) -> None:
        inflight: dict[int, Any] = {}
        retry_at: dict[int, float] = {}
        attempts: dict[int, int] = {}
        while True:
            if self.webhook is None:
                async with self.updates_changed:
                    await self.updates_changed.wait_for(lambda: self.webhook is not None)
                continue
            busy = set(inflight.values())
            now = time.monotonic()
            next_wake = 1.0
            for update in list(self.updates):
                if len(inflight) >= self.webhook["max_connections"]:
                    break
                uid = update["update_id"]
                key = self.update_key(update)
                if uid in inflight or key in busy:
                    continue
                when = retry_at.get(uid, 0.0)
                if when > now:
                    busy.add(key)  # keep per-chat order behind the failing update
                    next_wake = min(next_wake, when - now)
                    continue
                inflight[uid] = key
                busy.add(key)
                task = asyncio.get_running_loop().create_task(
                    self._deliver(update, inflight, retry_at, attempts)
                )
                self._delivery_tasks.add(task)
                task.add_done_callback(self._delivery_tasks.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(next_wake, 0.01)), self.updates_changed:
                    await self.updates_changed.wait()

    async def _deliver(
        self,
        update: dict[str, Any],
        inflight: dict[int, Any],
        retry_at: dict[int, float],
        attempts: dict[int, int],
    ) -> None:
        uid = update["update_id"]
        webhook = self.webhook
        try:
            if webhook is None:
                return
            if self._http is None:
                self._http = aiohttp.ClientSession()
            headers = {"Content-Type": "application/json"}
            if webhook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
            error: str | None = None
            reply: Any = None
            try:
                async with self._http.post(
                    webhook["url"],
                    data=json.dumps(update),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
                ) as resp:
                    if 200 <= resp.status < 300:
                        body = await resp.read()
                        if body:
                            with contextlib.suppress(ValueError):
                                reply = json.loads(body)
                    else:
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {type(exc).__name__}"
            if error is None:
                self.updates = [u for u in self.updates if u["update_id"] != uid]
                retry_at.pop(uid, None)
                attempts.pop(uid, None)
                if isinstance(reply, dict) and reply.get("method"):
                    await self._webhook_reply(reply)
            else:
                n = attempts.get(uid, 0) + 1
                attempts[uid] = n
                delay = min(
                    self.config.webhook_retry_delay * 2 ** (n - 1),
                    self.config.webhook_max_retry_delay,
                )
                retry_at[uid] = time.monotonic() + delay
                self.webhook_errors = {"date": self.now(), "message": error}
        finally:
            inflight.pop(uid, None)
            await self._notify(self.updates_changed)

    async def _webhook_reply(self, reply: dict[str, Any]) -> None:
        """A bot may answer a webhook request with one method call (Telegram runs it)."""
        name = self.spec.method_name(str(reply.pop("method")))
        if name is None:
            self.violation("unknown_method", "webhook reply", reply)
            return
        result = await self.call(name, reply, from_json=True)
        if not result["ok"]:
            log.info("webhook reply %s failed: %s", name, result["description"])


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


async def _read_params(request: web.Request) -> tuple[dict[str, Any], bool]:
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params, False
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        params.update(body)
        return params, True
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = FileUpload(
                filename=value.filename, content_type=value.content_type, data=value.file.read()
            )
        else:
            params[key] = value
    # aiogram (and Telegram's docs) name an upload by "attach://<part>" in the field itself.
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://") :]
            if isinstance(params.get(part), FileUpload):
                params[key] = params.pop(part)
    return params, False
