"""Study partners: /partner, and the Accept / Decline / End buttons. Thin: the rules are
bot.services.partners. What reaches the other learner is a notice queued with the change
and sent after the commit, in their language."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import parsing
from bot.config import Settings
from bot.handlers import commands
from bot.handlers.common import Command, is_private
from bot.handlers.payments import Notifier
from bot.i18n import pick_locale
from bot.models import Course, Partnership, PartnerStatus, User
from bot.scheduler import notices
from bot.scheduler.clock import Clock
from bot.scheduler.sender import Button, Outgoing
from bot.scheduler.worker import Scheduler
from bot.services import partners as pt

router = Router(name=__name__)
router.message.filter(is_private)


class PtCB(CallbackData, prefix="pt"):
    a: str  # y: accept, n: decline, e: end
    id: int


def refusal_text(refusal: pt.Refusal) -> str:
    return {
        pt.Refusal.NO_COURSE: _("There is no such course. Check the number in /my."),
        pt.Refusal.NOT_HOLDER: _("Study partners are for learners who have this course."),
        pt.Refusal.OWN_COURSE: _("This is your own course."),
        pt.Refusal.NOT_ENROLLED: _(
            "You are opted in. A partner is proposed once your lessons run (not paused)."
        ),
        pt.Refusal.HAS_PARTNER: _("You already have a partner (or a proposal) in this course."),
        pt.Refusal.NO_MATCH: _(
            "You are opted in. Nobody fits yet (similar progress and an overlapping day); "
            "send /partner with the course number again later."
        ),
        pt.Refusal.NOT_FOUND: _("This proposal is not yours or no longer exists."),
        pt.Refusal.EXPIRED: _("This proposal has expired (48 hours). /partner looks again."),
        pt.Refusal.ALREADY: _("You have accepted already."),
        pt.Refusal.CLOSED: _("This proposal is closed."),
    }[refusal]


def _who(user: User | None) -> str:
    if user is None:
        return "…"
    name = escape(user.first_name or "…")
    return f"{name} (@{escape(user.username)})" if user.username else name


class Tell:
    """Notices to learners in their own language, queued now, sent after the commit."""

    def __init__(
        self, session: AsyncSession, i18n: I18n, settings: Settings, now: datetime
    ) -> None:
        self.session, self.i18n, self.settings, self.now = session, i18n, settings, now
        self.queued: list[notices.Notice] = []

    async def __call__(self, user_id: int, build: Callable[[], Outgoing]) -> None:
        user = await self.session.get(User, user_id)
        locale = pick_locale(
            user.language if user else None,
            user.language_code if user else None,
            self.settings.default_language,
        )
        with self.i18n.context(), self.i18n.use_locale(locale):
            message = build()
        lease = self.settings.scheduler_lease
        notice = await notices.queue(self.session, user_id, message, now=self.now, lease=lease)
        self.queued.append(notice)

    def after(self, after_commit: list[Callable[[], object]], notifier: Notifier) -> None:
        async def send_all() -> None:
            for notice in self.queued:
                await notifier.send(notice)

        after_commit.append(send_all)


def _proposal(pair: Partnership, title: str) -> Callable[[], Outgoing]:
    def build() -> Outgoing:
        text = _(
            "🤝 A study partner for «{title}»: a learner within two lessons of you whose "
            "waking day overlaps yours. Names are shown only once you both accept; the "
            "proposal is open for 48 hours."
        ).format(title=escape(title))
        buttons = (
            (
                Button(_("✅ Accept"), PtCB(a="y", id=pair.id).pack()),
                Button(_("✖️ Decline"), PtCB(a="n", id=pair.id).pack()),
            ),
        )
        return Outgoing(text=text, buttons=buttons)

    return build


def _matched(other: User | None, title: str, pair_id: int) -> Callable[[], Outgoing]:
    def build() -> Outgoing:
        text = _("🤝 You both accepted! Your study partner for «{title}»: {who}.").format(
            title=escape(title), who=_who(other)
        )
        end = Button(_("End the partnership"), PtCB(a="e", id=pair_id).pack())
        return Outgoing(text=text, buttons=((end,),))

    return build


def _closed_note(declined: bool, title: str) -> Callable[[], Outgoing]:
    def build() -> Outgoing:
        if declined:
            text = _("The study partner proposal for «{title}» did not work out.")
        else:
            text = _("Your study partnership for «{title}» has ended.")
        return Outgoing(text=text.format(title=escape(title)) + "\n" + _("/partner looks again."))

    return build


@router.message(Command("partner"))
async def cmd_partner(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    i18n: I18n,
    bot: Bot,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    words = (command.args or "").split()
    if len(words) == 2 and words[0].lower() == "off" and parsing.record_id(words[1]):
        left = await pt.opt_out(session, user.id, parsing.record_id(words[1]) or 0)
        await message.answer(
            _("You will not be proposed a partner for this course.")
            if left
            else _("You were not looking for a partner in this course.")
        )
        return
    course_id = parsing.record_id(words[0]) if len(words) == 1 else None
    if course_id is None:
        await message.answer(_("Usage: {usage}").format(usage=commands.usage("partner")))
        return
    course = await pt.opt_in(session, user, course_id, now)
    if isinstance(course, pt.Refusal):
        await message.answer(refusal_text(course))
        return
    pair = await pt.find_match(session, user, course.id, now)
    if isinstance(pair, pt.Refusal):
        await message.answer(refusal_text(pair))
        return
    tell = Tell(session, i18n, settings, now)
    for learner in (pair.user_a, pair.user_b):
        await tell(learner, _proposal(pair, course.title))
    tell.after(after_commit, Notifier(bot, sessionmaker, settings, scheduler))
    await message.answer(_("Found someone! The proposal comes in a separate message."))


@router.callback_query(PtCB.filter())
async def on_partner_button(
    callback: CallbackQuery,
    callback_data: PtCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
    settings: Settings,
    i18n: I18n,
    bot: Bot,
    scheduler: Scheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    after_commit: list[Callable[[], object]],
) -> None:
    now = clock.now()
    if callback_data.a in ("y", "n"):
        pair = await pt.answer(session, callback_data.id, user.id, callback_data.a == "y", now)
    elif callback_data.a == "e":
        pair = await pt.end(session, callback_data.id, user.id, now)
    else:
        await callback.answer(_("This button no longer works."), show_alert=True)
        return
    if isinstance(pair, pt.Refusal):
        await callback.answer(refusal_text(pair), show_alert=True)
        return
    course = await session.get(Course, pair.course_id)
    title = course.title if course else ""
    tell = Tell(session, i18n, settings, now)
    other = pt.other_of(pair, user.id)
    if pair.status == PartnerStatus.ACTIVE:
        for me, them in ((pair.user_a, pair.user_b), (pair.user_b, pair.user_a)):
            await tell(me, _matched(await session.get(User, them), title, pair.id))
        note = None
    elif pair.status in (PartnerStatus.DECLINED, PartnerStatus.ENDED):
        await tell(other, _closed_note(pair.status == PartnerStatus.DECLINED, title))
        note = _("Done.")
    else:
        note = _("Accepted. We tell you when the other learner accepts too.")
    tell.after(after_commit, Notifier(bot, sessionmaker, settings, scheduler))
    await callback.answer(note, show_alert=bool(note))
