"""Chats and members: groups, supergroups and channels, memberships and admin rights,
bans, invite links and join requests."""

from __future__ import annotations

from typing import Any

from sandbox.core import SUBSCRIPTION_PERIOD, SandboxCore, bad
from sandbox.state import (
    ADMIN_RIGHTS,
    OPTIONAL_RIGHTS,
    ChatState,
    InviteLink,
    JoinRequest,
    MemberState,
    UserState,
    new_id,
)


class ChatsApi(SandboxCore):
    def reset(self) -> None:
        super().reset()
        self.invite_links: dict[str, InviteLink] = {}
        self.next_group_id = 1000

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
