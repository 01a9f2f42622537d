"""Keyboards of paid groups: buy/trial/subscribe, renew, audit confirm, chat pickers."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    ChatAdministratorRights,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    KeyboardButtonRequestChat,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _

from bot.text import shorten

# request_id of the "pick a chat" buttons: groups and channels.
REQUEST_GROUP = 51
REQUEST_CHANNEL = 52


class PlanCB(CallbackData, prefix="gp"):
    """a: "buy" (offer) | "trial" | "sub" (Stars subscription) | "cancel" (stop renewing)
    | "link" (a new personal invite link)."""

    a: str
    id: int


class AuditCB(CallbackData, prefix="ga"):
    chat: int
    n: int  # how many the dry run found, so a stale confirm is visible


def plan_keyboard(
    plan_id: int, *, trial: bool, subscription: bool, buy: bool = True
) -> InlineKeyboardMarkup:
    rows = []
    if buy:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🛒 Buy access"), callback_data=PlanCB(a="buy", id=plan_id).pack()
                )
            ]
        )
    if subscription:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("⭐ Subscribe monthly"), callback_data=PlanCB(a="sub", id=plan_id).pack()
                )
            ]
        )
    if trial:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🎁 Start free trial"),
                    callback_data=PlanCB(a="trial", id=plan_id).pack(),
                )
            ]
        )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def plans_keyboard(plans: list[tuple[int, str, bool, bool]]) -> InlineKeyboardMarkup:
    """Several plans in one keyboard: (id, title, trial, subscription), buttons named."""
    rows = []
    for plan_id, title, trial, subscription in plans:
        short = shorten(title, 24)
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🛒 Buy {plan}").format(plan=short),
                    callback_data=PlanCB(a="buy", id=plan_id).pack(),
                )
            ]
        )
        if subscription:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=_("⭐ Subscribe monthly: {plan}").format(plan=short),
                        callback_data=PlanCB(a="sub", id=plan_id).pack(),
                    )
                ]
            )
        if trial:
            rows.append(
                [
                    InlineKeyboardButton(
                        text=_("🎁 Free trial: {plan}").format(plan=short),
                        callback_data=PlanCB(a="trial", id=plan_id).pack(),
                    )
                ]
            )
    return InlineKeyboardMarkup(inline_keyboard=rows)


def link_keyboard(text: str, url: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=text, url=url)]])


def invite_button(plan_id: int, text: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=PlanCB(a="link", id=plan_id).pack())


def held_plan_keyboard(plan_id: int, *, cancel: bool, link: bool) -> InlineKeyboardMarkup | None:
    """Under a plan the learner holds: a new invite link, cancel the renewal."""
    rows = []
    if link:
        rows.append([invite_button(plan_id, _("🔗 New invite link"))])
    if cancel:
        data = PlanCB(a="cancel", id=plan_id).pack()
        rows.append([InlineKeyboardButton(text=_("Cancel renewal"), callback_data=data)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def audit_keyboard(chat_id: int, count: int) -> InlineKeyboardMarkup:
    data = AuditCB(chat=chat_id, n=count).pack()
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Confirm: remove {n}").format(n=count), callback_data=data
                )
            ]
        ]
    )


def pick_chat_keyboard() -> ReplyKeyboardMarkup:
    """KeyboardButtonRequestChat: the creator picks a chat where both of us are admins."""
    needs = ChatAdministratorRights(
        is_anonymous=False,
        can_manage_chat=False,
        can_delete_messages=False,
        can_manage_video_chats=False,
        can_restrict_members=True,
        can_promote_members=False,
        can_change_info=False,
        can_invite_users=True,
        can_post_stories=False,
        can_edit_stories=False,
        can_delete_stories=False,
        can_send_welcome_messages=False,
    )
    group = KeyboardButtonRequestChat(
        request_id=REQUEST_GROUP,
        chat_is_channel=False,
        user_administrator_rights=needs,
        bot_administrator_rights=needs,
        bot_is_member=True,
        request_title=True,
    )
    channel = KeyboardButtonRequestChat(
        request_id=REQUEST_CHANNEL,
        chat_is_channel=True,
        user_administrator_rights=needs,
        bot_administrator_rights=needs,
        bot_is_member=True,
        request_title=True,
    )
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("👥 Pick a group"), request_chat=group)],
            [KeyboardButton(text=_("📢 Pick a channel"), request_chat=channel)],
        ],
        resize_keyboard=True,
        one_time_keyboard=True,
    )
