"""/stats: one dashboard message per creator, edited in place as its buttons are pressed.

The figures come from bot.analytics.dashboard; this module words them and draws the
buttons. The 📈 Chart and 📄 CSV buttons carry StatsCB actions that the exports feature
answers (bot/handlers/exports.py, `on_dashboard_file`), not this router.
"""

from __future__ import annotations

from html import escape

from aiogram import F, Router
from aiogram.filters import CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.analytics import nudges
from bot.analytics.dashboard import (
    AtRisk,
    Dashboard,
    Figures,
    dashboard,
    learners_at_risk,
    products,
)
from bot.analytics.periods import (
    DAY_CHOICES,
    Period,
    PeriodKind,
    PeriodProblem,
    ScopeProblem,
    looks_like_period,
    month_code,
    parse_period,
    recent_months,
    resolve_scope,
)
from bot.analytics.sources import Source
from bot.config import Settings
from bot.handlers.common import Command, clip, current_locale, is_private, show
from bot.handlers.sales_admin import not_a_creator
from bot.i18n import pick_locale
from bot.keyboards.callbacks import StatsAction, StatsCB
from bot.models import Creator, ProductKind, User
from bot.money import format_money
from bot.scheduler.clock import Clock
from bot.scheduler.worker import Scheduler
from bot.services.users import creator_for, get_creator, is_owner

router = Router(name=__name__)

DEFAULT_PERIOD = "30"
MONTH_BUTTONS = 3
SCOPE_BUTTONS = 24
LESSON_ROWS = 15
RISK_ROWS = 30
# Only these actions are ours; CHART and CSV belong to the exports router.
OURS = {
    StatsAction.VIEW,
    StatsAction.SCOPES,
    StatsAction.MONTHS,
    StatsAction.RISK,
    StatsAction.NUDGE,
}


# --- words ----------------------------------------------------------------------------------


def source_label(source: Source) -> str:
    return {
        Source.DEEP_LINK: _("course link"),
        Source.REFERRAL: _("referral link"),
        Source.SEARCH: _("search"),
        Source.RECOMMEND: _("recommendations"),
        Source.INLINE: _("inline share"),
        Source.BROADCAST: _("broadcast"),
        Source.CATALOG: _("catalog"),
        Source.DIRECT: _("direct"),
        Source.AFFILIATE: _("affiliate links"),
        Source.GIFT: _("gifts"),
        Source.SPONSORED: _("sponsored"),
    }[source]


def step_labels() -> list[str]:
    return [
        _("Card viewed"),
        _("Buy pressed"),
        _("Invoice shown"),
        _("Paid"),
        _("First lesson done"),
        _("Course completed"),
    ]


def period_label(period: Period) -> str:
    if period.kind == PeriodKind.ALL:
        return _("All time")
    if period.kind == PeriodKind.MONTH and period.month is not None:
        return period.month.strftime("%Y-%m")
    return _("Last {n} days").format(n=period.days)


def change(now: int | float, before: int | float | None) -> str:
    """(+12%), (−3), (new): the change against the previous period."""
    if before is None:
        return ""
    if now == before:
        return " (=)"
    if before == 0:
        return " (" + _("new") + ")"
    percent = (now - before) * 100 / before
    return f" ({'+' if percent > 0 else '−'}{abs(percent):.0f}%)"


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _money_lines(cur: Figures, prev: Figures | None, locale: str) -> list[str]:
    lines = [_("💰 <b>Money</b>")]
    before = {m.currency: m for m in prev.money} if prev else {}
    if not cur.money:
        lines.append(_("No sales in this period."))
    for m in cur.money:
        b = before.get(m.currency)

        def money(v: int, cur_code: str = m.currency) -> str:
            return escape(format_money(v, cur_code, locale))

        lines.append(
            _(
                "<b>{currency}</b>: {orders} orders{d_orders}, average {avg}; "
                "refunds {refunds} ({n_refunds})"
            ).format(
                currency=m.currency,
                orders=m.orders,
                d_orders=change(m.orders, b.orders if b else (0 if prev else None)),
                avg=money(m.average),
                refunds=money(m.refunds_gross),
                n_refunds=m.refunds,
            )
        )
        lines.append(
            "   "
            + _("gross {gross}{d_gross} = fee {fee} + net {net}{d_net}").format(
                gross=money(m.gross),
                d_gross=change(m.gross, b.gross if b else (0 if prev else None)),
                fee=money(m.fee),
                net=money(m.net),
                d_net=change(m.net, b.net if b else (0 if prev else None)),
            )
        )
    return lines


def _funnel_lines(cur: Figures, prev: Figures | None) -> list[str]:
    lines = [_("🔻 <b>Funnel</b> (unique learners)")]
    labels = step_labels()
    for i, (label, n) in enumerate(zip(labels, cur.funnel, strict=True)):
        conv = ""
        if i > 0:
            top = cur.funnel[i - 1]
            conv = " · " + percent(n / top if top else 0.0)
        lines.append(f"{label}: {n}{conv}{change(n, prev.funnel[i] if prev else None)}")
    return lines


def _source_lines(cur: Figures, prev: Figures | None, locale: str) -> list[str]:
    if not cur.sources:
        return []
    before = {r.source: r for r in prev.sources} if prev else {}
    lines = [_("🧭 <b>Sources</b> (views · buyers · revenue)")]
    for row in cur.sources:
        b = before.get(row.source)
        revenue = ", ".join(escape(format_money(v, c, locale)) for c, v in row.revenue.items())
        lines.append(
            f"{source_label(row.source)}: {row.views}"
            f"{change(row.views, b.views if b else (0 if prev else None))} · {row.buyers}"
            f"{change(row.buyers, b.buyers if b else (0 if prev else None))}"
            + (f" · {revenue}" if revenue else "")
        )
    return lines


def _plan_lines(cur: Figures, prev: Figures | None, locale: str) -> list[str]:
    p = cur.plans
    if p is None:
        return []
    b = prev.plans if prev else None
    lines = [
        _("👥 <b>Plans</b>"),
        _(
            "Active now {active}{d_active} · joined {joined}{d_joined} · renewed {renewed}"
            "{d_renewed} · expired {expired}{d_expired} · churn {churn}"
        ).format(
            active=p.active,
            d_active=change(p.active, b.active if b else None),
            joined=p.joined,
            d_joined=change(p.joined, b.joined if b else None),
            renewed=p.renewed,
            d_renewed=change(p.renewed, b.renewed if b else None),
            expired=p.expired,
            d_expired=change(p.expired, b.expired if b else None),
            churn=percent(p.churn),
        ),
    ]
    if p.mrr:
        mrr = ", ".join(escape(format_money(v, c, locale)) for c, v in p.mrr.items())
        lines.append(_("Monthly recurring revenue: {mrr}").format(mrr=mrr))
    return lines


def _lesson_lines(d: Dashboard) -> list[str]:
    rows = d.current.lessons
    if rows is None:
        return []
    lines = [_("📚 <b>Lessons</b> (delivered · done · share)")]
    shown = [r for r in rows if r.delivered or r.done] or rows
    course = None
    for row in shown[:LESSON_ROWS]:
        if row.course_id != course and d.scope.kind is None:
            course = row.course_id
            lines.append(f"<i>{escape(row.course_title)}</i>")
        title = escape(row.title or "")
        lines.append(f"{row.number}. {title} — {row.delivered} · {row.done} · {percent(row.share)}")
    if len(shown) > LESSON_ROWS:
        lines.append(_("…and {n} more lessons").format(n=len(shown) - LESSON_ROWS))
    if d.at_risk:
        lines.append(
            _("⚠️ At risk: {n} learners (no Done for 7 days while lessons wait)").format(n=d.at_risk)
        )
    return lines


def dashboard_text(d: Dashboard, locale: str, creator_name: str = "") -> str:
    scope = escape(d.scope.title) if d.scope.kind else _("All products")
    head = _("📊 <b>{name}</b> · {period} · {scope}").format(
        name=escape(creator_name) or _("Your numbers"),
        period=period_label(d.period),
        scope=scope,
    )
    start, end = d.period.start.date(), d.period.end.date()
    dates = f"{start:%Y-%m-%d} – {end.fromordinal(end.toordinal() - 1):%Y-%m-%d}"
    parts = [head + "\n" + (dates if d.period.kind != PeriodKind.ALL else "")]
    if d.previous is not None:
        parts[0] += "\n" + _("(changes against the period before)")
    if d.current.empty:
        parts.append(_("Nothing happened in this period yet: every figure is zero."))
    prev = d.previous
    cur = d.current
    for block in (
        _money_lines(cur, prev, locale),
        _funnel_lines(cur, prev),
        _source_lines(cur, prev, locale),
        _plan_lines(cur, prev, locale),
        _lesson_lines(d),
    ):
        if block:
            parts.append("\n".join(block))
    return clip("\n\n".join(p.strip() for p in parts))


# --- buttons --------------------------------------------------------------------------------


def _button(
    text: str, action: StatsAction, creator_id: int, period: str, scope: str
) -> InlineKeyboardButton:
    data = StatsCB(a=action, c=creator_id, p=period, s=scope).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


def dashboard_keyboard(d: Dashboard, now_months: list[str]) -> InlineKeyboardMarkup:
    c, p, s = d.creator_id, d.period.code, d.scope.code
    V = StatsAction.VIEW

    def mark(code: str, label: str) -> str:
        return f"• {label}" if code == p else label

    periods = [_button(mark(str(n), _("{n} d").format(n=n)), V, c, str(n), s) for n in DAY_CHOICES]
    periods.append(_button(mark("all", _("All time")), V, c, "all", s))
    months = [_button(mark(code, code[1:]), V, c, code, s) for code in now_months]
    months.append(_button(_("Older…"), StatsAction.MONTHS, c, p, s))
    scope_row = [
        _button(("• " if s == "a" else "") + _("All products"), V, c, p, "a"),
        _button(_("Course or plan…"), StatsAction.SCOPES, c, p, s),
    ]
    rows = [periods, months, scope_row]
    if d.at_risk:
        rows.append(
            [
                _button(_("👀 At risk ({n})").format(n=d.at_risk), StatsAction.RISK, c, p, s),
                _button(_("💌 Nudge them"), StatsAction.NUDGE, c, p, s),
            ]
        )
    rows.append(
        [
            _button(_("📈 Chart"), StatsAction.CHART, c, p, s),
            _button(_("📄 CSV"), StatsAction.CSV, c, p, s),
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


# --- rights ---------------------------------------------------------------------------------


async def may_see(session: AsyncSession, user: User, settings: Settings, creator_id: int) -> bool:
    if is_owner(user.id, settings.admin_ids):
        return await session.get(Creator, creator_id) is not None
    mine = await creator_for(session, user, settings.admin_ids)
    return mine is not None and mine.id == creator_id


def _period_code(token: str) -> str | None:
    token = token.strip().lower()
    return token if looks_like_period(token) else None


def usage() -> str:
    return _(
        "Usage: /stats [7 | 30 | 90 | all | YYYY-MM]\n"
        "Platform owners: /stats &lt;creator id&gt; [period]"
    )


def refusal(problem: ScopeProblem | PeriodProblem) -> str:
    if problem == ScopeProblem.NOT_YOURS:
        return _("That course or plan is not one of this creator's: nothing to show.")
    if problem == PeriodProblem.FUTURE:
        return _("That month has not begun yet: pick this month or an earlier one.")
    return _("I do not know that period or scope. Use the dashboard's buttons.")


async def _render(
    session: AsyncSession, creator_id: int, period_code: str, scope_code: str, clock: Clock
) -> tuple[str, InlineKeyboardMarkup] | ScopeProblem | PeriodProblem:
    now = clock.now()
    period = parse_period(period_code, now)
    if isinstance(period, PeriodProblem):
        return period
    scope = await resolve_scope(session, creator_id, scope_code)
    if isinstance(scope, ScopeProblem):
        return scope
    d = await dashboard(session, creator_id, period, scope, now)
    creator = await session.get(Creator, creator_id)
    months = [month_code(m) for m in recent_months(now, MONTH_BUTTONS)]
    text = dashboard_text(d, current_locale(), creator.display_name if creator else "")
    return text, dashboard_keyboard(d, months)


@router.message(Command("stats"), is_private)
async def cmd_stats(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
) -> None:
    tokens = (command.args or "").split()
    owner = is_owner(user.id, settings.admin_ids)
    creator_id: int | None = None
    if owner and tokens and parsing.record_id(tokens[0]) is not None:
        creator_id = parsing.record_id(tokens.pop(0))
        if await session.get(Creator, creator_id) is None:
            await message.answer(_("No creator with that number."))
            return
    if creator_id is None:
        creator = await creator_for(session, user, settings.admin_ids)
        if creator is None:
            await message.answer(not_a_creator())
            return
        creator_id = creator.id
    if len(tokens) > 1:
        await message.answer(usage())
        return
    period_code = _period_code(tokens[0]) if tokens else DEFAULT_PERIOD
    if period_code is None:
        await message.answer(usage())
        return
    screen = await _render(session, creator_id, period_code, "a", clock)
    if not isinstance(screen, tuple):
        await message.answer(refusal(screen))
        return
    await message.answer(screen[0], reply_markup=screen[1])


@router.callback_query(StatsCB.filter(F.a.in_(OURS)))
async def on_stats(
    callback: CallbackQuery,
    callback_data: StatsCB,
    session: AsyncSession,
    user: User,
    settings: Settings,
    clock: Clock,
    i18n: I18n,
    scheduler: Scheduler,
) -> None:
    data = callback_data
    if not await may_see(session, user, settings, data.c):
        await callback.answer(_("This dashboard is not yours."), show_alert=True)
        return
    if data.a == StatsAction.SCOPES:
        await _show_scopes(callback, session, data)
        return
    if data.a == StatsAction.MONTHS:
        await _show_months(callback, data, clock)
        return
    if data.a in (StatsAction.RISK, StatsAction.NUDGE):
        await _at_risk(callback, session, data, clock, i18n, scheduler, settings)
        return
    screen = await _render(session, data.c, data.p, data.s, clock)
    if not isinstance(screen, tuple):
        await callback.answer(refusal(screen), show_alert=True)
        return
    await show(callback, *screen)


def _back(data: StatsCB) -> InlineKeyboardButton:
    return _button(_("◀ Back"), StatsAction.VIEW, data.c, data.p, data.s)


async def _show_scopes(callback: CallbackQuery, session: AsyncSession, data: StatsCB) -> None:
    rows = [[_button(_("All products"), StatsAction.VIEW, data.c, data.p, "a")]]
    for product in (await products(session, data.c))[:SCOPE_BUTTONS]:
        icon = "📘" if product.kind == ProductKind.COURSE else "👥"
        code = ("c" if product.kind == ProductKind.COURSE else "p") + str(product.id)
        label = f"{icon} {product.title[:40]}"
        rows.append([_button(label, StatsAction.VIEW, data.c, data.p, code)])
    rows.append([_back(data)])
    await show(callback, _("Which course or plan?"), InlineKeyboardMarkup(inline_keyboard=rows))


async def _show_months(callback: CallbackQuery, data: StatsCB, clock: Clock) -> None:
    months = recent_months(clock.now(), 12)
    rows = [
        [
            _button(m.strftime("%Y-%m"), StatsAction.VIEW, data.c, month_code(m), data.s)
            for m in months[i : i + 4]
        ]
        for i in range(0, len(months), 4)
    ]
    rows.append([_back(data)])
    await show(callback, _("Which month?"), InlineKeyboardMarkup(inline_keyboard=rows))


async def _at_risk(
    callback: CallbackQuery,
    session: AsyncSession,
    data: StatsCB,
    clock: Clock,
    i18n: I18n,
    scheduler: Scheduler,
    settings: Settings,
) -> None:
    scope = await resolve_scope(session, data.c, data.s)
    if isinstance(scope, ScopeProblem) or scope.kind == ProductKind.PLAN:
        await callback.answer(refusal(ScopeProblem.UNKNOWN), show_alert=True)
        return
    if scope.kind == ProductKind.COURSE:
        assert scope.product_id is not None
        course_ids = [scope.product_id]
    else:
        course_ids = [p.id for p in await products(session, data.c) if p.kind == ProductKind.COURSE]
    now = clock.now()
    learners = await learners_at_risk(session, course_ids, now)
    markup = InlineKeyboardMarkup(inline_keyboard=[[_back(data)]])
    if data.a == StatsAction.RISK:
        if not learners:
            text = _("No learner is at risk right now.")
        else:
            lines = [_("⚠️ <b>Learners at risk</b> (no Done for 7 days while lessons wait)")]
            for r in learners[:RISK_ROWS]:
                lines.append(
                    _("{name} (id {id}) · {course} · quiet for {days} days").format(
                        name=escape(r.name),
                        id=r.user_id,
                        course=escape(r.course_title),
                        days=r.quiet_days,
                    )
                )
            if len(learners) > RISK_ROWS:
                lines.append(_("…and {n} more").format(n=len(learners) - RISK_ROWS))
            text = "\n".join(lines)
        await show(callback, text, markup)
        return

    text_for = nudge_texts(i18n, settings.default_language)
    result = await nudges.queue_nudges(session, learners, text_for, now)
    await session.commit()
    scheduler.wake()
    text = _("💌 Nudges queued: {queued}. Already nudged in the last 7 days: {recent}.").format(
        queued=result.queued, recent=result.recent
    )
    await show(callback, text, markup)


@router.message(Command("nudges"))
async def cmd_nudges(
    message: Message, command: CommandObject, session: AsyncSession, user: User
) -> None:
    """/nudges <course> off|on: the automatic at-risk nudge of one course."""
    creator = await get_creator(session, user.id)
    if creator is None:
        await message.answer(not_a_creator())
        return
    words = (command.args or "").split()
    course_id = parsing.record_id(words[0]) if len(words) == 2 else None
    switch = words[1].lower() if len(words) == 2 else ""
    if course_id is None or switch not in ("on", "off"):
        await message.answer(_("Usage: /nudges <i>course id</i> on|off"))
        return
    course = await nudges.set_auto(session, creator.id, course_id, switch == "on")
    if course is None:
        await message.answer(_("You have no course with that number. See /courses."))
    elif switch == "on":
        await message.answer(
            _(
                "«{title}»: a learner with no Done for 7 days while lessons wait gets one "
                "friendly nudge, at most once every 14 days."
            ).format(title=escape(course.title))
        )
    else:
        await message.answer(
            _("«{title}»: no automatic nudges. The dashboard's button still works.").format(
                title=escape(course.title)
            )
        )


def nudge_texts(i18n: I18n, default_language: str) -> nudges.TextFor:
    """The nudge and its stop button, in the learner's language: the same words for the
    creator's press and the automatic sweep."""

    def text_for(learner: User, row: AtRisk) -> tuple[str, str]:
        locale = pick_locale(learner.language, learner.language_code, default_language)
        text = i18n.gettext(
            "Hi {name}! Your next lesson of «{course}» is waiting for you. "
            "A few minutes today keeps the streak going.",
            locale=locale,
        ).format(name=escape(learner.first_name or ""), course=escape(row.course_title))
        stop = i18n.gettext(
            "Not a good time? Pause the course: no lessons and no reminders until you resume.",
            locale=locale,
        )
        return f"{text}\n\n{stop}", i18n.gettext("⏸ Pause the course", locale=locale)

    return text_for


__all__ = ["dashboard_keyboard", "dashboard_text", "nudge_texts", "router"]
