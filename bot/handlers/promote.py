"""Promoted listings: /promote for creators, and the sponsored slots learners see in the
catalog, search results and recommendations. Thin: the rules live in
bot.marketplace.promotions (money, figures) and bot.marketplace.sponsored (the auction)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from aiogram import Bot, Router
from aiogram.filters import CommandObject
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LabeledPrice,
    Message,
)
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.analytics.sources import Source
from bot.config import Settings
from bot.handlers import commands, market, views
from bot.handlers.common import Command, current_locale, is_private, show
from bot.keyboards.callbacks import PromoteAction, PromoteCB, SponsoredCB
from bot.keyboards.menus import callback_button, short_title
from bot.marketplace import promotions, sponsored
from bot.marketplace.promotions import Problem
from bot.marketplace.sponsored import Live, LiveSet
from bot.models import CampaignStatus, Course, Creator, EventKind, PromoCampaign, User
from bot.money import STARS, format_money
from bot.payments.checkout import PaymentResult
from bot.scheduler.clock import Clock
from bot.services.catalog import CourseSummary
from bot.services.events import EventBuffer
from bot.services.search import CatalogSearch
from bot.services.users import get_creator
from bot.text import shorten

router = Router(name=__name__)

INVOICE_TITLE = 32


# --- texts ------------------------------------------------------------------------------


def stars(amount: int) -> str:
    return format_money(amount, STARS, current_locale())


def problem_text(problem: Problem) -> str:
    texts = {
        Problem.UNKNOWN_COURSE: _("There is no course with that number."),
        Problem.NOT_YOURS: _("You can promote only your own courses."),
        Problem.UNPUBLISHED: _("Publish the course first: only published courses can be promoted."),
        Problem.BUDGET_LOW: _("The budget must be at least {n}.").format(
            n=stars(promotions.MIN_BUDGET)
        ),
        Problem.BUDGET_HIGH: _("The budget can be at most {n} per top-up.").format(
            n=stars(promotions.MAX_BUDGET)
        ),
        Problem.BID_LOW: _("The bid per click must be at least {n}.").format(
            n=stars(promotions.MIN_BID)
        ),
        Problem.BID_ABOVE_BUDGET: _("The bid per click cannot be more than the budget."),
        Problem.UNKNOWN_CAMPAIGN: _("You have no campaign with that number. See /promote."),
        Problem.NOT_RUNNING: _("That campaign is not in a state for this. See /promote."),
        Problem.NO_BUDGET: _(
            "Its unused budget does not cover one click at its bid: start a new campaign."
        ),
        Problem.OVER_UNUSED: _("That is more than the campaign's unused budget. See /promote."),
        Problem.NOTHING_UNUSED: _("That campaign has no unused budget."),
    }
    return texts[problem] + "\n" + _("Nothing was changed.")


def status_label(status: str) -> str:
    labels: dict[str, str] = {
        CampaignStatus.ACTIVE: _("running"),
        CampaignStatus.PAUSED: _("paused"),
        CampaignStatus.ENDED: _("budget used up"),
    }
    return labels.get(status, _("awaiting payment"))


def usage_text() -> str:
    return _("Usage: {usage}").format(usage=commands.usage("promote"))


def dashboard_text(figures: list[promotions.CampaignFigures], bal: promotions.Balances) -> str:
    lines = [
        _("📣 <b>Your promoted listings</b>"),
        _("Promotion balance: {promo} · your balance: {mine}").format(
            promo=stars(bal.promotion), mine=stars(bal.creator)
        ),
        "",
    ]
    if not figures:
        lines.append(
            _("No campaigns yet. Start one: {usage}").format(usage=commands.usage("promote"))
        )
        return "\n".join(lines)
    for f in figures:
        cpp = stars(round(f.cost_per_purchase)) if f.cost_per_purchase is not None else "—"
        lines += [
            _("#{id} «{title}» — {status}, bid {bid}").format(
                id=f.id,
                title=escape(shorten(f.title, 40)),
                status=status_label(f.status),
                bid=stars(f.bid),
            ),
            _("budget {budget} · spent {spent} · unused {unused}").format(
                budget=stars(f.budget), spent=stars(f.spent), unused=stars(f.unused)
            ),
            _("impressions {i} · clicks {c} · purchases {p} · cost per purchase {cpp}").format(
                i=f.impressions, c=f.clicks, p=f.purchases, cpp=cpp
            ),
            "",
        ]
    lines.append(
        _(
            "A click costs at most your bid: the least that keeps your slot. Withdraw part of "
            "a budget: /promote withdraw <i>campaign</i> <i>amount</i>"
        )
    )
    return "\n".join(lines)


def dashboard_keyboard(figures: list[promotions.CampaignFigures]) -> InlineKeyboardMarkup | None:
    rows: list[list[InlineKeyboardButton]] = []
    for f in figures[:20]:
        row: list[InlineKeyboardButton] = []
        if f.status == CampaignStatus.ACTIVE:
            row.append(
                callback_button(
                    _("⏸ Pause #{id}").format(id=f.id),
                    PromoteCB(a=PromoteAction.PAUSE, id=f.id).pack(),
                )
            )
        elif f.status == CampaignStatus.PAUSED:
            row.append(
                callback_button(
                    _("▶ Resume #{id}").format(id=f.id),
                    PromoteCB(a=PromoteAction.RESUME, id=f.id).pack(),
                )
            )
        if f.unused > 0:
            row.append(
                callback_button(
                    _("↩ Withdraw {n} #{id}").format(n=stars(f.unused), id=f.id),
                    PromoteCB(a=PromoteAction.WITHDRAW, id=f.id).pack(),
                )
            )
        if row:
            rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def dashboard(
    session: AsyncSession, creator_id: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    figures = await promotions.campaign_figures(session, creator_id)
    bal = await promotions.balances(session, creator_id)
    return dashboard_text(figures, bal), dashboard_keyboard(figures)


async def topup_receipt(
    session: AsyncSession, result: PaymentResult, locale: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The creator's receipt for a top-up, queued with the booking (sent after commit)."""
    campaign = await session.get(PromoCampaign, result.product_id or 0)
    lines = [
        _("✅ Payment received — thank you!"),
        "",
        _("{amount} is on the promotion balance of campaign #{id}.").format(
            amount=format_money(result.amount, result.currency, locale),
            id=result.product_id,
        ),
    ]
    if campaign is not None and campaign.status == CampaignStatus.ACTIVE:
        lines.append(_("Your course now competes for sponsored slots. /promote shows its figures."))
    else:
        lines.append(
            _("The campaign is not running; /promote shows it, and unused Stars can be withdrawn.")
        )
    lines.append(_("Order: <code>{ref}</code>").format(ref=escape(result.order_ref or "")))
    return "\n".join(lines), None


# --- /promote ---------------------------------------------------------------------------


@router.message(Command("promote"), is_private)
async def cmd_promote(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    bot: Bot,
    clock: Clock,
) -> None:
    """/promote | /promote <course> <budget> <bid> | /promote withdraw <campaign> [amount]"""
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(_("Promoted listings are for creators. See /becomecreator."))
        return
    args = (command.args or "").split()
    if not args:
        text, markup = await dashboard(session, creator.id)
        await message.answer(text, reply_markup=markup)
    elif args[0].lower() == "withdraw":
        await _withdraw(message, session, creator.id, args[1:], clock.now())
    elif len(args) == 3:
        await _start(message, session, creator, args, settings, bot, clock.now())
    else:
        await message.answer(usage_text())


async def _withdraw(
    message: Message, session: AsyncSession, creator_id: int, args: list[str], now: datetime
) -> None:
    campaign_id = parsing.record_id(args[0]) if args else None
    amount = parsing.whole(args[1], -(10**9), 10**9) if len(args) == 2 else None
    if campaign_id is None or len(args) > 2 or (len(args) == 2 and amount is None):
        await message.answer(
            _("Usage: /promote withdraw <i>campaign</i> [<i>amount</i>]")
            + "\n"
            + _("Nothing was changed.")
        )
        return
    done = await promotions.withdraw(session, creator_id, campaign_id, amount, now)
    if isinstance(done, Problem):
        await message.answer(problem_text(done))
        return
    await message.answer(
        _("{amount} moved from campaign #{id} to your balance.").format(
            amount=stars(done), id=campaign_id
        )
    )


async def _start(
    message: Message,
    session: AsyncSession,
    creator: Creator,
    args: list[str],
    settings: Settings,
    bot: Bot,
    now: datetime,
) -> None:
    from bot.handlers.payments import commit_before_invoice

    course_id = parsing.record_id(args[0])
    budget = parsing.whole(args[1], -(10**9), 10**9)
    bid = parsing.whole(args[2], -(10**9), 10**9)
    if course_id is None or budget is None or bid is None:
        await message.answer(usage_text() + "\n" + _("Nothing was changed."))
        return
    if not settings.payments_stars_enabled:
        await message.answer(
            _("Stars payments are switched off, so promotions cannot be paid now.")
        )
        return
    started = await promotions.start(
        session, creator, course_id, budget, bid, timedelta(minutes=settings.order_ttl_minutes), now
    )
    if isinstance(started, Problem):
        await message.answer(problem_text(started))
        return
    campaign, order = started
    course_title = (await _title(session, campaign.course_id)) or ""
    title = shorten(_("Promotion: {title}").format(title=course_title), INVOICE_TITLE)
    # The pre-checkout must find the order, so it commits before the invoice is shown.
    await commit_before_invoice(session)
    await bot.send_invoice(
        chat_id=message.chat.id,
        title=title,
        description=_(
            "Budget for sponsored slots of «{title}», at most {bid} per click. Unused Stars "
            "can be withdrawn to your balance."
        ).format(title=shorten(course_title, 80), bid=stars(bid)),
        payload=order.public_ref,
        currency=STARS,
        prices=[LabeledPrice(label=title, amount=order.amount_minor)],
        provider_token="",
    )


async def _title(session: AsyncSession, course_id: int) -> str | None:
    course = await session.get(Course, course_id)
    return course.title if course else None


@router.callback_query(PromoteCB.filter())
async def on_promote_button(
    callback: CallbackQuery,
    callback_data: PromoteCB,
    session: AsyncSession,
    user: User,
    clock: Clock,
) -> None:
    creator = await get_creator(session, user.id)
    if creator is None:
        await callback.answer(_("Promoted listings are for creators."), show_alert=True)
        return
    now = clock.now()
    action = callback_data.a
    done: object
    if action == PromoteAction.WITHDRAW:
        done = await promotions.withdraw(session, creator.id, callback_data.id, None, now)
    else:
        paused = action == PromoteAction.PAUSE
        done = await promotions.set_paused(session, creator.id, callback_data.id, paused, now)
    if isinstance(done, Problem):
        await callback.answer(problem_text(done), show_alert=True)
        return
    text, markup = await dashboard(session, creator.id)
    await show(callback, text, markup, note=_("Done."))


# --- sponsored slots: shown ... -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pick:
    item: CourseSummary
    token: str


async def live(session: AsyncSession, search: CatalogSearch) -> LiveSet:
    return await sponsored.campaigns(search, search.sessionmaker).live(session)


async def place(
    session: AsyncSession,
    search: CatalogSearch,
    user_id: int,
    placement: str,
    organic: list[CourseSummary],
    ranked: Iterable[tuple[Live, float]],
    now: datetime,
) -> list[Pick]:
    """The sponsored slots beside `organic` results, each recorded as an impression."""
    slots = sponsored.slots_for(len(organic))
    if slots <= 0:
        return []
    snapshot = await search.snapshot(session)

    async def owns(course_id: int) -> bool:
        # Unpublished since the campaigns were loaded counts as not showable too.
        return course_id not in snapshot.by_id or await search.owned.owns(
            session, user_id, course_id, now
        )

    won = await sponsored.auction(ranked, slots, user_id, {i.id for i in organic}, owns)
    return [
        Pick(
            snapshot.by_id[s.live.course_id],
            promotions.impression(
                session, s.live.campaign_id, s.live.course_id, user_id, placement, s.price, now
            ),
        )
        for s in won
    ]


def with_picks(
    text: str,
    markup: InlineKeyboardMarkup,
    picks: list[Pick],
    locale: str,
    header: int = 2,
) -> tuple[str, InlineKeyboardMarkup]:
    """A screen of course lines (after `header` lines) and course buttons (the first rows)
    with the sponsored slots put in: slot j at position SPACING × j, clearly labelled."""
    if not picks:
        return text, markup
    lines = text.split("\n")
    rows = list(markup.inline_keyboard)
    label = _("Sponsored")
    for j, pick in enumerate(picks):
        at = sponsored.SPACING * j
        line = f"📣 <i>{label}</i> · " + views.summary_line(pick.item, locale)
        lines.insert(min(header + at, len(lines)), line)
        button = callback_button(f"📣 {label} · {short_title(pick.item.title)}", _data(pick))
        rows.insert(min(at, len(rows)), [button])
    # The rows are built and valid already: copied, not validated again (~0.1 ms).
    return "\n".join(lines), markup.model_copy(update={"inline_keyboard": rows})


def _data(pick: Pick) -> str:
    # SponsoredCB(t=token).pack() without building the model; the token is url-safe.
    return f"{SponsoredCB.__prefix__}{SponsoredCB.__separator__}{pick.token}"


# --- ... and clicked ----------------------------------------------------------------------


@router.callback_query(SponsoredCB.filter())
async def on_sponsored(
    callback: CallbackQuery,
    callback_data: SponsoredCB,
    session: AsyncSession,
    user: User,
    events: EventBuffer,
    search: CatalogSearch,
    clock: Clock,
) -> None:
    now = clock.now()
    clicked = await promotions.click(session, callback_data.t, user.id, now)
    if clicked is None:
        await callback.answer(_("This button is not valid any more."), show_alert=True)
        return
    card = await search.card(session, clicked.course_id, user.id, now)
    if card is None:
        await callback.answer(views.course_unavailable(), show_alert=True)
        return
    events.record(
        EventKind.VIEW,
        user_id=user.id,
        course_id=card.id,
        creator_id=card.creator_id,
        data={"src": Source.SPONSORED},
        at=now,
    )
    await show(callback, *await market.card_screen(session, search, card, -1, now))
