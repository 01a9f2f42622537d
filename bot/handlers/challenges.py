"""Check-in challenges (打卡): /challenge, /checkin, the card's Join button, the
leaderboard, featured check-ins; and the scheduler jobs (the daily reminder, the weekly
leaderboard in the linked group). Thin: the rules are bot.services.challenges.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape

from aiogram import Router
from aiogram.filters import CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.config import Settings
from bot.handlers import commands
from bot.handlers.common import Command, clip, is_private
from bot.i18n import pick_locale
from bot.keyboards.menus import callback_button
from bot.models import Challenge, ChallengeMember, CheckIn, Creator, Job, User
from bot.scheduler import notices
from bot.scheduler.clock import Clock
from bot.scheduler.errors import ChatNotFound, Rejected, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.scheduler.worker import Scheduler
from bot.services import challenges as ch
from bot.services.drip import Prefs, in_quiet_hours
from bot.services.users import get_creator
from bot.text import shorten

router = Router(name=__name__)
router.message.filter(is_private)

HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


class ChCB(CallbackData, prefix="ch"):
    a: str  # j: join, c: check in, t: leaderboard, f: feature a check-in
    id: int


class CheckinSteps(StatesGroup):
    content = State()


# --- texts -----------------------------------------------------------------------------


def refusal_text(refusal: ch.Refusal) -> str:
    return {
        ch.Refusal.NO_TARGET: _("There is no such course or plan of yours."),
        ch.Refusal.BAD_GROUP: _(
            "That chat is not one of your linked groups (see /groups; link one with /linkgroup)."
        ),
        ch.Refusal.NOT_FOUND: _("There is no such challenge."),
        ch.Refusal.ENDED: _("This challenge has ended."),
        ch.Refusal.NOT_HOLDER: _("This challenge is for learners of its course or plan."),
        ch.Refusal.NOT_MEMBER: _("You are not in this challenge. Join it first: /challenge"),
        ch.Refusal.ALREADY_MEMBER: _("You are in this challenge already."),
        ch.Refusal.TWICE: _("You have checked in today already. Come back tomorrow!"),
        ch.Refusal.NOT_YOURS: _("This challenge belongs to another creator."),
    }[refusal]


def days_text(n: int) -> str:
    return ngettext("{n} day", "{n} days", n).format(n=n)


def board_text(
    challenge: Challenge,
    board: ch.Board,
    featured: Sequence[tuple[CheckIn, str]] = (),
) -> str:
    lines = [_("🏆 <b>{title}</b> — leaderboard").format(title=escape(challenge.title))]
    if not board.top:
        lines.append(_("Nobody has checked in yet."))
    for place, row in enumerate(board.top, 1):
        lines.append(
            _("{place}. {name} — 🔥 {streak} · {count} check-ins").format(
                place=place,
                name=escape(shorten(row.name or "…", 32)),
                streak=days_text(row.streak),
                count=row.check_ins,
            )
        )
    if board.rank is not None and board.mine is not None:
        lines.append(
            _("You: #{rank} of {total}, 🔥 {streak}").format(
                rank=board.rank, total=board.members, streak=days_text(board.mine.streak)
            )
        )
    for shown, name in featured:
        text = escape(shorten(shown.text, 120)) if shown.text else _("[photo]")
        lines.append(
            _("⭐ {name}: {text}").format(name=escape(shorten(name or "…", 32)), text=text)
        )
    return "\n".join(lines)


def _keyboard(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def card_rows(found: Sequence[ch.Running]) -> list[list[InlineKeyboardButton]]:
    """The course card's Join buttons (bot.handlers.market shows them to owners)."""
    return [
        [
            callback_button(
                _("🔥 Challenge: {title}").format(title=shorten(c.title, 40)),
                ChCB(a="j", id=c.id).pack(),
            )
        ]
        for c in found
    ]


# --- /challenge ------------------------------------------------------------------------


@router.message(Command("challenge"))
async def cmd_challenge(
    message: Message, command: CommandObject, session: AsyncSession, user: User, clock: Clock
) -> None:
    words = (command.args or "").split()
    head = words[0].lower() if words else ""
    if head == "new":
        await _new(message, session, user, words[1:], clock.now())
    elif head in ("top", "today") and len(words) == 2 and parsing.record_id(words[1]):
        challenge_id = parsing.record_id(words[1]) or 0
        if head == "top":
            await _top(message, session, user, challenge_id, clock.now())
        else:
            await _today(message, session, user, challenge_id, clock.now())
    elif not words:
        await _list(message, session, user, clock.now())
    else:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("challenge")))


def _options(words: list[str]) -> tuple[list[str], dict[str, str]]:
    title, opts = [], {}
    for word in words:
        key, eq, value = word.partition("=")
        if eq and key.lower() in ("days", "course", "plan", "group"):
            opts[key.lower()] = value
        else:
            title.append(word)
    return title, opts


async def _new(
    message: Message, session: AsyncSession, user: User, words: list[str], now: datetime
) -> None:
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("This is for creators. Become one with /becomecreator."))
        return
    title, opts = _options(words)
    days = parsing.whole(opts.get("days", ""), 1, ch.MAX_DAYS)
    course = parsing.record_id(opts["course"]) if "course" in opts else None
    plan = parsing.record_id(opts["plan"]) if "plan" in opts else None
    group = parsing.telegram_id(opts["group"]) if "group" in opts else None
    if (
        not title
        or days is None
        or (course is None) == (plan is None)
        or ("group" in opts and group is None)
    ):
        await message.answer(
            _("Usage: {usage}").format(usage=commands.usage("challenge"))
            + "\n"
            + _("Example: /challenge new 30 days of Python days=30 course=12 group=-1001234")
        )
        return
    challenge = await ch.create(
        session, creator, " ".join(title), days, ch.Target(course, plan), group, now
    )
    if isinstance(challenge, ch.Refusal):
        await message.answer(refusal_text(challenge))
        return
    await message.answer(
        _(
            "🔥 Challenge #{id} «{title}» runs for {days}. Learners join from the course "
            "card or /challenge; /challenge today {id} shows the day's check-ins."
        ).format(id=challenge.id, title=escape(challenge.title), days=days_text(days))
    )


async def _list(message: Message, session: AsyncSession, user: User, now: datetime) -> None:
    found = await ch.for_learner(session, user.id, now)
    if not found:
        await message.answer(
            _("No challenges for you right now. They come with the courses and plans you have.")
        )
        return
    lines = [_("<b>Challenges</b>")]
    rows: list[list[InlineKeyboardButton]] = []
    for item in found:
        c, member = item.challenge, item.member
        if member is None:
            lines.append(_("#{id} «{title}» — open to join").format(id=c.id, title=escape(c.title)))
            rows.append([callback_button(_("➕ Join #{id}").format(id=c.id), _data("j", c.id))])
            continue
        today = ch.local_day(now, user.timezone)
        streak = ch.current(member.last_day, member.streak, member.freeze_week, today)
        done = member.last_day == today
        lines.append(
            _("#{id} «{title}» — 🔥 {streak}{done}").format(
                id=c.id,
                title=escape(c.title),
                streak=days_text(streak),
                done=" ✅" if done else "",
            )
        )
        row = [callback_button(_("🏆 #{id}").format(id=c.id), _data("t", c.id))]
        if not done:
            row.insert(0, callback_button(_("✅ Check in #{id}").format(id=c.id), _data("c", c.id)))
        rows.append(row)
    await message.answer(clip("\n".join(lines)), reply_markup=_keyboard(rows))


def _data(action: str, ref: int) -> str:
    return ChCB(a=action, id=ref).pack()


async def _top(
    message: Message, session: AsyncSession, user: User, challenge_id: int, now: datetime
) -> None:
    challenge = await session.get(Challenge, challenge_id)
    creator = await get_creator(session, user.id)
    mine = creator is not None and challenge is not None and challenge.creator_id == creator.id
    if challenge is None or not (
        mine or await ch.member_of(session, user.id, challenge.id) is not None
    ):
        await message.answer(refusal_text(ch.Refusal.NOT_FOUND))
        return
    board = await ch.leaderboard(session, challenge.id, user.id, now)
    featured = await ch.featured(session, challenge.id, now)
    await message.answer(clip(board_text(challenge, board, featured)))


async def _today(
    message: Message, session: AsyncSession, user: User, challenge_id: int, now: datetime
) -> None:
    challenge = await ch.creators_challenge(
        session, challenge_id, await get_creator(session, user.id)
    )
    if isinstance(challenge, ch.Refusal):
        await message.answer(refusal_text(challenge))
        return
    found = await ch.of_the_day(session, challenge.id, now)
    if not found:
        await message.answer(_("No check-ins in the last 24 hours."))
        return
    lines = [_("<b>{title}</b> — the day's check-ins").format(title=escape(challenge.title))]
    rows = []
    for row, name in found[:10]:
        star = "⭐ " if row.featured else ""
        text = escape(shorten(row.text, 80)) if row.text else _("[photo]")
        lines.append(f"{star}#{row.id} {escape(shorten(name or '…', 32))}: {text}")
        if not row.featured:
            rows.append(
                [callback_button(_("⭐ Feature #{id}").format(id=row.id), _data("f", row.id))]
            )
    await message.answer(clip("\n".join(lines)), reply_markup=_keyboard(rows))


# --- buttons ---------------------------------------------------------------------------


@router.callback_query(ChCB.filter())
async def on_challenge_button(
    callback: CallbackQuery,
    callback_data: ChCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    state: FSMContext,
    i18n: I18n,
    settings: Settings,
    scheduler: Scheduler,
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    action = callback_data.a
    note: str | None
    if action == "j":
        note = await _join(session, user, callback_data.id, now)
    elif action == "c":
        note = await _start_check_in(callback, session, user, callback_data.id, state, now)
    elif action == "t":
        note = await _top_button(callback, session, user, callback_data.id, now)
    elif action == "f":
        note = await _feature(session, user, callback_data.id, i18n, settings, now)
        if note is None:
            after_commit.append(scheduler.wake)
            note = _("Featured. It shows on the leaderboard today.")
    else:
        note = _("This button no longer works.")
    if note:
        await callback.answer(note, show_alert=True)
    else:
        await callback.answer()


async def _join(session: AsyncSession, user: User, challenge_id: int, now: datetime) -> str:
    challenge = await ch.joinable(session, user.id, challenge_id, now)
    if isinstance(challenge, ch.Refusal):
        return refusal_text(challenge)
    member = await ch.join(session, user, challenge, now)
    if isinstance(member, ch.Refusal):
        return refusal_text(member)
    return _(
        "You joined «{title}». Check in once a day with /checkin; a reminder comes at "
        "20:00 your time (change it: /checkin time 21:30)."
    ).format(title=challenge.title)


async def _start_check_in(
    callback: CallbackQuery,
    session: AsyncSession,
    user: User,
    challenge_id: int,
    state: FSMContext,
    now: datetime,
) -> str | None:
    found = await ch.can_check_in(session, user, challenge_id, now)
    if isinstance(found, ch.Refusal):
        return refusal_text(found)
    await _ask_for_check_in(state, found[0])
    if callback.message is not None:
        await callback.bot.send_message(user.id, _check_in_prompt(found[0]))  # type: ignore[union-attr]
    return None


async def _top_button(
    callback: CallbackQuery, session: AsyncSession, user: User, challenge_id: int, now: datetime
) -> str | None:
    challenge = await session.get(Challenge, challenge_id)
    if challenge is None or await ch.member_of(session, user.id, challenge.id) is None:
        return refusal_text(ch.Refusal.NOT_MEMBER if challenge else ch.Refusal.NOT_FOUND)
    board = await ch.leaderboard(session, challenge.id, user.id, now)
    featured = await ch.featured(session, challenge.id, now)
    text = clip(board_text(challenge, board, featured))
    await callback.bot.send_message(user.id, text)  # type: ignore[union-attr]
    return None


async def _feature(
    session: AsyncSession,
    user: User,
    check_in_id: int,
    i18n: I18n,
    settings: Settings,
    now: datetime,
) -> str | None:
    found = await ch.feature(session, check_in_id, await get_creator(session, user.id))
    if isinstance(found, ch.Refusal):
        return refusal_text(ch.Refusal.NOT_FOUND if found == ch.Refusal.NOT_YOURS else found)
    row, challenge = found
    if challenge.group_chat_id is not None:
        # Posted to the group by the scheduler (its rate-limited sender), after the commit.
        author = await session.get(User, row.user_id)
        head = _("⭐ Featured check-in · {name} · «{title}»").format(
            name=escape(author.first_name if author else "…"), title=escape(challenge.title)
        )
        await notices.later(session, challenge.group_chat_id, Outgoing(text=head), now=now)
        copy = Outgoing(copy_from=row.chat_id, copy_id=row.message_id)
        await notices.later(session, challenge.group_chat_id, copy, now=now)
    return None


# --- /checkin --------------------------------------------------------------------------


def _check_in_prompt(challenge: Challenge) -> str:
    return _(
        "Check in to «{title}»: send a text or a photo of what you did today. /cancel to stop."
    ).format(title=escape(challenge.title))


async def _ask_for_check_in(state: FSMContext, challenge: Challenge) -> None:
    await state.set_state(CheckinSteps.content)
    await state.update_data(challenge=challenge.id)


@router.message(Command("checkin"))
async def cmd_checkin(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    clock: Clock,
    state: FSMContext,
) -> None:
    now = clock.now()
    words = (command.args or "").split()
    if words and words[0].lower() == "time":
        await _remind_time(message, session, user, words[1:], now)
        return
    if len(words) > 1 or (words and parsing.record_id(words[0]) is None):
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("checkin")))
        return
    if words:
        challenge_id = parsing.record_id(words[0]) or 0
    else:
        mine = [i for i in await ch.for_learner(session, user.id, now) if i.member is not None]
        if len(mine) != 1:
            await message.answer(
                _("Which challenge? /checkin <challenge number>; see /challenge.")
                if mine
                else refusal_text(ch.Refusal.NOT_MEMBER)
            )
            return
        challenge_id = mine[0].challenge.id
    found = await ch.can_check_in(session, user, challenge_id, now)
    if isinstance(found, ch.Refusal):
        await message.answer(refusal_text(found))
        return
    await _ask_for_check_in(state, found[0])
    await message.answer(_check_in_prompt(found[0]))


async def _remind_time(
    message: Message, session: AsyncSession, user: User, words: list[str], now: datetime
) -> None:
    value = words[0].lower() if len(words) == 1 else ""
    match = HHMM.fullmatch(value)
    if value != "off" and match is None:
        await message.answer(_("Usage: /checkin time 20:00 (your time) or /checkin time off"))
        return
    minute = int(match.group(1)) * 60 + int(match.group(2)) if match else None
    if minute is not None and ch.in_quiet(minute, user.quiet_start, user.quiet_end):
        await message.answer(
            _("{time} is inside your quiet hours (see /quiet). Pick another time.").format(
                time=value
            )
        )
        return
    count = await ch.set_remind(session, user, minute, now)
    if not count:
        await message.answer(refusal_text(ch.Refusal.NOT_MEMBER))
    elif minute is None:
        await message.answer(_("No more check-in reminders."))
    else:
        await message.answer(
            _("Check-in reminders now come at {time} your time (outside your quiet hours).").format(
                time=f"{minute // 60:02d}:{minute % 60:02d}"
            )
        )


@router.message(StateFilter(CheckinSteps.content))
async def on_check_in(
    message: Message, session: AsyncSession, user: User, clock: Clock, state: FSMContext
) -> None:
    if message.photo:
        content = ch.Content(message.chat.id, message.message_id, "photo", message.caption or "")
    elif message.text and not message.text.startswith("/"):
        content = ch.Content(message.chat.id, message.message_id, "text", message.text)
    else:
        await message.answer(_("A check-in is a text or a photo. Send one, or /cancel."))
        return
    challenge_id = int((await state.get_data()).get("challenge") or 0)
    await state.clear()
    member = await ch.check_in(session, user, challenge_id, content, clock.now())
    if isinstance(member, ch.Refusal):
        await message.answer(refusal_text(member))
        return
    await message.answer(
        _("✅ Checked in. Streak: 🔥 {streak} (best {best}).").format(
            streak=days_text(member.streak), best=days_text(member.best)
        )
    )


# --- the scheduler's side --------------------------------------------------------------


def install(registry: JobRegistry, i18n: I18n, settings: Settings) -> None:
    def locale_of(user: User | None) -> str:
        return pick_locale(
            user.language if user else None,
            user.language_code if user else None,
            settings.default_language,
        )

    async def remind(ctx: JobContext, job: Job) -> datetime | None:
        """The member's daily reminder: skipped on a day they checked in, moved past quiet
        hours, and armed again for the next local day (one job per member, for ever)."""
        session, now = ctx.session, ctx.clock.now()
        member = await session.get(ChallengeMember, int(job.payload["id"]))
        challenge = await session.get(Challenge, member.challenge_id) if member else None
        user = await session.get(User, member.user_id) if member else None
        if member is None or challenge is None or user is None or member.remind_minute is None:
            return None
        if challenge.ends_at <= now:
            return None
        upcoming = ch.next_remind(now, user.timezone, member.remind_minute)
        today = ch.local_day(now, user.timezone)
        if member.last_day == today or user.is_blocked:
            return upcoming
        if in_quiet_hours(now, Prefs.of(user)):
            # The quiet hours moved over the reminder time since it was set: not today.
            return upcoming
        if not await ch.holds(session, user.id, challenge, now):
            return upcoming  # lost the course for now; a renewal brings reminders back
        streak = ch.current(member.last_day, member.streak, member.freeze_week, today)
        with i18n.context(), i18n.use_locale(locale_of(user)):
            text = _("🔥 «{title}»: time to check in! Your streak: {streak}.").format(
                title=escape(challenge.title), streak=days_text(streak)
            )
            button = Button(_("✅ Check in"), ChCB(a="c", id=challenge.id).pack())
        try:
            await ctx.sender.send(user.id, Outgoing(text=text, buttons=((button,),)))
        except Unreachable:
            user.is_blocked, user.blocked_at = True, now
        except (ChatNotFound, Rejected) as exc:
            job.last_error = str(exc)[:500]
        return upcoming

    async def weekly(ctx: JobContext, job: Job) -> datetime | None:
        """The leaderboard in the linked group, once a week and once at the end."""
        session, now = ctx.session, ctx.clock.now()
        challenge = await session.get(Challenge, int(job.payload["id"]))
        if challenge is None or challenge.group_chat_id is None:
            return None
        creator = await session.get(Creator, challenge.creator_id)
        owner = await session.get(User, creator.user_id) if creator else None
        board = await ch.leaderboard(session, challenge.id, None, now)
        with i18n.context(), i18n.use_locale(locale_of(owner)):
            text = board_text(challenge, board)
        try:
            await ctx.sender.send(challenge.group_chat_id, Outgoing(text=text))
        except (Unreachable, ChatNotFound, Rejected) as exc:
            job.last_error = str(exc)[:500]
        if challenge.ends_at <= now:
            return None
        return min(now + ch.WEEK, challenge.ends_at)

    registry.register(ch.REMIND_JOB, remind)
    registry.register(ch.WEEKLY_JOB, weekly)
