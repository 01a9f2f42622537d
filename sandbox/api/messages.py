"""Messages and keyboards: text with entities, inline and reply keyboards, replies, sends,
copies, forwards, edits and deletes."""

from __future__ import annotations

import contextlib
from typing import Any

from sandbox.core import ApiError, SandboxCore, bad
from sandbox.formatting import EntityParseError, format_text, utf16_len
from sandbox.state import ChatState, StoredMessage

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
COPYABLE = {"text", "entities", "caption", "caption_entities", "photo", "video", "document",
            "voice", "audio", "animation", "contact", "location"}  # fmt: skip
NOT_FORWARDED = {"message_id", "from", "sender_chat", "date", "chat", "reply_markup",
                 "edit_date", "reply_to_message"}  # fmt: skip
MEDIA_KINDS = ("photo", "video", "document", "voice", "audio", "animation")
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class MessagesApi(SandboxCore):
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
        self.check_rate(chat, paid=bool(p.get("allow_paid_broadcast")))
        return self.store_message(chat, self.bot_user, body, outgoing=True, meta=meta).tg

    async def api_sendMessage(self, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        body = self.text_body(p)
        lp = p.get("link_preview_options")
        if lp and lp.get("is_disabled"):
            body["link_preview_options"] = {"is_disabled": True}
        return self.bot_sends(p, body, chat)

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
