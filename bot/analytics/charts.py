"""The creator's chart: daily revenue per currency and the funnel, as one PNG.

It draws the dashboard's own figures: the money of its daily rollup and its six-step
funnel (card viewed → … → course completed), so the picture and /stats always agree.

matplotlib draws with its Agg backend (no display) through the object API, never pyplot,
so renders in worker threads share no global figure state. Chinese course titles need a
CJK font that every machine has: Noto Sans CJK comes with the `noto-cjk-sans-otc`
package (SIL OFL 1.1) and is registered with matplotlib's font manager on first render.
Rendering costs tens of milliseconds: callers run it off the event loop (`render_async`).

Currencies are never summed: each gets its own panel, in major units.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics import dashboard
from bot.analytics.periods import Period, Scope
from bot.models import ChartCache, MoneyDaily
from bot.money import minor_digits, to_decimal

Daily = Sequence[tuple[date, dict[str, int]]]
Funnel = Sequence[tuple[str, int]]

FONT_FAMILIES = ["Noto Sans CJK SC", "DejaVu Sans"]
_font_lock = threading.Lock()
_font_ready = False


@dataclass(frozen=True, slots=True)
class ChartTexts:
    """The words on the picture, in the reader's language (the handler translates)."""

    revenue: str = "Revenue per day, {currency}"
    funnel: str = "Funnel"
    no_revenue: str = "No revenue in this period"
    of_previous: str = "{percent} of the step before"


def register_font() -> None:
    """Give matplotlib the packaged CJK font (once per process)."""
    global _font_ready
    with _font_lock:
        if _font_ready:
            return
        import noto_cjk_sans_otc
        from matplotlib import font_manager

        font_manager.fontManager.addfont(str(noto_cjk_sans_otc.FONT_PATH))
        _font_ready = True


def render_chart(
    title: str,
    daily: Daily,
    funnel: Funnel,
    locale: str = "en",
    texts: ChartTexts | None = None,
) -> bytes:
    """The PNG: a revenue panel per currency (bars per day), then the funnel."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    register_font()
    texts = texts or ChartTexts()
    currencies = sorted({c for _day, amounts in daily for c in amounts})
    panels = max(1, len(currencies))
    funnel_height = 0.9 + 0.45 * max(1, len(funnel))
    fig = Figure(figsize=(9, 2.4 * panels + funnel_height + 0.8), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(panels + 1, 1, height_ratios=[2.4] * panels + [funnel_height])
    with matplotlib.rc_context({"font.family": FONT_FAMILIES, "axes.unicode_minus": False}):
        fig.suptitle(title, fontsize=14)
        days = mdates.date2num([d for d, _amounts in daily]) if daily else []
        for i in range(panels):
            ax = fig.add_subplot(grid[i, 0])
            if not currencies:
                ax.set_title(texts.no_revenue, fontsize=11)
                ax.bar(days, [0] * len(days), color="#4c72b0")
                ax.set_ylim(0, 1)
            else:
                currency = currencies[i]
                values = [float(to_decimal(a.get(currency, 0), currency)) for _d, a in daily]
                ax.set_title(texts.revenue.format(currency=currency), fontsize=11, loc="left")
                ax.bar(days, values, width=0.8, color="#4c72b0")
                ax.axhline(0, color="#888888", linewidth=0.6)
                digits = minor_digits(currency)
                ax.yaxis.set_major_formatter(f"{{x:,.{digits}f}}")
            if len(days):
                locator = mdates.AutoDateLocator(maxticks=10)
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            ax.grid(axis="y", alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
        _draw_funnel(fig.add_subplot(grid[panels, 0]), funnel, texts)
        fig.tight_layout(rect=(0, 0, 1, 0.96))
        out = io.BytesIO()
        fig.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _draw_funnel(ax: Any, funnel: Funnel, texts: ChartTexts) -> None:
    ax.set_title(texts.funnel, fontsize=11, loc="left")
    labels = [label for label, _n in funnel]
    counts = [n for _label, n in funnel]
    positions = list(range(len(funnel)))[::-1]  # the first step on top
    ax.barh(positions, counts, color="#dd8452")
    ax.set_yticks(positions, labels)
    top = max(counts, default=0) or 1
    ax.set_xlim(0, top * 1.45)
    for i, (pos, n) in enumerate(zip(positions, counts, strict=True)):
        note = f"{n:,}"
        before = counts[i - 1] if i > 0 else 0
        if before:
            note += "  (" + texts.of_previous.format(percent=f"{n / before:.0%}") + ")"
        ax.text(n + top * 0.01, pos, note, va="center", fontsize=9)
    ax.set_xticks([])
    ax.spines[["top", "right", "bottom"]].set_visible(False)


async def render_async(
    title: str, daily: Daily, funnel: Funnel, locale: str = "en", texts: ChartTexts | None = None
) -> bytes:
    return await asyncio.to_thread(render_chart, title, daily, funnel, locale, texts)


# --- the figures, per request ------------------------------------------------------------


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


@dataclass(frozen=True, slots=True)
class ChartFigures:
    """What the picture shows, from the dashboard's own rollups and queries."""

    daily: list[tuple[date, dict[str, int]]]  # gross per day and currency, refunds off
    funnel: list[int]  # unique learners per step of the dashboard's funnel (STEPS)


async def daily_revenue(
    session: AsyncSession, scope: Scope, period: Period, today: date
) -> list[tuple[date, dict[str, int]]]:
    """Gross per day and currency from the daily money rollup (the ledger's rows summed
    on the day they were booked, refunds subtracted on their own day): the same sums as
    the dashboard's money, every day of the period present, zeros included."""
    m = MoneyDaily
    query = (
        select(m.day, m.currency, func.sum(m.gross))
        .where(m.day >= period.start.date(), m.day < period.end.date())
        .group_by(m.day, m.currency)
    )
    if scope.creator_id is not None:
        query = query.where(m.creator_id == scope.creator_id)
    if scope.kind is not None:
        query = query.where(m.product_kind == scope.kind, m.product_id == scope.product_id)
    amounts: dict[date, dict[str, int]] = {}
    for d, currency, gross in await session.execute(query):
        amounts.setdefault(_as_date(d), {})[currency] = int(gross or 0)
    first = min(amounts, default=None)
    currencies = sorted({c for a in amounts.values() for c in a})
    return [
        (d, {c: amounts.get(d, {}).get(c, 0) for c in currencies})
        for d in period.each_day(today, first)
    ]


async def chart_figures(
    session: AsyncSession, scope: Scope, period: Period, today: date
) -> ChartFigures:
    return ChartFigures(
        await daily_revenue(session, scope, period, today),
        await dashboard.funnel(session, scope, period),
    )


# --- the cache of pictures sent ----------------------------------------------------------


def chart_key(scope: Scope, period: Period, *figures: object) -> str:
    """(scope, period, data version): the version is a digest of everything drawn, so
    new figures make a new picture and the same figures reuse the one sent before."""
    digest = hashlib.sha256(json.dumps(figures, default=str, sort_keys=True).encode())
    return f"{scope.key}|{period.label}|{digest.hexdigest()[:32]}"[:255]


async def cached_file_id(session: AsyncSession, key: str) -> str | None:
    return await session.scalar(select(ChartCache.file_id).where(ChartCache.key == key))


async def remember_file_id(session: AsyncSession, key: str, file_id: str, now: datetime) -> None:
    """Keep the picture's file_id; two workers sending the same chart keep the first."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(ChartCache)
        .values(key=key, file_id=file_id[:256], created_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    # Old figures are not asked for again; the table holds about a quarter's pictures.
    await session.execute(
        delete(ChartCache).where(ChartCache.created_at < now - timedelta(days=90))
    )


async def forget_file_id(session: AsyncSession, key: str) -> None:
    await session.execute(delete(ChartCache).where(ChartCache.key == key))
