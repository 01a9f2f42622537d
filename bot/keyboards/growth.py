"""Growth messages in the learner's language (reminders, win-back offers), their stop
buttons, and the creator's segment and confirm buttons for /broadcast."""

from __future__ import annotations

from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.growth.segments import COURSE_SEGMENTS, PLAN_SEGMENTS, Segment
from bot.growth.texts import Discount
from bot.keyboards.callbacks import BuyCB
from bot.keyboards.groups import PlanCB
from bot.models import CouponKind, ProductKind
from bot.money import format_money
from bot.scheduler.broadcast import STOP_PREFIX
from bot.scheduler.sender import Button, Outgoing


class GrowthCB(CallbackData, prefix="gr"):
    # "off" (no more reminders and offers) | "on" (undo);
    # "eoff" (no more "commission payable" messages) | "eon" (undo)
    a: str


class SegmentCB(CallbackData, prefix="seg"):
    s: str  # Segment
    id: int  # product id; 0 = all of the creator's products


class SendCB(CallbackData, prefix="bcs"):
    a: str  # "send" | "paid" (allow_paid_broadcast, fast, costs Stars) | "cancel"


class StopCB(CallbackData, prefix=STOP_PREFIX):
    """The Stop button under a running broadcast's status message."""

    id: int  # the broadcast's job id


def stop_keyboard(job_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=_("⏹ Stop"), callback_data=StopCB(id=job_id).pack())]
        ]
    )


def segment_label(segment: str) -> str:
    labels: dict[str, str] = {
        Segment.LEARNERS: _("👩‍🎓 Learners of the course"),
        Segment.VIEWED: _("👀 Viewed, did not buy"),
        Segment.FINISHED: _("🏁 Finished the course"),
        Segment.AT_RISK: _("⏳ At risk (no Done for 7 days)"),
        Segment.MEMBERS: _("👥 Members of the plan"),
        Segment.EXPIRED: _("⌛ Expired members"),
        Segment.TRIAL: _("🎁 Trial users"),
    }
    return labels.get(segment, segment)


def all_segment_label(segment: str) -> str:
    labels: dict[str, str] = {
        Segment.LEARNERS: _("👩‍🎓 Learners of any of my courses"),
        Segment.VIEWED: _("👀 Viewed a course, did not buy"),
        Segment.FINISHED: _("🏁 Finished a course"),
        Segment.AT_RISK: _("⏳ At risk (no Done for 7 days)"),
        Segment.MEMBERS: _("👥 Members of any of my plans"),
        Segment.EXPIRED: _("⌛ Expired members"),
        Segment.TRIAL: _("🎁 Trial users"),
    }
    return labels.get(segment, segment)


def segments_keyboard(kind: str | None, product_id: int) -> InlineKeyboardMarkup:
    """kind None: every segment over all the creator's products."""
    if kind == ProductKind.COURSE:
        segments: tuple[Segment, ...] = COURSE_SEGMENTS
    elif kind == ProductKind.PLAN:
        segments = PLAN_SEGMENTS
    else:
        segments = COURSE_SEGMENTS + PLAN_SEGMENTS
    label = segment_label if kind else all_segment_label
    rows = [
        [
            InlineKeyboardButton(
                text=label(s), callback_data=SegmentCB(s=s.value, id=product_id).pack()
            )
        ]
        for s in segments
    ]
    rows.append([InlineKeyboardButton(text=_("✖ Cancel"), callback_data=SendCB(a="cancel").pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=_("📣 Send"), callback_data=SendCB(a="send").pack()),
                InlineKeyboardButton(text=_("✖ Cancel"), callback_data=SendCB(a="cancel").pack()),
            ],
            [
                InlineKeyboardButton(
                    text=_("⚡ Paid broadcast (fast)"), callback_data=SendCB(a="paid").pack()
                )
            ],
        ]
    )


def reminders_back_keyboard(action: str = "on") -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("🔔 Turn them back on"), callback_data=GrowthCB(a=action).pack()
                )
            ]
        ]
    )


class I18nGrowthTexts:
    def __init__(self, i18n: I18n) -> None:
        self.i18n = i18n

    def _discount(self, discount: Discount, locale: str) -> str:
        if discount.kind == CouponKind.PERCENT:
            return f"{discount.value}%"
        return format_money(discount.value, discount.currency or "XTR", locale)

    def _stop(self, locale: str) -> Button:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        return Button(_("🔕 No more reminders or offers"), GrowthCB(a="off").pack())

    def reminder(
        self, locale: str, kind: str, product_id: int, title: str, discount: Discount | None
    ) -> Outgoing:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        text = _("You left «{title}» at checkout. It is still waiting for you.").format(
            title=escape(title)
        )
        if discount is not None:
            text += "\n" + _(
                "Use the code <code>{code}</code> for {discount} off: tap «Have a promo code?» "
                "after choosing how to pay."
            ).format(code=escape(discount.code), discount=self._discount(discount, locale))
        if kind == ProductKind.PLAN:
            buy = Button(_("🔄 Back to checkout"), PlanCB(a="buy", id=product_id).pack())
        else:
            buy = Button(_("🛒 Back to checkout"), BuyCB(id=product_id).pack())
        return Outgoing(text=text, buttons=((buy,), (self._stop(locale),)))

    def winback(
        self, locale: str, plan_id: int, title: str, discount: Discount, days: int
    ) -> Outgoing:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        text = _(
            "We miss you in «{title}». Come back with {discount} off your next period: "
            "use the code <code>{code}</code> within {days} days (tap «Have a promo code?» "
            "after choosing how to pay). It works once."
        ).format(
            title=escape(title),
            discount=self._discount(discount, locale),
            code=escape(discount.code),
            days=days,
        )
        renew = Button(_("🔄 Renew"), PlanCB(a="buy", id=plan_id).pack())
        return Outgoing(text=text, buttons=((renew,), (self._stop(locale),)))

    def payable(self, locale: str, amount: int, currency: str, creator: str) -> Outgoing:
        def _(text: str) -> str:
            return self.i18n.gettext(text, locale=locale)

        text = _(
            "💰 Your affiliate commission of {amount} from {creator} is payable now: its "
            "hold has ended. The creator pays it out; /earnings shows your balance."
        ).format(amount=format_money(amount, currency, locale), creator=escape(creator))
        stop = Button(_("🔕 No more earnings messages"), GrowthCB(a="eoff").pack())
        return Outgoing(text=text, buttons=((stop,),))
