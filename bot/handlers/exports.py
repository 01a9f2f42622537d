"""Creators' numbers as files and pictures: /export (CSV), /chart (PNG) and, for platform
owners, /platform; also the 📈 Chart and 📄 CSV buttons of the /stats dashboard, which send
the same picture and the sales file for the dashboard's scope and period.

A creator sees their own products only; a platform owner (ADMIN_IDS, checked on every
call) any creator's with creator=<id>, or the whole platform. Something that is not
yours is answered exactly like something that does not exist, and nothing is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from html import escape

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, FSInputFile, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.analytics import charts
from bot.analytics.charts import ChartTexts
from bot.analytics.exports import DEFAULT_PERIODS, ExportKind, discard, write_export
from bot.analytics.periods import (
    Period,
    PeriodProblem,
    Scope,
    looks_like_period,
    parse_period,
    product_creator,
    resolve_scope,
)
from bot.analytics.platform import PlatformReport, platform_report
from bot.config import Settings
from bot.handlers.common import Command, clip, current_locale, is_private
from bot.handlers.stats import may_see, refusal, step_labels
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.models import Course, Creator, Plan, ProductKind, User
from bot.money import STARS, format_money
from bot.scheduler.clock import Clock
from bot.services.users import creator_for, is_owner

router = Router(name=__name__)
router.message.filter(is_private)

# Telegram takes documents up to 50 MB from a bot.
MAX_DOCUMENT_BYTES = 49 * 1024 * 1024


class Refusal(Exception):
    """A polite answer instead of the report; str(exc) is the text."""


@dataclass(frozen=True, slots=True)
class Request:
    scope: Scope
    period: Period


def period_help() -> str:
    return _(
        "A period is 7d, 30d or 90d (any number of days up to {max}), a month as YYYY-MM, or all."
    ).format(max=parsing.MAX_DAYS)


def period_refusal(problem: PeriodProblem) -> str:
    if problem == PeriodProblem.FUTURE:
        return _("That month has not begun yet.")
    return period_help()


def not_yours() -> str:
    return _("No such course or plan of yours.")


def period_text(period: Period) -> str:
    if period.is_all:
        return _("all time")
    last = period.end - timedelta(days=1)
    return f"{period.label} ({period.start:%Y-%m-%d} – {last:%Y-%m-%d})"


async def _request(
    session: AsyncSession,
    user: User,
    settings: Settings,
    words: list[str],
    now_period: Callable[[str], Period | PeriodProblem],
    usage: str,
) -> Request:
    """Who is asking and what for: raises Refusal with the answer when it cannot be."""
    owner = is_owner(user.id, settings.admin_ids)
    creator = await creator_for(session, user, settings.admin_ids)
    if creator is None:
        raise Refusal(_("This command is for course creators."))
    period_word: str | None = None
    product: tuple[str, int] | None = None
    creator_id: int | None = None if owner else creator.id
    asked_creator: int | None = None
    for word in words:
        key, sep, value = word.partition("=")
        key = key.lower()
        if not sep and looks_like_period(word) and period_word is None:
            period_word = word
        elif sep and key in (ProductKind.COURSE, ProductKind.PLAN) and product is None:
            pid = parsing.record_id(value)
            if pid is None:
                raise Refusal(not_yours())
            product = (key, pid)
        elif sep and key == "creator" and asked_creator is None:
            if not owner:
                raise Refusal(_("Only platform owners can look at another creator's numbers."))
            asked_creator = parsing.record_id(value)
            if asked_creator is None or await session.get(Creator, asked_creator) is None:
                raise Refusal(_("No such creator."))
        else:
            raise Refusal(usage)
    period = now_period(period_word or "")
    if isinstance(period, PeriodProblem):
        raise Refusal(period_refusal(period))
    if asked_creator is not None:
        creator_id = asked_creator
    if product is not None:
        seller = await product_creator(session, *product)
        if seller is None or (creator_id is not None and seller != creator_id):
            raise Refusal(not_yours())
        creator_id = seller
    kind, pid = product if product is not None else (None, None)
    return Request(Scope(creator_id, kind, pid), period)


# --- /export -------------------------------------------------------------------------------


def export_usage() -> str:
    return _(
        "<b>Your numbers as a file</b> (CSV, UTF-8, opens in Excel):\n"
        "/export sales [30d | YYYY-MM | all] — every payment and refund\n"
        "/export learners [YYYY-MM | all] — every learner of every course, with progress\n"
        "/export funnel [30d | YYYY-MM | all] — views, Buy presses, invoices and payments per "
        "product per day\n"
        "Add course=ID or plan=ID for one product."
    )


def export_caption(kind: ExportKind, rows: int, period: Period) -> str:
    what = {
        ExportKind.SALES: _("Sales"),
        ExportKind.LEARNERS: _("Learners"),
        ExportKind.FUNNEL: _("Funnel"),
    }[kind]
    count = ngettext("{n} row", "{n} rows", rows).format(n=rows)
    return _("{what}, {period}: {count}. Dates in UTC.").format(
        what=what, period=period_text(period), count=count
    )


def empty_export_text(kind: ExportKind, period: Period) -> str:
    texts = {
        ExportKind.SALES: _("No payments or refunds in {period}."),
        ExportKind.LEARNERS: _("No learners enrolled in {period}."),
        ExportKind.FUNNEL: _("No views, invoices or payments in {period}."),
    }
    return (
        texts[kind].format(period=period_text(period))
        + " "
        + _("The file has only its header row.")
    )


@router.message(Command("export"))
async def cmd_export(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    words = (command.args or "").split()
    try:
        kind = ExportKind(words[0].lower()) if words else None
    except ValueError:
        kind = None
    try:
        if kind is None:
            if await creator_for(session, user, settings.admin_ids) is None:
                raise Refusal(_("This command is for course creators."))
            raise Refusal(export_usage())
        now = clock.now()
        request = await _request(
            session,
            user,
            settings,
            words[1:],
            lambda text: parse_period(text, now, DEFAULT_PERIODS[kind]),
            export_usage(),
        )
    except Refusal as refused:
        await message.answer(str(refused))
        return
    await send_export(message, session, kind, request.scope, request.period)


async def send_export(
    message: Message, session: AsyncSession, kind: ExportKind, scope: Scope, period: Period
) -> None:
    """Write the file, send it as a document (with a sentence when it is empty), delete it."""
    export = await write_export(session, kind, scope, period)
    try:
        if export.size > MAX_DOCUMENT_BYTES:
            await message.answer(
                _(
                    "That file would be larger than Telegram takes (50 MB): "
                    "ask for a shorter period."
                )
            )
            return
        caption = export_caption(kind, export.rows, period)
        await message.answer_document(
            FSInputFile(export.path, filename=export.filename), caption=caption
        )
        if export.rows == 0:
            await message.answer(empty_export_text(kind, period))
    finally:
        discard(export.path)


# --- /chart --------------------------------------------------------------------------------


def chart_usage() -> str:
    return _(
        "<b>Revenue per day and the funnel, as a picture</b>\n"
        "/chart [7d | 30d | 90d | YYYY-MM | all] [course=ID | plan=ID]"
    )


def chart_texts() -> ChartTexts:
    return ChartTexts(
        revenue=_("Revenue per day, {currency}"),
        funnel=_("Funnel (unique learners)"),
        no_revenue=_("No revenue in this period"),
        of_previous=_("{percent} of the step before"),
    )


async def send_chart(
    message: Message,
    session: AsyncSession,
    key: str,
    render: Callable[[], Awaitable[bytes]],
    caption: str,
    clock: Clock,
) -> None:
    """Send the chart for `key`: by its file_id when Telegram already has it, else render
    it (off the event loop), upload it and keep the file_id Telegram gives back."""
    file_id = await charts.cached_file_id(session, key)
    if file_id is not None:
        try:
            await message.answer_photo(file_id, caption=caption)
            return
        except TelegramBadRequest:
            await charts.forget_file_id(session, key)  # a file_id another bot made, say
    png = await render()
    sent = await message.answer_photo(BufferedInputFile(png, filename="chart.png"), caption=caption)
    if sent.photo:
        await charts.remember_file_id(session, key, sent.photo[-1].file_id, clock.now())


async def chart_title(session: AsyncSession, scope: Scope) -> str:
    if scope.kind is not None:
        model = Course if scope.kind == ProductKind.COURSE else Plan
        title = await session.scalar(select(model.title).where(model.id == scope.product_id))
        return title or ""
    if scope.creator_id is None:
        return _("The whole platform")
    return _("All your products")


@router.message(Command("chart"))
async def cmd_chart(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    now = clock.now()
    try:
        request = await _request(
            session,
            user,
            settings,
            (command.args or "").split(),
            lambda text: parse_period(text, now, "30d"),
            chart_usage(),
        )
    except Refusal as refused:
        await message.answer(str(refused))
        return
    await draw_chart(message, session, request.scope, request.period, clock)


async def draw_chart(
    message: Message, session: AsyncSession, scope: Scope, period: Period, clock: Clock
) -> None:
    """The chart for (scope, period), or a sentence when there is nothing to draw."""
    now = clock.now()
    figures = await charts.chart_figures(session, scope, period, now.date())
    daily = figures.daily
    funnel = list(zip(step_labels(), figures.funnel, strict=True))
    has_money = any(amount for _day, amounts in daily for amount in amounts.values())
    if not has_money and not any(n for _label, n in funnel):
        await message.answer(
            _("No revenue and no funnel activity in {period}: nothing to draw yet.").format(
                period=period_text(period)
            )
        )
        return
    locale = current_locale()
    title = f"{await chart_title(session, scope)} · {period.label}"
    texts = chart_texts()
    key = charts.chart_key(scope, period, locale, title, daily, funnel, texts)
    caption = clip(
        escape(title)
        + "\n"
        + _("Revenue per day (UTC) and the funnel, {period}.").format(period=period_text(period)),
        1024,
    )
    await send_chart(
        message,
        session,
        key,
        lambda: charts.render_async(title, daily, funnel, locale, texts),
        caption,
        clock,
    )


# --- the dashboard's buttons -------------------------------------------------------------


@router.callback_query(StatsCB.filter(F.a.in_({StatsAction.CHART, StatsAction.CSV})))
async def on_dashboard_file(
    callback: CallbackQuery,
    callback_data: StatsCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    """📈 Chart and 📄 CSV under /stats: the picture, or the sales file, for the
    dashboard's scope and period. Everything the button carries is checked again."""
    data = callback_data
    if not await may_see(session, user, settings, data.c):
        await callback.answer(_("This dashboard is not yours."), show_alert=True)
        return
    period = parse_period(data.p, clock.now())
    if isinstance(period, PeriodProblem):
        await callback.answer(refusal(period), show_alert=True)
        return
    scope = await resolve_scope(session, data.c, data.s)
    if not isinstance(scope, Scope):
        await callback.answer(refusal(scope), show_alert=True)
        return
    message = callback.message
    if not isinstance(message, Message):  # too old for Telegram to tell us the chat
        await callback.answer(_("This message is too old: send /stats again."), show_alert=True)
        return
    await callback.answer()
    if data.a == StatsAction.CHART:
        await draw_chart(message, session, scope, period, clock)
    else:
        await send_export(message, session, ExportKind.SALES, scope, period)


# --- /platform -----------------------------------------------------------------------------


def platform_text(report: PlatformReport, period: Period, locale: str) -> str:
    lines = [_("<b>Platform, {period}</b>").format(period=period_text(period))]
    if report.empty:
        lines.append(_("No payments and no active learners in this period."))
    lines += ["", "<b>" + _("Money") + "</b>"]
    if not report.currencies:
        lines.append(_("No payments or refunds."))
    for c in report.currencies:
        lines.append(
            _(
                "{currency}: GMV {gmv} ({sales}), refunds {refunds} ({n_refunds}), fee income {fee}"
            ).format(
                currency=c.currency,
                gmv=format_money(c.gmv_minor, c.currency, locale),
                sales=ngettext("{n} payment", "{n} payments", c.sales).format(n=c.sales),
                refunds=format_money(c.refunded_minor, c.currency, locale),
                n_refunds=c.refunds,
                fee=format_money(c.fee_minor, c.currency, locale),
            )
        )
    if report.promotion_topups or report.promotion_income or report.promotion_withdrawn:
        lines.append(
            _(
                "Promoted listings: income {income} from {clicks} clicks (not part of the fee "
                "above) · paid in {topups} · withdrawn {withdrawn}"
            ).format(
                income=format_money(report.promotion_income, STARS, locale),
                clicks=report.promotion_clicks,
                topups=format_money(report.promotion_topups, STARS, locale),
                withdrawn=format_money(report.promotion_withdrawn, STARS, locale),
            )
        )
    lines += [
        "",
        _(
            "Creators with sales: {creators} · active learners: {learners} · buyers: {buyers}"
        ).format(
            creators=report.creators_with_sales,
            learners=report.active_learners,
            buyers=report.buyers,
        ),
    ]
    if report.top:
        lines += ["", "<b>" + _("Top products by revenue") + "</b>"]
        for currency, items in report.top.items():
            for rank, p in enumerate(items, 1):
                lines.append(
                    f"{currency} {rank}. {escape(p.title or '—')} ({p.product_kind} {p.product_id})"
                    f" — {format_money(p.gross_minor, currency, locale)}"
                )
    if report.methods:
        lines += ["", "<b>" + _("Payment methods") + "</b>"]
        for m in report.methods:
            lines.append(
                f"{m.method} · {m.currency}: "
                + ngettext("{n} payment", "{n} payments", m.payments).format(n=m.payments)
                + f", {format_money(m.gross_minor, m.currency, locale)}"
            )
    return clip("\n".join(lines))


@router.message(Command("platform"))
async def cmd_platform(
    message: Message,
    command: CommandObject,
    user: User,
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
) -> None:
    if not is_owner(user.id, settings.admin_ids):
        await message.answer(_("This command is for platform owners."))
        return
    words = (command.args or "").split()
    if len(words) > 1:
        await message.answer(_("Usage: /platform [30d | YYYY-MM | all]"))
        return
    period = parse_period(words[0] if words else "", clock.now(), "30d")
    if isinstance(period, PeriodProblem):
        await message.answer(period_refusal(period))
        return
    report = await platform_report(session, period)
    await message.answer(platform_text(report, period, current_locale()))
