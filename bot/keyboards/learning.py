"""The learner's lesson buttons, library buttons, and the i18n renderer the scheduler uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.i18n import pick_locale
from bot.keyboards.groups import invite_button
from bot.keyboards.menus import catalog_or_home, short_title
from bot.keyboards.quizzes import QuizStartCB
from bot.models import ContentType
from bot.scheduler.render import lesson_heading, lesson_message
from bot.scheduler.sender import Button, Outgoing
from bot.services.drip import CourseProgress, LessonView
from bot.services.groups import HeldPlan


class LessonAction:
    DONE = "done"
    NEXT = "next"


class LessonCB(CallbackData, prefix="ls"):
    action: str
    id: int  # Delivery.id


class EnrollmentAction:
    PAUSE = "pause"
    RESUME = "resume"


class EnrollmentCB(CallbackData, prefix="en"):
    action: str
    id: int  # Course.id


class I18nRenderer:
    """Lessons and broadcast progress in the learner's (or creator's) language."""

    def __init__(self, i18n: I18n) -> None:
        self.i18n = i18n

    def _locale(self, view: LessonView) -> str:
        return pick_locale(view.language, view.language_code, self.i18n.default_locale)

    def lesson(self, view: LessonView) -> Outgoing:
        locale = self._locale(view)

        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        label = _("Lesson {number} of {total}").format(number=view.number, total=view.total)
        if view.kind == ContentType.QUIZ:
            # A quiz is done by answering it: Start instead of Done and Next.
            start = QuizStartCB(d=view.delivery_id, m="p").pack()
            by_buttons = QuizStartCB(d=view.delivery_id, m="b").pack()
            return lesson_message(
                replace(view, text=_("📝 A quiz: answer the questions to finish this lesson.")),
                lesson_heading(view, label),
                (Button(_("▶️ Start the quiz"), start), Button(_("🔘 With buttons"), by_buttons)),
            )
        buttons = (
            Button(_("✅ Done"), LessonCB(action=LessonAction.DONE, id=view.delivery_id).pack()),
            Button(_("Next ▶"), LessonCB(action=LessonAction.NEXT, id=view.delivery_id).pack()),
        )
        return lesson_message(view, lesson_heading(view, label), buttons)

    def broadcast_progress(
        self,
        locale: str,
        sent: int,
        failed: int,
        total: int,
        eta_seconds: float,
        finished: bool,
        left: int = 0,
        cancelled: int = 0,
        stopped: bool = False,
        cost_tenths: int | None = None,
        no_stars: int = 0,
    ) -> str:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        if stopped:
            text = _(
                "⏹ Broadcast stopped: {sent} sent, {blocked} skipped (blocked the bot or "
                "unreachable), {cancelled} cancelled (not sent)."
            ).format(sent=sent, blocked=failed, cancelled=cancelled)
        elif finished:
            text = _(
                "📣 Broadcast finished: {sent} of {total} delivered, {failed} unreachable."
            ).format(sent=sent, total=total, failed=failed)
        else:
            text = _(
                "📣 Broadcast in progress: {sent} of {total} sent, {failed} unreachable. "
                "About {eta} left."
            ).format(sent=sent, total=total, failed=failed, eta=duration(eta_seconds, _))
        if left:
            # Refunded or expired after the broadcast was queued: not a failure to reach them.
            text += " " + _("Skipped, no longer enrolled (refunded or expired): {n}.").format(
                n=left
            )
        if cost_tenths is not None:
            text += " " + _("Paid broadcast: {stars} Stars spent.").format(
                stars=stars_text(cost_tenths)
            )
        if no_stars:
            # Counted among the failed above; said apart so the creator knows to top up.
            text += " " + _(
                "Refused by Telegram, the bot's Stars balance ran out: {n} (not sent)."
            ).format(n=no_stars)
        return text

    def broadcast_stop_label(self, locale: str) -> str:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        return _("⏹ Stop")


def stars_text(tenths: int) -> str:
    """Tenths of a Star as Stars with one decimal (0.1 Star is a paid message's price)."""
    return f"{tenths // 10}.{tenths % 10}"


def duration(seconds: float, _=_) -> str:  # type: ignore[no-untyped-def]
    seconds = max(0, round(seconds))
    if seconds < 90:
        return _("{n} s").format(n=seconds)
    if seconds < 5400:
        return _("{n} min").format(n=round(seconds / 60))
    return _("{n} h").format(n=round(seconds / 3600, 1))


def library_keyboard(
    progress: list[CourseProgress], plans: Sequence[HeldPlan] = ()
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for p in progress:
        if p.completed:
            continue
        if p.paused:
            text = _("▶ Resume: {title}").format(title=short_title(p.title))
            data = EnrollmentCB(action=EnrollmentAction.RESUME, id=p.course_id)
        else:
            text = _("⏸ Pause: {title}").format(title=short_title(p.title))
            data = EnrollmentCB(action=EnrollmentAction.PAUSE, id=p.course_id)
        rows.append([InlineKeyboardButton(text=text, callback_data=data.pack())])
    for plan in plans:
        if plan.has_chats:
            label = _("🔗 Invite link: {title}").format(title=short_title(plan.title))
            rows.append([invite_button(plan.plan_id, label)])
    rows += catalog_or_home().inline_keyboard
    return InlineKeyboardMarkup(inline_keyboard=rows)
