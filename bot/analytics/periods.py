"""The one vocabulary of report periods and scopes, shared by /stats, /export, /chart and
/platform.

A period is written `7` or `7d` (the last N days with today, any N up to ten years),
`YYYY-MM` or `mYYYY-MM` (a calendar month; the dashboard's buttons carry the `m` form),
or `all`. Days are UTC. Every period knows the previous period of the same length (the
previous calendar month for a month; none for all time), so the dashboard can show the
change.

A scope is whose numbers: one creator's (None = the whole platform), all their products
or one course or plan. Its `code` is what the dashboard's buttons carry: `a`, `c<id>`,
`p<id>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot import parsing
from bot.models import Course, Plan, ProductKind

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DAY_CHOICES = (7, 30, 90)  # the dashboard's buttons

# --- periods -------------------------------------------------------------------------------


class PeriodKind(StrEnum):
    DAYS = "days"
    MONTH = "month"
    ALL = "all"


class PeriodProblem(StrEnum):
    UNKNOWN = "unknown"
    FUTURE = "future"


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC. For all time, start is EPOCH and end the midnight after today,
    but `within` and `contains` leave both sides open."""

    code: str  # what the buttons carry: "7", "30", "90", "m2026-03", "all"
    kind: PeriodKind
    start: datetime
    end: datetime  # exclusive; midnight after the last day
    prev_start: datetime | None
    prev_end: datetime | None
    days: int = 0  # how many days (0 for all time)
    month: date | None = None

    @property
    def label(self) -> str:
        """How people write it (file names, captions): "30d", "2026-03", "all"."""
        if self.kind == PeriodKind.DAYS:
            return f"{self.days}d"
        if self.kind == PeriodKind.MONTH and self.month is not None:
            return f"{self.month:%Y-%m}"
        return "all"

    @property
    def is_all(self) -> bool:
        return self.kind == PeriodKind.ALL

    def contains(self, moment: datetime) -> bool:
        return self.is_all or self.start <= moment < self.end

    def each_day(self, today: date, first: date | None = None) -> list[date]:
        """Every day of the period up to today (all time begins at `first`)."""
        begin = (first or today) if self.is_all else self.start.date()
        last = today if self.is_all else min(today, (self.end - timedelta(days=1)).date())
        count = (last - begin).days + 1
        return [begin + timedelta(days=i) for i in range(max(0, count))]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


_DAYS = re.compile(r"([0-9]{1,5})d?")
_MONTH = re.compile(r"m?([0-9]{4})-([0-9]{2})")


def parse_period(text: str, now: datetime, default: str = "30") -> Period | PeriodProblem:
    """`7`/`7d`, `YYYY-MM`/`mYYYY-MM` or `all` (empty text: `default`)."""
    text = (text or default).strip().lower()
    today = now.astimezone(UTC).date()
    tomorrow = _midnight(today + timedelta(days=1))
    if text == "all":
        return Period("all", PeriodKind.ALL, EPOCH, tomorrow, None, None)
    if match := _DAYS.fullmatch(text):
        days = parsing.days(match[1])
        if days is None:
            return PeriodProblem.UNKNOWN
        start = tomorrow - timedelta(days=days)
        before = start - timedelta(days=days)
        return Period(str(days), PeriodKind.DAYS, start, tomorrow, before, start, days=days)
    match = _MONTH.fullmatch(text)
    if match is None:
        return PeriodProblem.UNKNOWN
    year, month = int(match[1]), int(match[2])
    if not (parsing.MIN_YEAR <= year <= parsing.MAX_YEAR and 1 <= month <= 12):
        return PeriodProblem.UNKNOWN
    first = date(year, month, 1)
    if first > today:
        return PeriodProblem.FUTURE
    nxt, prev = add_months(first, 1), add_months(first, -1)
    return Period(
        month_code(first),
        PeriodKind.MONTH,
        _midnight(first),
        _midnight(nxt),
        _midnight(prev),
        _midnight(first),
        days=(nxt - first).days,
        month=first,
    )


def looks_like_period(word: str) -> bool:
    word = word.lower()
    return word == "all" or bool(_DAYS.fullmatch(word) or _MONTH.fullmatch(word))


def month_code(day: date) -> str:
    return f"m{day.year:04d}-{day.month:02d}"


def recent_months(now: datetime, count: int = 3) -> list[date]:
    """This month and the ones before it, newest first (the month buttons)."""
    first = now.astimezone(UTC).date().replace(day=1)
    return [add_months(first, -i) for i in range(count)]


def within(column: Any, period: Period) -> ColumnElement[bool]:
    """The column's moment lies in the period (all time: any moment)."""
    if period.is_all:
        return and_(literal(True))
    return and_(column >= period.start, column < period.end)


# --- scopes --------------------------------------------------------------------------------


class ScopeProblem(StrEnum):
    UNKNOWN = "unknown"
    NOT_YOURS = "not_yours"  # another creator's, or no such product: the same answer


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose numbers: one creator (None = the whole platform), one product or all."""

    creator_id: int | None
    kind: str | None = None  # ProductKind; None: all products
    product_id: int | None = None
    title: str = ""

    @property
    def code(self) -> str:
        """What the dashboard's buttons carry: "a", "c<id>", "p<id>"."""
        if self.kind is None:
            return "a"
        return ("c" if self.kind == ProductKind.COURSE else "p") + str(self.product_id)

    @property
    def key(self) -> str:
        who = "platform" if self.creator_id is None else f"creator{self.creator_id}"
        if self.kind is None:
            return who
        return f"{who}:{self.kind}{self.product_id}"


_SCOPE = re.compile(r"([cp])([0-9]{1,10})")


async def product_creator(session: AsyncSession, kind: str, product_id: int) -> int | None:
    """The creator who sells this course or plan; None when there is none."""
    model: Any = Course if kind == ProductKind.COURSE else Plan
    return await session.scalar(select(model.creator_id).where(model.id == product_id))


async def resolve_scope(session: AsyncSession, creator_id: int, code: str) -> Scope | ScopeProblem:
    """A dashboard scope code for this creator: another creator's product is NOT_YOURS."""
    if code == "a":
        return Scope(creator_id)
    match = _SCOPE.fullmatch(code)
    if match is None or not 0 < int(match[2]) < 2**31:
        return ScopeProblem.UNKNOWN
    product_id = int(match[2])
    kind = ProductKind.COURSE if match[1] == "c" else ProductKind.PLAN
    model: Any = Course if kind == ProductKind.COURSE else Plan
    row = (
        await session.execute(select(model.creator_id, model.title).where(model.id == product_id))
    ).first()
    if row is None or row[0] != creator_id:
        return ScopeProblem.NOT_YOURS
    return Scope(creator_id, kind, product_id, row[1])
