"""The learner's side in Python: drive a sandbox (in this process or another) over HTTP.

    async with SandboxClient(url) as sandbox:
        alice = await sandbox.create_user(first_name="Alice", language_code="en")
        await alice.send("/start")
        menu = await alice.wait_for_message(contains="Welcome")
        await alice.click("Catalog")
        card = await alice.wait_for_message(has_button="Buy")

Waiting is deterministic: every action records the sandbox's change counter, and
``wait_for_message`` returns the first bot message created or edited after the user's
last action that matches — no sleeps, no polling intervals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


class SandboxClientError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass
class Message:
    """A message as the user sees it (edits applied)."""

    raw: dict[str, Any]
    seq: int = 0
    outgoing: bool = True  # sent by the bot
    edited: bool = False
    deleted: bool = False

    @property
    def message_id(self) -> int:
        return int(self.raw["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.raw["chat"]["id"])

    @property
    def text(self) -> str:
        poll = self.raw.get("poll") or {}
        return str(self.raw.get("text") or self.raw.get("caption") or poll.get("question") or "")

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.raw.get("reply_markup") or {}
        return list(markup.get("inline_keyboard") or [])

    @property
    def buttons(self) -> list[str]:
        return [b["text"] for row in self.inline_keyboard for b in row]

    def button(self, label: str) -> dict[str, Any] | None:
        for row in self.inline_keyboard:
            for b in row:
                if b["text"] == label:
                    return b
        return None

    @property
    def poll(self) -> dict[str, Any] | None:
        return self.raw.get("poll")

    @property
    def invoice(self) -> dict[str, Any] | None:
        return self.raw.get("invoice")

    @property
    def successful_payment(self) -> dict[str, Any] | None:
        return self.raw.get("successful_payment")

    @property
    def protected(self) -> bool:
        return bool(self.raw.get("has_protected_content"))

    def __contains__(self, needle: str) -> bool:
        return needle in self.text

    def __repr__(self) -> str:
        who = "bot" if self.outgoing else "user"
        extra = f" buttons={self.buttons}" if self.buttons else ""
        return f"<Message {self.message_id} from {who}: {self.text[:60]!r}{extra}>"


@dataclass
class ClickResult:
    kind: str  # callback | url | pay | copy_text | message | ...
    data: dict[str, Any]
    user: SandboxUser

    async def answer(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until the bot answers the callback query; returns its text/show_alert/url."""
        query_id = self.data["callback_query_id"]
        deadline = time.monotonic() + timeout
        client = self.user.client
        while True:
            got = await client.request("GET", f"/callbacks/{query_id}")
            if got["answered"]:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"callback query {query_id} was not answered in {timeout}s")
            await client.wait(got["seq"], left)


@dataclass
class PaymentOutcome:
    status: str  # paid | failed
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    @property
    def reason(self) -> str | None:
        return self.data.get("reason")

    @property
    def charge_id(self) -> str | None:
        return self.data.get("telegram_payment_charge_id")


class SandboxUser:
    def __init__(self, client: SandboxClient, info: dict[str, Any]) -> None:
        self.client = client
        self.info = info
        self.id: int = int(info["id"])
        self.first_name: str = info["first_name"]
        self.mark = 0  # the sandbox's change counter at this user's last action

    def __repr__(self) -> str:
        return f"<SandboxUser {self.id} {self.first_name}>"

    async def _act(
        self, path: str, payload: dict[str, Any] | aiohttp.FormData | None = None
    ) -> dict[str, Any]:
        # The mark is taken before the action: whatever the bot does in reply is newer.
        before = await self.client.seq()
        result = await self.client.request("POST", f"/users/{self.id}{path}", payload or {})
        self.mark = before
        return result

    # --- doing ---------------------------------------------------------------------------

    async def send(self, text: str, chat: int | SandboxChat | None = None) -> Message:
        """Write to the bot (or in a group the user belongs to)."""
        data = await self._act("/send", {"text": text, "chat_id": _chat_id(chat)})
        return Message(data["message"], data["seq"], outgoing=False)

    async def send_media(
        self,
        kind: str,
        data: bytes,
        filename: str,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
        duration: int | None = None,
        chat: int | SandboxChat | None = None,
    ) -> Message:
        """Send a photo, document or voice message (``kind``) as a Telegram app would; the
        message carries a file_id the bot can send again."""
        form = aiohttp.FormData()
        form.add_field("kind", kind)
        form.add_field("file", data, filename=filename, content_type=mime_type)
        for name, value in (("caption", caption), ("duration", duration),
                            ("chat_id", _chat_id(chat))):  # fmt: skip
            if value is not None:
                form.add_field(name, str(value))
        result = await self._act("/media", form)
        return Message(result["message"], result["seq"], outgoing=False)

    async def send_photo(self, data: bytes, caption: str | None = None, **kw: Any) -> Message:
        return await self.send_media("photo", data, "photo.png", caption=caption, **kw)

    async def send_document(
        self, data: bytes, filename: str, caption: str | None = None, **kw: Any
    ) -> Message:
        return await self.send_media("document", data, filename, caption=caption, **kw)

    async def send_voice(self, data: bytes, duration: int = 1, **kw: Any) -> Message:
        kw.setdefault("mime_type", "audio/ogg")
        return await self.send_media("voice", data, "voice.ogg", duration=duration, **kw)

    async def send_poll(
        self,
        question: str,
        options: list[str],
        *,
        correct_option_id: int | None = None,
        explanation: str | None = None,
        forwarded: bool = False,
        chat: int | SandboxChat | None = None,
    ) -> Message:
        """Send (or forward, ``forwarded=True``) a poll; with ``correct_option_id`` a quiz."""
        payload: dict[str, Any] = {"question": question, "options": options,
                                   "chat_id": _chat_id(chat), "forwarded": forwarded}  # fmt: skip
        if correct_option_id is not None:
            payload.update(type="quiz", correct_option_ids=[correct_option_id])
        if explanation:
            payload["explanation"] = explanation
        data = await self._act("/poll", payload)
        return Message(data["message"], data["seq"], outgoing=False)

    async def vote(self, message: Message, *option_ids: int) -> dict[str, Any]:
        """Tap options of the poll in ``message`` (none: take the vote back). For a quiz the
        answer says ``correct`` and carries the explanation, as the app shows them."""
        return await self._act(
            "/vote",
            {"chat_id": message.chat_id, "message_id": message.message_id,
             "option_ids": list(option_ids)},
        )  # fmt: skip

    async def read(self, chat: int | SandboxChat | None = None) -> None:
        """Open the chat: everything in it counts as read."""
        await self.client.request("POST", f"/users/{self.id}/read", {"chat_id": _chat_id(chat)})

    async def unread(self) -> dict[int, int]:
        """Unread messages per chat id, as the chat list's badges show them."""
        return {int(c["id"]): int(c["unread"]) for c in (await self.state())["chats"]}

    async def edit(self, message: Message, text: str) -> Message:
        """Edit one of this user's own text messages (the bot gets edited_message)."""
        data = await self._act(
            "/edit", {"chat_id": message.chat_id, "message_id": message.message_id, "text": text}
        )
        return Message(data["message"], data["seq"], outgoing=False, edited=True)

    async def click(
        self,
        label: str,
        message: Message | None = None,
        chat: int | SandboxChat | None = None,
    ) -> ClickResult:
        """Press the inline button with this label on ``message`` or, by default, on the newest
        message that has it."""
        payload: dict[str, Any] = {"label": label, "chat_id": _chat_id(chat)}
        if message is not None:
            payload["message_id"] = message.message_id
            payload["chat_id"] = message.chat_id
        data = await self._act("/press", payload)
        return ClickResult(data["kind"], data, self)

    async def press_reply_button(self, label: str, **extra: Any) -> Message:
        """Press a reply-keyboard button (request_chat: pass shared_chat_id=...)."""
        data = await self._act("/press", {"label": label, "reply_keyboard": True, **extra})
        return Message(data["message"], data["seq"], outgoing=False)

    async def pay(
        self, invoice: Message | str, *, fail: str | None = None, timeout: float = 30.0
    ) -> PaymentOutcome:
        """Pay an invoice message or an invoice link. ``fail="card_declined"`` makes the payment
        fail before the bot hears of it. Returns when the payment is done or failed."""
        if isinstance(invoice, str):
            payload: dict[str, Any] = {"link": invoice}
        else:
            payload = {"chat_id": invoice.chat_id, "message_id": invoice.message_id}
        if fail:
            payload["fail"] = fail
        data = await self._act("/pay", payload)
        return PaymentOutcome(data["status"], data)

    async def join(self, link: str) -> dict[str, Any]:
        """Open an invite link: {"status": "joined" | "requested" | "failed" | ...}."""
        return await self._act("/join", {"link": link})

    async def leave(self, chat: int | SandboxChat) -> None:
        await self._act("/leave", {"chat_id": _chat_id(chat)})

    async def block(self) -> None:
        await self._act("/block")

    async def unblock(self) -> None:
        await self._act("/unblock")

    async def inline(self, query: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Type @bot query; returns the bot's answerInlineQuery results."""
        data = await self._act("/inline", {"query": query})
        query_id = data["inline_query_id"]
        deadline = time.monotonic() + timeout
        while True:
            got = await self.client.request("GET", f"/inline/{query_id}")
            if got["answered"]:
                return list(got["results"])
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the bot did not answer the inline query")
            await self.client.wait(got["seq"], left)

    async def set_stars(self, stars: int) -> None:
        await self.client.request("POST", f"/users/{self.id}/stars", {"stars": stars})

    async def referred_by(self, affiliate: SandboxUser | None, per_mille: int = 100) -> None:
        """Telegram's Stars affiliate programme brought this user: their Stars payments
        carry the affiliate's commission (None: no affiliate any more)."""
        ref = None if affiliate is None else {"user_id": affiliate.id, "per_mille": per_mille}
        await self.client.request("POST", f"/users/{self.id}/stars", {"affiliate": ref})

    async def create_chat(
        self,
        title: str,
        type: str = "supergroup",
        *,
        username: str | None = None,
        add_bot: dict[str, Any] | bool | None = None,
    ) -> SandboxChat:
        """A group/supergroup/channel this user owns; ``add_bot={"rights": {...}}`` adds the
        bot as administrator (``{"status": "member"}`` as a member)."""
        return await self.client.create_chat(title, self, type, username=username, add_bot=add_bot)

    # --- seeing ----------------------------------------------------------------------------

    async def state(self) -> dict[str, Any]:
        return await self.client.request("GET", f"/users/{self.id}")

    async def messages(self, chat: int | SandboxChat | None = None) -> list[Message]:
        """Every message of the chat in order, edits applied, deleted ones gone."""
        return await self.client.messages(_chat_id(chat) or self.id)

    async def last_message(self, chat: int | SandboxChat | None = None) -> Message | None:
        msgs = [m for m in await self.messages(chat) if m.outgoing]
        return msgs[-1] if msgs else None

    async def wait_for_message(
        self,
        contains: str | None = None,
        *,
        has_button: str | None = None,
        predicate: Callable[[Message], bool] | None = None,
        chat: int | SandboxChat | None = None,
        timeout: float = 5.0,
        since: int | None = None,
        from_bot: bool = True,
    ) -> Message:
        """The first message from the bot, new or edited since this user's last action, that
        matches every condition given."""
        chat_id = _chat_id(chat) or self.id
        after = self.mark if since is None else since

        def matches(m: Message) -> bool:
            if from_bot and not m.outgoing:
                return False
            if contains is not None and contains not in m.text:
                return False
            if has_button is not None and has_button not in m.buttons:
                return False
            return predicate is None or predicate(m)

        deadline = time.monotonic() + timeout
        while True:
            seq = await self.client.seq()
            msgs = await self.client.messages(chat_id, after_seq=after)
            hits = [m for m in msgs if matches(m)]
            if hits:
                return min(hits, key=lambda m: m.seq)
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [m for m in msgs if m.outgoing]
                raise TimeoutError(
                    f"no bot message matching contains={contains!r} has_button={has_button!r} "
                    f"within {timeout}s; since the last action the bot showed: {seen}"
                )
            await self.client.wait(seq, left)

    async def wait_for_idle(self, quiet: float = 0.3, timeout: float = 5.0) -> None:
        """Until nothing has changed in the sandbox for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        seq = await self.client.seq()
        while time.monotonic() < deadline:
            new = await self.client.wait(seq, quiet)
            if new == seq:
                return
            seq = new


@dataclass
class SandboxChat:
    client: SandboxClient
    info: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.info["id"])

    @property
    def title(self) -> str:
        return str(self.info.get("title", ""))

    async def add_bot(
        self, rights: dict[str, bool] | None = None, status: str = "administrator"
    ) -> None:
        data = await self.client.request(
            "POST", f"/chats/{self.id}/bot", {"status": status, "rights": rights or {}}
        )
        self.info = data["chat"]

    async def refresh(self) -> dict[str, Any]:
        self.info = (await self.client.request("GET", f"/chats/{self.id}"))["chat"]
        return self.info

    async def status_of(self, user: SandboxUser | int) -> str:
        uid = user.id if isinstance(user, SandboxUser) else user
        info = await self.refresh()
        for m in info["members"]:
            if m["user"]["id"] == uid:
                return str(m["status"])
        return "left"

    async def messages(self) -> list[Message]:
        return await self.client.messages(self.id)

    async def post(self, user: SandboxUser, text: str) -> Message:
        data = await self.client.request(
            "POST", f"/chats/{self.id}/post", {"user_id": user.id, "text": text}
        )
        return Message(data["message"], data["seq"], outgoing=False)


class SandboxClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | aiohttp.FormData | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        url = f"{self.base_url}/sandbox/api{path}"
        query = {k: str(v) for k, v in params.items() if v is not None}
        body: dict[str, Any] = (
            {"data": payload} if isinstance(payload, aiohttp.FormData) else {"json": payload}
        )
        async with self.session.request(method, url, params=query, **body) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400 or not data.get("ok", False):
                raise SandboxClientError(resp.status, data.get("error", str(data)))
            return dict(data)

    # --- the world -------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        return await self.request("GET", "/info")

    async def seq(self) -> int:
        return int((await self.request("GET", "/info"))["seq"])

    async def wait(self, seq: int, timeout: float) -> int:
        """Until the sandbox changes after ``seq`` (or the timeout); returns the new seq."""
        data = await self.request("GET", "/wait", seq=seq, timeout=max(timeout, 0.01))
        return int(data["seq"])

    async def configure(self, **settings: Any) -> dict[str, Any]:
        """limits=None|{...}|True, latency=, pre_checkout_timeout=, advance_time=seconds, ..."""
        if settings.get("limits") is True:
            settings["limits"] = {}
        return await self.request("POST", "/config", settings)

    async def reset(self) -> None:
        await self.request("POST", "/reset")

    async def violations(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/violations"))["violations"])

    async def clear_violations(self) -> None:
        await self.request("DELETE", "/violations")

    async def create_user(
        self,
        first_name: str = "Alice",
        language_code: str | None = "en",
        *,
        id: int | None = None,
        username: str | None = None,
        last_name: str | None = None,
        stars: int | None = None,
    ) -> SandboxUser:
        payload: dict[str, Any] = {
            "first_name": first_name,
            "language_code": language_code,
            "username": username,
            "last_name": last_name,
        }
        if id is not None:
            payload["id"] = id
        if stars is not None:
            payload["stars"] = stars
        data = await self.request("POST", "/users", payload)
        return SandboxUser(self, data["user"])

    async def user(self, user_id: int) -> SandboxUser:
        data = await self.request("GET", f"/users/{user_id}")
        return SandboxUser(self, data["user"])

    async def create_chat(
        self,
        title: str,
        creator: SandboxUser,
        type: str = "supergroup",
        *,
        username: str | None = None,
        add_bot: dict[str, Any] | bool | None = None,
    ) -> SandboxChat:
        payload: dict[str, Any] = {
            "title": title,
            "type": type,
            "creator_id": creator.id,
            "username": username,
        }
        if add_bot:
            payload["add_bot"] = add_bot if isinstance(add_bot, dict) else {}
        data = await self.request("POST", "/chats", payload)
        return SandboxChat(self, data["chat"])

    async def messages(self, chat_id: int, after_seq: int | None = None) -> list[Message]:
        data = await self.request("GET", f"/chats/{chat_id}/messages", after_seq=after_seq)
        return [
            Message(m["message"], m["seq"], m["outgoing"], m["edited"], m["deleted"])
            for m in data["messages"]
        ]

    async def renew_subscriptions(self, user: SandboxUser | None = None) -> list[dict[str, Any]]:
        payload = {"user_id": user.id} if user else {}
        return list((await self.request("POST", "/subscriptions/renew", payload))["renewals"])

    async def pending_updates(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/updates"))["updates"])

    async def wait_until(
        self, check: Callable[[], Any], timeout: float = 5.0
    ) -> Any:  # pragma: no cover - convenience
        """Re-evaluate an async ``check`` on every sandbox change until it returns truthy."""
        deadline = time.monotonic() + timeout
        while True:
            seq = await self.seq()
            result = await check()
            if result:
                return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met")
            await self.wait(seq, min(left, 1.0))
            await asyncio.sleep(0)


def _chat_id(chat: int | SandboxChat | None) -> int | None:
    if chat is None:
        return None
    return chat.id if isinstance(chat, SandboxChat) else int(chat)
