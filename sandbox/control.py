"""The learner's side: the sandbox control API (``/sandbox/api/...``) and the web chat.

Everything a person does in a Telegram app — write, press a button, pay, open an invite
link, block the bot, create a group — is a POST here; what the bot showed them is a GET.
Every answer carries ``seq``, the sandbox's change counter, so a client can wait for
"anything after my action" without sleeping (``GET /sandbox/api/wait?seq=N``).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.api import Sandbox
from sandbox.api.files import image_size
from sandbox.api.messages import CAPTION_LIMIT
from sandbox.api.polls import VoteError
from sandbox.core import ApiError
from sandbox.formatting import command_entities, utf16_len
from sandbox.limits import RateLimits
from sandbox.spec import FileUpload
from sandbox.state import DEFAULT_BOT_RIGHTS, ChatState, StoredMessage, UserState, new_id

API = "/sandbox/api"
STATIC_DIR = Path(__file__).parent / "static"
# What a person can send from the web chat besides text.
USER_MEDIA = ("photo", "document", "voice")
_user_ids = itertools.count(100_001)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
}


def ControlError(status: int, message: str) -> web.HTTPException:
    """The control API's error: HTTP status and {"ok": false, "error": message}."""
    return _ERRORS[status](
        text=json.dumps({"ok": False, "error": message}), content_type="application/json"
    )


def ok(server: Sandbox, **data: Any) -> web.Response:
    data.setdefault("ok", True)
    data["seq"] = server.seq
    return web.json_response(data)


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise ControlError(400, "body must be JSON") from None
    if not isinstance(data, dict):
        raise ControlError(400, "body must be a JSON object")
    return data


def view(m: StoredMessage) -> dict[str, Any]:
    return {
        "message": m.tg,
        "seq": m.seq,
        "outgoing": m.outgoing,
        "edited": m.edited,
        "deleted": m.deleted,
    }


# --- actions (also usable in-process) ------------------------------------------------------


def create_user(server: Sandbox, data: dict[str, Any]) -> UserState:
    uid = int(data.get("id") or next(_user_ids))
    while not data.get("id") and uid in server.users:
        uid = next(_user_ids)
    if uid in server.users:
        user = server.users[uid]
        if user.is_bot:
            raise ControlError(409, "that id is the bot's")
        return user
    user = UserState(
        id=uid,
        first_name=str(data.get("first_name") or f"User{uid}"),
        last_name=data.get("last_name"),
        username=data.get("username"),
        language_code=data.get("language_code", "en"),
        is_premium=bool(data.get("is_premium", False)),
        stars=int(data.get("stars", server.config.default_stars)),
    )
    server.users[uid] = user
    server.bump()
    return user


def get_user(server: Sandbox, request: web.Request) -> UserState:
    try:
        uid = int(request.match_info["user_id"])
    except ValueError:
        raise ControlError(404, "no such user") from None
    user = server.users.get(uid)
    if user is None or user.is_bot:
        raise ControlError(404, "no such user")
    return user


def target_chat(server: Sandbox, user: UserState, chat_id: Any) -> ChatState:
    if chat_id is None or int(chat_id) == user.id:
        return server.private_chat(user)
    chat = server.chats.get(int(chat_id))
    if chat is None:
        raise ControlError(404, "no such chat")
    if not chat.member(user.id).is_member:
        raise ControlError(403, "the user is not a member of that chat")
    return chat


def user_message(
    server: Sandbox, user: UserState, chat: ChatState, body_: dict[str, Any]
) -> StoredMessage:
    """A message from the user; the bot gets it when it can see the chat."""
    if chat.type == "private":
        if user.blocked:
            raise ControlError(409, "the user blocked the bot; unblock first")
        user.started = True
    elif chat.type == "channel":
        raise ControlError(400, "users do not write in channels")
    msg = server.store_message(chat, user, body_, outgoing=False)
    # Writing in a chat reads it, as in Telegram's apps.
    user.read_up_to[chat.id] = msg.tg["message_id"]
    if chat.type == "private" or server.bot_sees(chat, msg.tg):
        server.push_update("message", msg.tg)
    return msg


def send_text(
    server: Sandbox, user: UserState, chat: ChatState, text: str, reply_to: int | None = None
) -> StoredMessage:
    if not text:
        raise ControlError(400, "text is empty")
    body_: dict[str, Any] = {"text": text}
    entities = command_entities(text)
    if entities:
        body_["entities"] = entities
    if reply_to is not None:
        target = server.message(chat, reply_to)
        if target is not None:
            body_["reply_to_message"] = {k: v for k, v in target.tg.items()
                                         if k != "reply_to_message"}  # fmt: skip
    # A one-time reply keyboard hides after it is used.
    if (
        chat.type == "private"
        and user.reply_keyboard
        and user.reply_keyboard.get("one_time_keyboard")
    ):
        labels = {b.get("text") for row in user.reply_keyboard["keyboard"] for b in row}
        if text in labels:
            user.reply_keyboard = None
    return user_message(server, user, chat, body_)


def send_media(
    server: Sandbox,
    user: UserState,
    chat: ChatState,
    kind: str,
    upload: FileUpload,
    caption: str = "",
    duration: int = 0,
) -> StoredMessage:
    """A photo, document or voice message from the user, as Telegram delivers it: the file
    gets a file_id the bot can send again (sendPhoto/sendDocument/sendVoice, copyMessage)."""
    if kind not in USER_MEDIA:
        raise ControlError(400, "kind: photo, document or voice")
    if not upload.data:
        raise ControlError(400, "the file is empty")
    if utf16_len(caption) > CAPTION_LIMIT:
        raise ControlError(400, f"a caption has at most {CAPTION_LIMIT} characters")
    stored = server.store_upload(upload, kind)
    facts: dict[str, Any] = {"duration": duration}
    size = image_size(upload.data) if kind == "photo" else None
    if size is not None:
        facts["width"], facts["height"] = size
    body_: dict[str, Any] = {kind: server.media_object(stored, kind, facts)}
    if caption:
        body_["caption"] = caption
    return user_message(server, user, chat, body_)


def send_poll(
    server: Sandbox, user: UserState, chat: ChatState, data: dict[str, Any]
) -> StoredMessage:
    """A poll or quiz the person made in the app (``forwarded``: one they forward), e.g. a
    creator handing the bot a quiz. In the private chat with the bot the bot sees the answer."""
    try:
        poll = server.new_poll(data, sent_by_bot=False)
    except ApiError as exc:
        raise ControlError(400, exc.description.removeprefix("Bad Request: ")) from None
    body_: dict[str, Any] = {"poll": poll.to_tg(with_answer=chat.type == "private")}
    if data.get("forwarded"):
        body_["forward_origin"] = {"type": "user", "date": server.now(),
                                   "sender_user": user.to_tg()}  # fmt: skip
    msg = user_message(server, user, chat, body_)
    msg.meta["poll_id"] = poll.id
    return msg


def vote(server: Sandbox, user: UserState, chat: ChatState, data: dict[str, Any]) -> dict[str, Any]:
    """The person taps options of a poll (``option_ids``; empty takes a vote back)."""
    if chat.type == "private" and user.blocked:
        raise ControlError(409, "the user blocked the bot; unblock first")
    raw = data.get("option_ids")
    if not isinstance(raw, list) or not all(isinstance(i, int) for i in raw):
        raise ControlError(400, "option_ids: a list of option numbers")
    try:
        return server.vote(user, chat, int(data.get("message_id") or 0), raw)
    except VoteError as exc:
        raise ControlError(exc.status, exc.message) from None


async def media_form(request: web.Request) -> dict[str, Any]:
    """The multipart form of a media message: kind, file, and caption/chat_id/duration."""
    if not request.content_type.startswith("multipart/"):
        raise ControlError(400, "send the file as multipart/form-data")
    form = await request.post()
    field_ = form.get("file")
    if not isinstance(field_, web.FileField):
        raise ControlError(400, "a file field named 'file' is required")
    data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    data["file"] = FileUpload(
        filename=field_.filename, content_type=field_.content_type, data=field_.file.read()
    )
    return data


def unread_count(user: UserState, chat: ChatState) -> int:
    """Messages in the chat after the last one the user read, not counting their own."""
    last = user.read_up_to.get(chat.id, 0)
    count = 0
    for message_id, m in reversed(chat.messages.items()):
        if message_id <= last:
            break
        if not m.deleted and m.tg.get("from", {}).get("id") != user.id:
            count += 1
    return count


def mark_read(server: Sandbox, user: UserState, chat: ChatState) -> None:
    newest = next(reversed(chat.messages), 0)
    if user.read_up_to.get(chat.id, 0) < newest:
        user.read_up_to[chat.id] = newest
        server.bump()  # other open pages redraw their badges


def find_button(
    server: Sandbox, chat: ChatState, data: dict[str, Any]
) -> tuple[StoredMessage, dict[str, Any]]:
    """The button to press: by message id and label/row/col, or the newest message with the
    label (exact text first, then a unique case-insensitive substring)."""
    label = data.get("label")
    if data.get("message_id") is not None:
        msg = server.message(chat, int(data["message_id"]))
        if msg is None:
            raise ControlError(404, "no such message")
        candidates = [msg]
    else:
        candidates = sorted(
            (m for m in chat.messages.values() if not m.deleted and m.tg.get("reply_markup")),
            key=lambda m: -m.tg["message_id"],
        )
    for exact in (True, False):
        for msg in candidates:
            rows = msg.tg.get("reply_markup", {}).get("inline_keyboard", [])
            if data.get("row") is not None and label is None:
                try:
                    return msg, rows[int(data["row"])][int(data.get("col", 0))]
                except IndexError:
                    raise ControlError(404, "no button at that position") from None
            buttons = [b for row in rows for b in row]
            if exact:
                hits = [b for b in buttons if b.get("text") == label]
            else:
                needle = str(label or "").lower()
                hits = [b for b in buttons if needle and needle in b.get("text", "").lower()]
                if len(hits) > 1:
                    raise ControlError(409, f"several buttons match {label!r}")
            if hits:
                return msg, hits[0]
    raise ControlError(404, f"no inline button {label!r}")


def press(
    server: Sandbox, user: UserState, chat: ChatState, data: dict[str, Any]
) -> dict[str, Any]:
    msg, button = find_button(server, chat, data)
    if "callback_data" in button:
        if chat.type == "private" and user.blocked:
            raise ControlError(409, "the user blocked the bot; unblock first")
        query_id = new_id("", 12)
        query = {
            "id": query_id,
            "from": user.to_tg(),
            "message": msg.tg,
            "chat_instance": str(abs(hash((chat.id, server.bot_id))) % 10**18),
            "data": button["callback_data"],
        }
        server.callback_queries[query_id] = {
            "answered": False,
            "text": None,
            "show_alert": False,
            "url": None,
            "message_id": msg.tg["message_id"],
            "chat_id": chat.id,
        }
        server.push_update("callback_query", query)
        server.bump()
        return {"kind": "callback", "callback_query_id": query_id}
    if button.get("pay"):
        return {"kind": "pay", "message_id": msg.tg["message_id"]}
    if "url" in button:
        return {"kind": "url", "url": button["url"]}
    if "copy_text" in button:
        return {"kind": "copy_text", "text": button["copy_text"].get("text")}
    if "switch_inline_query_current_chat" in button:
        return {"kind": "switch_inline", "query": button["switch_inline_query_current_chat"]}
    return {"kind": "unsupported", "button": button}


def press_reply_button(
    server: Sandbox, user: UserState, label: str, data: dict[str, Any]
) -> StoredMessage:
    """A reply-keyboard button: its text, or what its request_* asks for."""
    kb = user.reply_keyboard
    button = None
    if kb:
        for row in kb.get("keyboard", []):
            for b in row:
                text = b if isinstance(b, str) else b.get("text")
                if text == label:
                    button = b if isinstance(b, dict) else {"text": b}
    if button is None:
        raise ControlError(404, f"no reply keyboard button {label!r}")
    chat = server.private_chat(user)
    if "request_chat" in button:
        req = button["request_chat"]
        shared_id = data.get("shared_chat_id")
        if shared_id is None:
            raise ControlError(400, "say which chat to share: shared_chat_id")
        shared = server.chats.get(int(shared_id))
        if shared is None:
            raise ControlError(404, "no such chat")
        if bool(req.get("chat_is_channel")) != (shared.type == "channel"):
            raise ControlError(400, "that chat does not fit the request")
        info: dict[str, Any] = {"request_id": req["request_id"], "chat_id": shared.id}
        if req.get("request_title") and shared.title:
            info["title"] = shared.title
        if req.get("request_username") and shared.username:
            info["username"] = shared.username
        return user_message(server, user, chat, {"chat_shared": info})
    if "request_users" in button:
        req = button["request_users"]
        ids = [int(i) for i in data.get("shared_user_ids") or []]
        users = [{"user_id": i} for i in ids if i in server.users]
        return user_message(server, user, chat, {"users_shared": {
            "request_id": req["request_id"], "users": users}})  # fmt: skip
    if button.get("request_contact"):
        contact = {
            "phone_number": data.get("phone_number", "+10000000000"),
            "first_name": user.first_name,
            "user_id": user.id,
        }
        return user_message(server, user, chat, {"contact": contact})
    return send_text(server, user, chat, label)


def set_blocked(server: Sandbox, user: UserState, blocked: bool) -> None:
    if user.blocked == blocked:
        return
    chat = server.private_chat(user)
    user.blocked = blocked
    status = "kicked" if blocked else "member"
    server.set_member(chat, server.bot_id, status, actor_id=user.id)
    if not blocked:
        user.started = True


def add_bot(server: Sandbox, chat: ChatState, data: dict[str, Any]) -> None:
    actor = next(m.user_id for m in chat.members.values() if m.status == "creator")
    status = data.get("status", "administrator")
    rights = dict(DEFAULT_BOT_RIGHTS)
    rights.update({k: bool(v) for k, v in (data.get("rights") or {}).items()})
    if status not in ("administrator", "member", "left", "kicked"):
        raise ControlError(400, "status: administrator, member, left or kicked")
    if chat.type == "channel" and status == "member":
        raise ControlError(400, "a bot joins a channel only as an administrator")
    server.set_member(
        chat, server.bot_id, status, actor_id=actor,
        rights=rights if status == "administrator" else None,
    )  # fmt: skip


def chat_view(server: Sandbox, chat: ChatState, viewer: UserState | None) -> dict[str, Any]:
    out = chat.to_tg()
    if chat.type == "private":
        out["title"] = server.bot_user.first_name
    out["members"] = [
        {"user": server.users[m.user_id].to_tg(), "status": m.status, "rights": m.rights}
        for m in chat.members.values()
    ]
    if viewer is not None:
        out["my_status"] = chat.member(viewer.id).status
        out["unread"] = unread_count(viewer, chat)
    out["join_requests"] = [r.user_id for r in chat.join_requests.values()]
    return out


# --- routes -------------------------------------------------------------------------------


def setup_control_routes(app: web.Application, server: Sandbox) -> None:
    r = app.router

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    async def info(request: web.Request) -> web.Response:
        cfg = server.config
        return ok(
            server,
            bot=server.bot_user.to_tg(),
            api_url=server.base_url,
            spec_version=server.spec.version,
            limits=None if cfg.limits is None else vars(cfg.limits),
            latency=cfg.latency,
            pre_checkout_timeout=cfg.pre_checkout_timeout,
            webhook=server.webhook["url"] if server.webhook else None,
            pending_updates=len(server.updates),
            time_offset=server.time_offset,
            stats={method: dict(codes) for method, codes in server.stats.items()},
        )

    async def set_config(request: web.Request) -> web.Response:
        data = await body(request)
        cfg = server.config
        if "limits" in data:
            lim = data["limits"]
            if lim is None or lim is False:
                cfg.limits = None
            else:
                cfg.limits = RateLimits(**(lim if isinstance(lim, dict) else {}))
            server.reset_limits()
        for key in ("latency", "pre_checkout_timeout", "webhook_retry_delay",
                    "webhook_max_retry_delay", "webhook_timeout"):  # fmt: skip
            if key in data:
                setattr(cfg, key, float(data[key]))
        if "advance_time" in data:
            server.time_offset += int(data["advance_time"])
        return await info(request)

    async def reset(request: web.Request) -> web.Response:
        server.reset()
        return ok(server)

    async def wait(request: web.Request) -> web.Response:
        seq = int(request.query.get("seq", server.seq))
        timeout = min(float(request.query.get("timeout", 10)), 60.0)
        await server.wait_change(seq, timeout)
        return ok(server)

    async def violations(request: web.Request) -> web.Response:
        if request.method == "DELETE":
            server.violations.clear()
        return ok(server, violations=server.violations)

    async def users_list(request: web.Request) -> web.Response:
        users = [
            dict(u.to_tg(), stars=u.stars, blocked=u.blocked, started=u.started)
            for u in server.users.values()
            if not u.is_bot
        ]
        return ok(server, users=users)

    async def users_create(request: web.Request) -> web.Response:
        user = create_user(server, await body(request))
        return ok(server, user=dict(user.to_tg(), stars=user.stars))

    async def user_get(request: web.Request) -> web.Response:
        user = get_user(server, request)
        chats = [
            chat_view(server, c, user)
            for c in server.chats.values()
            if c.id == user.id or (c.type != "private" and c.member(user.id).status != "left")
        ]
        return ok(
            server,
            user=dict(user.to_tg(), stars=user.stars, blocked=user.blocked, started=user.started),
            chats=chats,
            reply_keyboard=user.reply_keyboard,
            commands=server.commands_for(user),
        )

    async def user_send(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        chat = target_chat(server, user, data.get("chat_id"))
        msg = send_text(server, user, chat, str(data.get("text", "")), data.get("reply_to"))
        return ok(server, message=msg.tg)

    async def user_media(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await media_form(request)
        chat = target_chat(server, user, data.get("chat_id") or None)
        msg = send_media(
            server, user, chat, str(data.get("kind", "")), data["file"],
            caption=str(data.get("caption") or ""), duration=_int(data.get("duration")),
        )  # fmt: skip
        return ok(server, message=msg.tg)

    async def user_poll(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        chat = target_chat(server, user, data.get("chat_id"))
        return ok(server, message=send_poll(server, user, chat, data).tg)

    async def user_vote(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        chat = target_chat(server, user, data.get("chat_id"))
        return ok(server, **vote(server, user, chat, data))

    async def user_read(request: web.Request) -> web.Response:
        user = get_user(server, request)
        chat = target_chat(server, user, (await body(request)).get("chat_id"))
        mark_read(server, user, chat)
        return ok(server, unread=unread_count(user, chat))

    async def file_get(request: web.Request) -> web.Response:
        """A file's bytes for the web chat (the Bot API serves them only with the token)."""
        f = server.files.get(request.match_info["file_id"])
        if f is None or not f.data:
            raise ControlError(404, "no such file")
        return web.Response(body=f.data, content_type=f.mime_type or "application/octet-stream")

    async def user_edit(request: web.Request) -> web.Response:
        """The user edits one of their messages; the bot gets edited_message."""
        user = get_user(server, request)
        data = await body(request)
        chat = target_chat(server, user, data.get("chat_id"))
        msg = server.message(chat, int(data.get("message_id") or 0))
        if msg is None or msg.outgoing or msg.tg.get("from", {}).get("id") != user.id:
            raise ControlError(404, "no such message of this user")
        text = str(data.get("text") or "")
        if not text or "text" not in msg.tg:
            raise ControlError(400, "only text messages, with new text")
        msg.tg["text"] = text
        msg.tg.pop("entities", None)
        entities = command_entities(text)
        if entities:
            msg.tg["entities"] = entities
        msg.tg["edit_date"] = server.now()
        msg.edited = True
        msg.seq = server.bump()
        if chat.type == "private" or server.bot_member(chat).is_member:
            server.push_update("edited_message", dict(msg.tg))
        return ok(server, message=msg.tg)

    async def user_press(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        chat = target_chat(server, user, data.get("chat_id"))
        if data.get("reply_keyboard"):
            msg = press_reply_button(server, user, str(data.get("label")), data)
            return ok(server, kind="message", message=msg.tg)
        return ok(server, **press(server, user, chat, data))

    async def callback_get(request: web.Request) -> web.Response:
        q = server.callback_queries.get(request.match_info["query_id"])
        if q is None:
            raise ControlError(404, "no such callback query")
        return ok(server, **q)

    async def user_pay(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        if data.get("link"):
            inv = server.invoice_by_link(str(data["link"]))
            if inv is None:
                raise ControlError(404, "no such invoice link")
        else:
            chat = target_chat(server, user, data.get("chat_id"))
            msg = server.message(chat, int(data.get("message_id") or 0))
            if msg is None or "invoice" not in msg.meta:
                raise ControlError(404, "no such invoice message")
            inv = msg.meta["invoice"]
        outcome = await server.pay(user, inv, fail=data.get("fail"))
        return ok(server, **outcome)

    async def user_join(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        return ok(server, **server.join(user, str(data.get("link", ""))))

    async def user_leave(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        chat = server.chats.get(int(data.get("chat_id", 0)))
        if chat is None or chat.type == "private":
            raise ControlError(404, "no such group")
        if chat.member(user.id).is_member:
            server.set_member(chat, user.id, "left", actor_id=user.id)
        return ok(server)

    async def user_block(request: web.Request) -> web.Response:
        user = get_user(server, request)
        set_blocked(server, user, request.path.endswith("/block"))
        return ok(server, blocked=user.blocked)

    async def user_inline(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        query_id = new_id("", 12)
        server.inline_queries[query_id] = {"answered": False, "results": None, "user_id": user.id}
        server.push_update(
            "inline_query",
            {
                "id": query_id,
                "from": user.to_tg(),
                "query": str(data.get("query", "")),
                "offset": str(data.get("offset", "")),
                "chat_type": "sender",
            },
        )
        return ok(server, inline_query_id=query_id)

    async def inline_get(request: web.Request) -> web.Response:
        q = server.inline_queries.get(request.match_info["query_id"])
        if q is None:
            raise ControlError(404, "no such inline query")
        return ok(server, **q)

    async def user_stars(request: web.Request) -> web.Response:
        user = get_user(server, request)
        data = await body(request)
        if "stars" in data:
            user.stars = int(data["stars"])
        if "affiliate" in data:
            # {"user_id": <affiliate>, "per_mille": <commission>}: Telegram's Stars
            # affiliate programme referred this user (null: no affiliate).
            ref = data["affiliate"]
            if ref is None:
                server.star_affiliates.pop(user.id, None)
            else:
                per_mille = int(ref.get("per_mille", 0))
                if not 1 <= per_mille <= 900:
                    raise ControlError(400, "per_mille must be 1..900")
                server.star_affiliates[user.id] = (int(ref["user_id"]), per_mille)
        return ok(server, stars=user.stars)

    async def chats_create(request: web.Request) -> web.Response:
        data = await body(request)
        creator = server.users.get(int(data.get("creator_id", 0)))
        if creator is None or creator.is_bot:
            raise ControlError(404, "no such creator user")
        kind = data.get("type", "supergroup")
        if kind not in ("group", "supergroup", "channel"):
            raise ControlError(400, "type: group, supergroup or channel")
        chat = server.create_chat(kind, str(data.get("title") or "Group"), creator,
                                  data.get("username"))  # fmt: skip
        if data.get("add_bot") not in (None, False):
            add_bot(server, chat, data["add_bot"] if isinstance(data["add_bot"], dict) else {})
        return ok(server, chat=chat_view(server, chat, creator))

    def get_chat(request: web.Request) -> ChatState:
        chat = server.chats.get(int(request.match_info["chat_id"]))
        if chat is None:
            raise ControlError(404, "no such chat")
        return chat

    async def chat_get(request: web.Request) -> web.Response:
        return ok(server, chat=chat_view(server, get_chat(request), None))

    async def chat_bot(request: web.Request) -> web.Response:
        chat = get_chat(request)
        if chat.type == "private":
            raise ControlError(400, "not a group")
        add_bot(server, chat, await body(request))
        return ok(server, chat=chat_view(server, chat, None))

    async def chat_member(request: web.Request) -> web.Response:
        chat = get_chat(request)
        data = await body(request)
        user = server.users.get(int(data.get("user_id", 0)))
        if user is None:
            raise ControlError(404, "no such user")
        status = data.get("status", "member")
        actor = int(data.get("actor_id") or user.id)
        server.set_member(chat, user.id, status, actor_id=actor, rights=data.get("rights"))
        return ok(server, chat=chat_view(server, chat, None))

    async def chat_messages(request: web.Request) -> web.Response:
        chat = get_chat(request)
        after = int(request.query.get("after_seq", -1))
        with_deleted = request.query.get("deleted") == "1"
        msgs = [
            view(m)
            for _, m in sorted(chat.messages.items())
            if m.seq > after and (with_deleted or not m.deleted)
        ]
        return ok(server, messages=msgs)

    async def chat_post(request: web.Request) -> web.Response:
        """A channel post or group message by the creator (the bot sees it)."""
        chat = get_chat(request)
        data = await body(request)
        user = server.users.get(int(data.get("user_id", 0)))
        if user is None:
            raise ControlError(404, "no such user")
        if chat.type == "channel":
            if not chat.member(user.id).can("can_post_messages"):
                raise ControlError(403, "only admins post in channels")
            msg = server.store_message(chat, user, {"text": str(data.get("text", ""))}, False)
            if server.bot_member(chat).is_member:
                server.push_update("channel_post", msg.tg)
        else:
            msg = send_text(server, user, target_chat(server, user, chat.id), str(data["text"]))
        return ok(server, message=msg.tg)

    async def renew(request: web.Request) -> web.Response:
        data = await body(request)
        uid = data.get("user_id")
        return ok(server, renewals=server.renew_subscriptions(int(uid) if uid else None))

    async def updates_pending(request: web.Request) -> web.Response:
        return ok(server, updates=server.updates, webhook=server.webhook,
                  allowed_updates=sorted(server.effective_allowed()))  # fmt: skip

    async def stars(request: web.Request) -> web.Response:
        return ok(server, bot_stars=server.bot_stars, transactions=server.star_transactions)

    async def bot_stars(request: web.Request) -> web.Response:
        # The bot's balance with its fraction: {"tenths": 125} or {"stars": 12.5} sets it.
        if request.method == "POST":
            data = await body(request)
            if "tenths" in data:
                server.set_bot_balance_tenths(int(data["tenths"]))
            elif "stars" in data:
                server.set_bot_balance_tenths(round(float(data["stars"]) * 10))
        tenths = server.bot_balance_tenths()
        return ok(
            server,
            stars=tenths / 10,
            tenths=tenths,
            paid_broadcast_billed=server.paid_broadcast_billed,
        )

    async def commands(request: web.Request) -> web.Response:
        return ok(server, commands=[
            {"scope": k[0], "language_code": k[1], "commands": v}
            for k, v in server.commands.items()])  # fmt: skip

    r.add_get("/", index)
    r.add_static("/static", STATIC_DIR)
    r.add_get(f"{API}/info", info)
    r.add_post(f"{API}/config", set_config)
    r.add_post(f"{API}/reset", reset)
    r.add_get(f"{API}/wait", wait)
    r.add_route("GET", f"{API}/violations", violations)
    r.add_route("DELETE", f"{API}/violations", violations)
    r.add_get(f"{API}/users", users_list)
    r.add_post(f"{API}/users", users_create)
    r.add_get(f"{API}/users/{{user_id}}", user_get)
    r.add_post(f"{API}/users/{{user_id}}/send", user_send)
    r.add_post(f"{API}/users/{{user_id}}/press", user_press)
    r.add_post(f"{API}/users/{{user_id}}/media", user_media)
    r.add_post(f"{API}/users/{{user_id}}/read", user_read)
    r.add_post(f"{API}/users/{{user_id}}/poll", user_poll)
    r.add_post(f"{API}/users/{{user_id}}/vote", user_vote)
    r.add_get(f"{API}/files/{{file_id}}", file_get)
    r.add_post(f"{API}/users/{{user_id}}/edit", user_edit)
    r.add_post(f"{API}/users/{{user_id}}/pay", user_pay)
    r.add_post(f"{API}/users/{{user_id}}/join", user_join)
    r.add_post(f"{API}/users/{{user_id}}/leave", user_leave)
    r.add_post(f"{API}/users/{{user_id}}/block", user_block)
    r.add_post(f"{API}/users/{{user_id}}/unblock", user_block)
    r.add_post(f"{API}/users/{{user_id}}/inline", user_inline)
    r.add_post(f"{API}/users/{{user_id}}/stars", user_stars)
    r.add_get(f"{API}/callbacks/{{query_id}}", callback_get)
    r.add_get(f"{API}/inline/{{query_id}}", inline_get)
    r.add_post(f"{API}/chats", chats_create)
    r.add_get(f"{API}/chats/{{chat_id}}", chat_get)
    r.add_post(f"{API}/chats/{{chat_id}}/bot", chat_bot)
    r.add_post(f"{API}/chats/{{chat_id}}/members", chat_member)
    r.add_post(f"{API}/chats/{{chat_id}}/post", chat_post)
    r.add_get(f"{API}/chats/{{chat_id}}/messages", chat_messages)
    r.add_post(f"{API}/subscriptions/renew", renew)
    r.add_get(f"{API}/updates", updates_pending)
    r.add_get(f"{API}/stars", stars)
    r.add_route("GET", f"{API}/bot/stars", bot_stars)
    r.add_route("POST", f"{API}/bot/stars", bot_stars)
    r.add_get(f"{API}/commands", commands)


def _int(value: Any) -> int:
    try:
        return max(round(float(value)), 0)
    except (TypeError, ValueError):
        return 0
