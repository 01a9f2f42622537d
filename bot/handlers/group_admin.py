"""Paid groups, the creator's side: linking chats, plans, members, extend/kick, audits.

Every command resolves the caller's Creator and lets the service check ownership:
creator A never sees or touches creator B's chats or plans (ADMIN_IDS owners see all).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from html import escape

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, ChatMember, Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.handlers.common import Command
from bot.handlers.groups import plain
from bot.keyboards.groups import AuditCB, audit_keyboard, pick_chat_keyboard
from bot.models import Creator, Group, Plan, User
from bot.scheduler.clock import Clock
from bot.services import groups as groups_service
from bot.services import memberships
from bot.services.authoring import creator_for
from bot.services.groups import MemberView, Missing

log = logging.getLogger(__name__)

router = Router(name=__name__)

LIST_LIMIT = 40


def not_creator() -> str:
    return _("Only creators can do this. Send /becomecreator first.")


def not_yours() -> str:
    return _("No such chat or plan of yours.")


def missing_text(missing: list[Missing]) -> str:
    names = {
        Missing.CALLER_NOT_ADMIN: _("you are not an admin of this chat"),
        Missing.BOT_NOT_ADMIN: _("the bot is not an admin of this chat"),
        Missing.CAN_INVITE: _("the bot lacks the right to invite users via link"),
        Missing.CAN_RESTRICT: _("the bot lacks the right to ban (restrict) members"),
    }
    lines = [_("Cannot link this chat:")] + [f"• {names[m]}" for m in missing]
    if Missing.CALLER_NOT_ADMIN not in missing:
        lines.append(_("Make the bot an admin with both rights, then try again."))
    return "\n".join(lines)


def _view(member: ChatMember) -> MemberView:
    return MemberView(
        status=plain(getattr(member, "status", "")),
        can_invite_users=bool(getattr(member, "can_invite_users", False)),
        can_restrict_members=bool(getattr(member, "can_restrict_members", False)),
    )


async def _creator(session: AsyncSession, user: User, settings: Settings) -> Creator | None:
    return await creator_for(session, user, settings.admin_ids)


async def _link(
    bot: Bot,
    session: AsyncSession,
    creator: Creator,
    user_id: int,
    chat_id: int,
) -> str:
    """Check both sides' rights in the chat, then link it. Returns what to tell the creator."""
    try:
        chat = await bot.get_chat(chat_id)
        caller = _view(await bot.get_chat_member(chat_id, user_id))
        me = _view(await bot.get_chat_member(chat_id, bot.id))
    except TelegramAPIError as exc:
        log.info("linking %s: %s", chat_id, exc)
        return _("Cannot link this chat: the bot is not in it. Add the bot as an admin first.")
    missing = groups_service.missing_rights(caller, me)
    if missing:
        return missing_text(missing)
    title = chat.title or str(chat_id)
    group = await groups_service.link_chat(session, creator, chat_id, plain(chat.type), title)
    if group == groups_service.LinkProblem.OTHER_CREATOR:
        return _("This chat is linked by another creator.")
    return _(
        "✅ Linked {title}. Attach it to a plan: /plan new Title stars=500 days=30 chat={chat}"
    ).format(title=escape(title), chat=chat_id)


@router.message(Command("linkgroup"))
async def cmd_linkgroup(
    message: Message, session: AsyncSession, user: User, settings: Settings, bot: Bot
) -> None:
    call = await _begin(message, session, user, settings, bot)
    if call is None:
        return
    if message.chat.type == "private":
        await message.answer(
            _("Pick the group or channel to sell access to (you and the bot must be admins)."),
            reply_markup=pick_chat_keyboard(),
        )
        return
    await call.answer(await _link(bot, session, call.creator, user.id, message.chat.id))


async def _answer(message: Message, bot: Bot, user_id: int, text: str) -> None:
    """Admin chatter goes to the creator in private, not to the group's members."""
    if message.chat.type == "private":
        await message.answer(text)
        return
    try:
        await bot.send_message(user_id, text)
    except TelegramAPIError:
        await message.reply(text)


@dataclass(frozen=True, slots=True)
class _Call:
    """A creator's command: the caller's Creator row, the words after the command, and
    lookups that answer "not yours" themselves, so each command reads as its own logic."""

    message: Message
    bot: Bot
    session: AsyncSession
    user: User
    creator: Creator
    text: str  # everything after the command, as typed

    @property
    def args(self) -> list[str]:
        return self.text.split()

    async def answer(self, text: str) -> None:
        await _answer(self.message, self.bot, self.user.id, text)

    async def group(self, ref: str | None, usage: str | None = None) -> Group | None:
        """The chat named by `ref` (in a group: that chat), only if the caller owns it."""
        group = await _group_arg(self.session, self.creator, self.message, ref)
        if group is None:
            await self.answer(not_yours() if usage is None else not_yours() + "\n" + usage)
        return group

    async def plan(self, ref: str | None) -> Plan | None:
        """The plan named by `ref` (or the caller's only plan), only if the caller owns it."""
        plan = await _plan_arg(self.session, self.creator, ref)
        if plan is None:
            await self.answer(not_yours())
        return plan


async def _begin(
    message: Message,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    command: CommandObject | None = None,
) -> _Call | None:
    """Only creators get further: everyone else is told how to become one."""
    creator = await _creator(session, user, settings)
    if creator is None:
        await _answer(message, bot, user.id, not_creator())
        return None
    text = (command.args or "") if command is not None else ""
    return _Call(message, bot, session, user, creator, text)


async def _is_chat_shared(message: Message) -> bool:
    return message.chat_shared is not None


@router.message(_is_chat_shared)
async def on_chat_shared(
    message: Message, session: AsyncSession, user: User, settings: Settings, bot: Bot
) -> None:
    shared = message.chat_shared
    assert shared is not None
    creator = await _creator(session, user, settings)
    if creator is None:
        await message.answer(not_creator(), reply_markup=ReplyKeyboardRemove())
        return
    text = await _link(bot, session, creator, user.id, shared.chat_id)
    await message.answer(text, reply_markup=ReplyKeyboardRemove())


@router.message(Command("groups"))
async def cmd_groups(
    message: Message, session: AsyncSession, user: User, settings: Settings, bot: Bot
) -> None:
    call = await _begin(message, session, user, settings, bot)
    if call is None:
        return
    lines = [_("<b>Your chats</b>")]
    pairs = await groups_service.my_groups(session, call.creator)
    for group, plans in pairs[:LIST_LIMIT]:
        plan_part = (
            ", ".join(
                _("plan #{id} {title}").format(id=plan.id, title=escape(plan.title))
                for plan in plans
            )
            if plans
            else _("no plan")
        )
        lines.append(f"• {escape(group.title)} ({group.chat_id}) — {plan_part}")
    if not pairs:
        lines.append(_("None yet. Add the bot as an admin and send /linkgroup."))
    lines.append("")
    lines.append(_("<b>Your plans</b>"))
    for plan in (await groups_service.my_plans(session, call.creator))[:LIST_LIMIT]:
        lines.append(f"• #{plan.id} {escape(plan.title)} — {_plan_terms(plan)}")
    await call.answer("\n".join(lines))


def _plan_terms(plan: Plan) -> str:
    days = plan.period_days
    period = _("lifetime") if days is None else ngettext("{n} day", "{n} days", days).format(n=days)
    parts = [period, _("{n} ⭐").format(n=plan.stars_price)]
    if plan.trial_days:
        days = plan.trial_days
        parts.append(ngettext("trial {n} day", "trial {n} days", days).format(n=days))
    if plan.stars_subscription:
        parts.append(_("subscription"))
    parts.append(_("published") if plan.published else _("draft"))
    return ", ".join(parts)


def _int(text: str) -> int | None:
    """A Telegram user or chat id, or a small count; beyond 2^52 it is none of these and
    would overflow the database's bigint."""
    return parsing.telegram_id(text)


@router.message(Command("members"))
async def cmd_members(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    group = await call.group(_first(call.args), _("Usage: /members CHAT_ID"))
    if group is None:
        return
    report = await groups_service.member_report(session, group, clock.now())
    lines = [_("<b>{title}</b>").format(title=escape(group.title))]
    for label, rows in (
        (_("Active"), report.active),
        (_("Expiring within 3 days"), report.expiring),
        (_("Expired"), report.expired),
    ):
        lines.append(f"{label}: {len(rows)}")
        for line in rows[:LIST_LIMIT]:
            until = line.expires_at.strftime("%Y-%m-%d") if line.expires_at else "∞"
            trial = " " + _("(trial)") if line.is_trial else ""
            lines.append(f"  {line.user_id} — {until}{trial} · #{line.plan_id}")
    await call.answer("\n".join(lines))


def _first(args: list[str]) -> str | None:
    return args[0] if args else None


async def _group_arg(
    session: AsyncSession, creator: Creator, message: Message, arg: str | None
) -> Group | None:
    ref = _int(arg) if arg else None
    if ref is None and message.chat.type != "private":
        ref = message.chat.id
    if ref is None:
        return None
    return await groups_service.owned_group(session, creator, ref)


async def _plan_arg(session: AsyncSession, creator: Creator, ref: str | None) -> Plan | None:
    if ref is not None:
        plan_id = parsing.record_id(ref)
        return await groups_service.owned_plan(session, creator, plan_id) if plan_id else None
    plans = await groups_service.my_plans(session, creator)
    own = [p for p in plans if p.creator_id == creator.id]
    return own[0] if len(own) == 1 else None


@router.message(Command("extend"))
async def cmd_extend(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    args = call.args
    target = _int(args[0]) if args else None
    days = _int(args[1]) if len(args) > 1 else None
    if target is None or days is None or not 0 < days <= 3650:
        await call.answer(_("Usage: /extend USER_ID DAYS [PLAN_ID]"))
        return
    plan = await call.plan(args[2] if len(args) > 2 else None)
    if plan is None:
        return
    if await session.get(User, target) is None:
        await call.answer(_("That user has not started the bot yet."))
        return
    ent = await groups_service.extend(session, plan, target, days, clock.now())
    until = ent.expires_at.strftime("%Y-%m-%d %H:%M") if ent.expires_at else "∞"
    await call.answer(
        _("Extended {user} on {plan} until {until} UTC.").format(
            user=target, plan=escape(plan.title), until=until
        )
    )


@router.message(Command("kick"))
async def cmd_kick(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    args = call.args
    target = _int(args[0]) if args else None
    if target is None:
        await call.answer(_("Usage: /kick USER_ID [PLAN_ID]"))
        return
    plan = await call.plan(args[1] if len(args) > 1 else None)
    if plan is None:
        return
    now = clock.now()
    if not await groups_service.kick(session, plan, target, now):
        # Nothing to revoke: still remove them from the plan's chats (whitelist aside).
        for group in await groups_service.plan_groups(session, plan.id):
            await memberships.schedule_removal(session, group, [target], now)
    kept = await groups_service.still_allowed(session, plan, target, now)
    if kept:
        text = _("{user} loses access to {plan}; another plan keeps them in: {chats}.").format(
            user=target, plan=escape(plan.title), chats=", ".join(escape(g.title) for g in kept)
        )
    else:
        text = _("{user} loses access to {plan} and is being removed.").format(
            user=target, plan=escape(plan.title)
        )
    await call.answer(text)


@router.message(Command("plan"))
async def cmd_plan(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    usage = (
        _(
            "Usage:\n/plan new Title stars=500 days=30|life trial=7 sub=yes publish=yes "
            "chat=CHAT_ID course=COURSE_ID\n"
            "/plan PLAN_ID stars=… days=… trial=… publish=yes|no chat=… course=… "
            "winback=PERCENT"
        )
        + "\n"
        + _(
            "Limits: stars up to {stars}, days and trial up to {days}, price up to {price}, "
            "winback 1–90 (0 turns it off)."
        ).format(
            stars=f"{parsing.MAX_STARS:,}",
            days=parsing.MAX_DAYS,
            price=f"{parsing.MAX_PRICE_MAJOR:,}",
        )
    )
    head, _sep, rest = call.text.strip().partition(" ")
    plan: Plan | None = None
    if head == "new":
        pass
    elif (plan_id := parsing.record_id(head)) is not None:
        plan = await groups_service.owned_plan(session, call.creator, plan_id)
        if plan is None:
            await call.answer(not_yours())
            return
    else:
        await call.answer(usage)
        return
    spec = groups_service.parse_plan_spec(rest)
    if spec is None:
        await call.answer(usage)
        return
    result = await groups_service.save_plan(session, call.creator, spec, plan)
    if isinstance(result, groups_service.PlanError):
        errors = {
            groups_service.PlanError.NOT_YOURS: not_yours(),
            groups_service.PlanError.NO_TITLE: usage,
            groups_service.PlanError.BAD_ARGS: usage,
            groups_service.PlanError.SUBSCRIPTION_MONTHLY: _(
                "Stars subscriptions renew every 30 days: set days=30."
            ),
        }
        await call.answer(errors[result])
        return
    text = _("Plan #{id} {title}: {terms}").format(
        id=result.id, title=escape(result.title), terms=_plan_terms(result)
    )
    chats = await groups_service.plan_groups(session, result.id)
    if chats:
        text += "\n" + _("Sells access to: {chats}").format(
            chats=", ".join(escape(g.title) for g in chats)
        )
    await call.answer(text)


@router.message(Command("whitelist"))
async def cmd_whitelist(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    args = call.args
    if len(args) < 2 or _int(args[1]) is None:
        await call.answer(_("Usage: /whitelist CHAT_ID USER_ID [off]"))
        return
    group = await call.group(args[0])
    if group is None:
        return
    on = not (len(args) > 2 and args[2].lower() == "off")
    await groups_service.set_whitelist(session, group, int(args[1]), on)
    await call.answer(
        _("Whitelist of {title}: {ids}").format(
            title=escape(group.title), ids=", ".join(map(str, group.whitelist)) or "—"
        )
    )


def audit_text(title: str, user_ids: list[int]) -> str:
    if not user_ids:
        return _("Audit of {title}: everyone the bot has seen may be there.").format(
            title=escape(title)
        )
    shown = ", ".join(str(u) for u in user_ids[:LIST_LIMIT])
    more = "…" if len(user_ids) > LIST_LIMIT else ""
    return _("Audit of {title} (dry run): would remove {n}: {ids}{more}").format(
        title=escape(title), n=len(user_ids), ids=shown, more=more
    )


@router.message(Command("audit"))
async def cmd_audit(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    call = await _begin(message, session, user, settings, bot, command)
    if call is None:
        return
    group = await call.group(_first(call.args), _("Usage: /audit CHAT_ID"))
    if group is None:
        return
    would = await groups_service.audit(session, group, clock.now())
    markup = audit_keyboard(group.chat_id, len(would)) if would else None
    text = audit_text(group.title, would)
    if message.chat.type == "private":
        await message.answer(text, reply_markup=markup)
    else:
        try:
            await bot.send_message(user.id, text, reply_markup=markup)
        except TelegramAPIError:
            await message.reply(text, reply_markup=markup)


@router.callback_query(AuditCB.filter())
async def on_audit_confirm(
    callback: CallbackQuery,
    callback_data: AuditCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    creator = await _creator(session, user, settings)
    group = (
        await groups_service.owned_group(session, creator, callback_data.chat) if creator else None
    )
    if group is None:
        await callback.answer(not_yours(), show_alert=True)
        return
    now = clock.now()
    would = await groups_service.audit(session, group, now)
    await memberships.schedule_removal(session, group, would, now)
    text = ngettext("Removing {n} member.", "Removing {n} members.", len(would))
    await callback.answer(text.format(n=len(would)), show_alert=True)
