"""What the sandbox remembers: users, chats with their members and messages, files,
payments and subscriptions. Plain data; the server mutates it on one event loop."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
OPTIONAL_RIGHTS = (
    "can_post_messages",
    "can_edit_messages",
    "can_pin_messages",
    "can_manage_topics",
)

# What a bot added "as admin" gets when the caller does not say otherwise.
DEFAULT_BOT_RIGHTS: dict[str, bool] = {
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": False,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": False,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_post_messages": True,
    "can_edit_messages": True,
    "can_pin_messages": True,
}


def new_id(prefix: str = "", nbytes: int = 12) -> str:
    return prefix + secrets.token_urlsafe(nbytes).replace("-", "a").replace("_", "b")


@dataclass
class UserState:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False
    is_premium: bool = False
    # The private chat with the bot: started once the user wrote to it; blocked by the user.
    started: bool = False
    blocked: bool = False
    stars: int = 0
    # The reply keyboard the bot currently shows this user (private chat), or None.
    reply_keyboard: dict[str, Any] | None = None
    # Per chat, the newest message id this user has read (what the unread badges count from).
    read_up_to: dict[int, int] = field(default_factory=dict)

    def to_tg(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            out["last_name"] = self.last_name
        if self.username:
            out["username"] = self.username
        if self.language_code and not self.is_bot:
            out["language_code"] = self.language_code
        if self.is_premium:
            out["is_premium"] = True
        return out


@dataclass
class MemberState:
    user_id: int
    status: str  # creator | administrator | member | restricted | left | kicked
    rights: dict[str, bool] = field(default_factory=dict)
    until_date: int = 0
    custom_title: str | None = None

    @property
    def is_member(self) -> bool:
        return self.status in ("creator", "administrator", "member", "restricted")

    def can(self, right: str) -> bool:
        return self.status == "creator" or (
            self.status == "administrator" and self.rights.get(right, False)
        )


@dataclass
class StoredMessage:
    tg: dict[str, Any]
    seq: int
    outgoing: bool  # sent by the bot
    deleted: bool = False
    edited: bool = False
    # Sandbox-only facts about the message (the invoice's payload and prices, etc.).
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class InviteLink:
    link: str
    chat_id: int
    creator_id: int
    name: str | None = None
    expire_date: int | None = None
    member_limit: int | None = None
    creates_join_request: bool = False
    is_primary: bool = False
    is_revoked: bool = False
    joined: int = 0
    subscription_period: int | None = None
    subscription_price: int | None = None


@dataclass
class JoinRequest:
    user_id: int
    chat_id: int
    date: int
    invite_link: str | None


@dataclass
class ChatState:
    id: int
    type: str  # private | group | supergroup | channel
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    description: str | None = None
    members: dict[int, MemberState] = field(default_factory=dict)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    join_requests: dict[int, JoinRequest] = field(default_factory=dict)
    # Per-chat rate limiting (groups).
    bucket: Any = None

    def to_tg(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            out["first_name"] = self.first_name or "User"
            if self.last_name:
                out["last_name"] = self.last_name
        else:
            out["title"] = self.title or "Chat"
        if self.username:
            out["username"] = self.username
        return out

    def member(self, user_id: int) -> MemberState:
        return self.members.get(user_id) or MemberState(user_id, "left")

    def take_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    kind: str
    file_name: str | None = None
    mime_type: str | None = None
    # width, height, duration: what the file was first sent with.
    facts: dict[str, int] = field(default_factory=dict)

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}{_ext(self.file_name, self.kind)}"


def _ext(name: str | None, kind: str) -> str:
    if name and "." in name:
        return "." + name.rsplit(".", 1)[1]
    return {"photo": ".jpg", "video": ".mp4", "voice": ".oga"}.get(kind, "")


@dataclass
class Invoice:
    """What the user pays: an invoice message or an invoice link."""

    title: str
    description: str
    payload: str
    currency: str
    prices: list[dict[str, Any]]
    provider_token: str = ""
    subscription_period: int | None = None
    chat_id: int | None = None
    message_id: int | None = None
    link: str | None = None
    start_parameter: str = ""

    @property
    def total_amount(self) -> int:
        return sum(int(p["amount"]) for p in self.prices)


@dataclass
class Payment:
    user_id: int
    currency: str
    total_amount: int
    payload: str
    telegram_payment_charge_id: str
    provider_payment_charge_id: str
    date: int
    refunded: bool = False
    subscription_period: int | None = None
    subscription_expiration_date: int | None = None
    is_recurring: bool = False
    is_first_recurring: bool = False


@dataclass
class Subscription:
    user_id: int
    invoice: Invoice
    first_charge_id: str
    last_charge_id: str
    expires_at: int
    canceled_by_bot: bool = False
    canceled_by_user: bool = False
