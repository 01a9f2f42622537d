"""The sandbox's core: the world's memory every Bot API area shares, and the method dispatch.

It holds users, chats and their messages, the update queue, the clock, change notification,
flood limits and the violations log; ``call`` validates a request against the spec and runs
the area's ``api_<method>``. The areas (``sandbox/api/``) build on it; the HTTP server
(``server.py``) and the control API (``control.py``) sit on top. Nothing here imports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sandbox.limits import PAID_BROADCAST_TENTHS, SandboxConfig, TokenBucket, retry_after
from sandbox.spec import Spec, load_spec
from sandbox.state import ChatState, MemberState, StoredMessage, UserState

log = logging.getLogger(__name__)

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
SUBSCRIPTION_PERIOD = 2_592_000
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


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


class SandboxCore:
    """The shared state and primitives. Each area adds its own state by extending
    ``reset`` (and ``shutdown`` for what it must cancel), calling ``super()`` first."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.spec: Spec = load_spec()
        self.token = self.config.token
        self.bot_id = int(self.token.split(":", 1)[0])
        self.base_url = ""
        # True while the HTTP server runs: background delivery (webhooks) needs a live loop.
        self.serving = False
        self.reset()

    def reset(self) -> None:
        """Forget everything but the configuration."""
        cfg = self.config
        self.bot_user = UserState(
            self.bot_id, cfg.bot_first_name, username=cfg.bot_username, is_bot=True
        )
        self.users: dict[int, UserState] = {self.bot_id: self.bot_user}
        self.chats: dict[int, ChatState] = {}
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 10_000
        self.allowed_updates: list[str] | None = None
        self.violations: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.emitted = 0
        # Answers per method and HTTP code, e.g. stats["sendMessage"][429] (benchmarks).
        self.stats: dict[str, Counter[int]] = defaultdict(Counter)
        self.seq = 0
        self.time_offset = 0
        self._stopping = False
        self._changed: asyncio.Condition | None = None
        self._updates_changed: asyncio.Condition | None = None
        # The bot's Stars balance (payments add to it) and its fraction in tenths of a
        # Star, which paid broadcasts spend 0.1 Star at a time.
        self.bot_stars = 0
        self.bot_star_tenths = 0
        self.paid_broadcast_billed = 0
        self.reset_limits()

    def reset_limits(self) -> None:
        """Start the flood limits afresh (after the configuration changed)."""
        self._limits_global: TokenBucket | None = None
        self._private_buckets: dict[int, TokenBucket] = {}
        self._group_buckets: dict[int, TokenBucket] = {}
        self._limits_paid: TokenBucket | None = None

    def bot_balance_tenths(self) -> int:
        return self.bot_stars * 10 + self.bot_star_tenths

    def set_bot_balance_tenths(self, tenths: int) -> None:
        self.bot_stars, self.bot_star_tenths = divmod(max(0, tenths), 10)

    async def shutdown(self) -> None:
        """Wake long polls (getUpdates, /sandbox/api/wait) so the HTTP server can close now."""
        self._stopping = True
        await self._notify(self.changed)
        await self._notify(self.updates_changed)

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

    # --- method dispatch ----------------------------------------------------------------------

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

    def check_rate(self, chat: ChatState, paid: bool = False) -> None:
        """Telegram's flood limits. `paid` (allow_paid_broadcast): a message the free global
        rate has room for goes free; above it, up to `paid_per_second` more are billed
        0.1 Star each, refused with BALANCE_TOO_LOW when the bot cannot pay."""
        limits = self.config.limits
        if limits is None:
            return
        if self._limits_global is None:
            self._limits_global = TokenBucket(limits.global_per_second, limits.global_burst)
        chat_buckets: list[TokenBucket] = []
        if chat.type == "private":
            b = self._private_buckets.get(chat.id)
            if b is None:
                b = TokenBucket(limits.private_per_second, limits.private_burst)
                self._private_buckets[chat.id] = b
            chat_buckets.append(b)
        elif chat.type in ("group", "supergroup"):
            b = self._group_buckets.get(chat.id)
            if b is None:
                b = TokenBucket(limits.group_per_minute / 60.0, limits.group_burst)
                self._group_buckets[chat.id] = b
            chat_buckets.append(b)
        billed = False
        buckets = [self._limits_global, *chat_buckets]
        if paid:
            # Every paid-broadcast message counts against the 1000/s; it also takes a free
            # token when there is one (not billed), else it is billed.
            if self._limits_paid is None:
                self._limits_paid = TokenBucket(limits.paid_per_second, limits.paid_burst)
            billed = self._limits_global.wait_time() > 0
            buckets = [self._limits_paid, *chat_buckets]
            if not billed:
                buckets.append(self._limits_global)
        wait = max(b.wait_time() for b in buckets)
        if wait > 0:
            after = retry_after(wait)
            raise ApiError(429, f"Too Many Requests: retry after {after}", retry_after=after)
        if billed:
            balance = self.bot_balance_tenths()
            if balance < PAID_BROADCAST_TENTHS:
                raise bad("BALANCE_TOO_LOW")
            self.set_bot_balance_tenths(balance - PAID_BROADCAST_TENTHS)
            self.paid_broadcast_billed += 1
        for b in buckets:
            b.take()

    # --- the record: messages and the update queue ------------------------------------------

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
