"""Bundles: several published courses of one creator sold as one product at one price.

Made with ``/bundle new <title> <course ids> <price>``; the price is in Stars (``300⭐``),
in the card currency (``29.99 USD``), or both. A bundle must cost less than its courses
bought separately, in each unit it is priced in, and every course must be sold that way.

The price a learner pays (``reduced_price``) when they already own some of the courses:

    bundle price × (list price of the courses not owned) / (list price of all the courses)

rounded half up to a whole minor unit, at least 1. The learner is told it is not worth it
(no invoice) when that is not below what the rest costs separately, and when they own
every course. List prices are the courses' prices at the moment of buying, in the unit
being paid; a course that is no longer sold that way takes that unit off the bundle.

Buying grants every course the learner does not already own, each entitlement naming the
bundle's order (bot.payments.checkout), so a refund revokes exactly those
(bot.payments.refunds) and keeps what another purchase gave.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import parsing
from bot.models import Bundle, BundleCourse, Course
from bot.services.changes import Tracker

MAX_TITLE = 100
MIN_COURSES, MAX_COURSES = 2, 20
# A creator's published bundles at once: a page of them fits one message.
MAX_BUNDLES = 20

_IDS = re.compile(r"#?[0-9]{1,10}(,#?[0-9]{1,10})*,?")
_STARS = re.compile(r"([0-9]{1,19})(⭐|★|xtr|stars?)", re.IGNORECASE)


class Problem(StrEnum):
    USAGE = "usage"
    TITLE = "title"
    TOO_FEW = "too_few"
    TOO_MANY = "too_many"
    DUPLICATE = "duplicate"
    NOT_YOURS = "not_yours"  # no such course, or another creator's: the same reply
    UNPUBLISHED = "unpublished"
    BAD_PRICE = "bad_price"  # unreadable, 0, or beyond the limits
    NO_STARS = "no_stars"  # a course is not sold for Stars
    NO_CARD = "no_card"  # a course is not sold by card in this currency
    NOT_CHEAPER = "not_cheaper"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True)
class Invalid:
    problem: Problem
    course_id: int | None = None
    # NOT_CHEAPER: what the courses cost separately, (amount, currency) per unit.
    separately: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Spec:
    title: str
    course_ids: tuple[int, ...]
    stars: int  # 0: not for Stars
    price_minor: int  # 0: not by card
    currency: str


def _take_stars(tokens: list[str]) -> int | None:
    """Pops a trailing Stars price ("300⭐", "300 stars"); None when there is none."""
    if not tokens:
        return None
    joined = tokens[-1]
    if len(tokens) >= 2 and tokens[-1].lower() in ("⭐", "★", "xtr", "star", "stars"):
        joined = tokens[-2] + tokens[-1]
        if _STARS.fullmatch(joined):
            del tokens[-2:]
            return _stars_value(joined)
        return None
    if _STARS.fullmatch(joined):
        tokens.pop()
        return _stars_value(joined)
    return None


def _stars_value(text: str) -> int:
    match = _STARS.fullmatch(text)
    assert match is not None
    return parsing.whole(match.group(1), 1, parsing.MAX_STARS) or -1


def _take_card(tokens: list[str]) -> tuple[int, str] | None:
    """Pops a trailing card price ("29.99 USD"); None when there is none."""
    if len(tokens) < 2 or not re.fullmatch(r"[A-Za-z]{3}", tokens[-1]):
        return None
    if tokens[-1].upper() == "XTR":
        return None
    # Here, not at the top: authoring pulls in drip and the scheduler, and the payments
    # code imports this module.
    from bot.services.authoring import parse_price

    price = parse_price(f"{tokens[-2]} {tokens[-1]}")
    del tokens[-2:]
    return price if price is not None and price[0] > 0 else (-1, "")


def parse_spec(args: str) -> Spec | Invalid:
    """``<title> <id,id,…> <price>``: read from the right, so the title may have spaces."""
    tokens = args.split()
    stars = card = None
    for _ in range(2):  # the two prices, in either order
        if stars is None and (stars := _take_stars(tokens)) is not None:
            continue
        if card is None:
            card = _take_card(tokens)
    if stars is None and card is None:
        bare = tokens[-1] if tokens else ""
        number = bare.replace(".", "", 1).replace(",", "", 1)
        if number.isascii() and number.lstrip("-").isdigit() and len(tokens) >= 3:
            return Invalid(Problem.BAD_PRICE)  # a number without its unit
        return Invalid(Problem.USAGE)
    if stars == -1 or (card is not None and card[0] == -1):
        return Invalid(Problem.BAD_PRICE)
    if not tokens or not _IDS.fullmatch(tokens[-1]):
        return Invalid(Problem.USAGE)
    ids: list[int] = []
    for part in tokens.pop().split(","):
        if not part:
            continue
        course_id = parsing.record_id(part)
        if course_id is None:
            return Invalid(Problem.NOT_YOURS)
        if course_id in ids:
            return Invalid(Problem.DUPLICATE, course_id)
        ids.append(course_id)
    title = " ".join(tokens).strip()
    if not title or len(title) > MAX_TITLE:
        return Invalid(Problem.TITLE)
    if len(ids) < MIN_COURSES:
        return Invalid(Problem.TOO_FEW)
    if len(ids) > MAX_COURSES:
        return Invalid(Problem.TOO_MANY)
    minor, currency = card if card is not None else (0, "")
    return Spec(title, tuple(ids), stars or 0, minor, currency)


def _check_courses(spec: Spec, creator_id: int, courses: dict[int, Course]) -> Invalid | None:
    for course_id in spec.course_ids:
        course = courses.get(course_id)
        if course is None or course.creator_id != creator_id:
            return Invalid(Problem.NOT_YOURS, course_id)
        if not course.published:
            return Invalid(Problem.UNPUBLISHED, course_id)
        if spec.stars and not stars_list(course):
            return Invalid(Problem.NO_STARS, course_id)
        if spec.price_minor and not card_list(course, spec.currency):
            return Invalid(Problem.NO_CARD, course_id)
    members = [courses[c] for c in spec.course_ids]
    separately: list[tuple[int, str]] = []
    cheaper = True
    if spec.stars:
        total = sum(stars_list(c) for c in members)
        separately.append((total, "XTR"))
        cheaper = spec.stars < total
    if spec.price_minor:
        total = sum(card_list(c, spec.currency) for c in members)
        separately.append((total, spec.currency))
        cheaper = cheaper and spec.price_minor < total
    return None if cheaper else Invalid(Problem.NOT_CHEAPER, separately=tuple(separately))


def stars_list(course: Course) -> int:
    """The course's Stars list price; 0 when it is not sold for Stars."""
    return course.stars_price if course.accepts_stars and course.stars_price > 0 else 0


def card_list(course: Course, currency: str) -> int:
    """The course's card list price in `currency`; 0 when it is not sold so."""
    ok = course.accepts_card and course.price_minor > 0 and course.currency.upper() == currency
    return course.price_minor if ok else 0


async def create(session: AsyncSession, creator_id: int, spec: Spec) -> Bundle | Invalid:
    rows = await session.scalars(select(Course).where(Course.id.in_(spec.course_ids)))
    problem = _check_courses(spec, creator_id, {c.id: c for c in rows})
    if problem is not None:
        return problem
    live = await of_creator(session, creator_id, published_only=True)
    if len(live) >= MAX_BUNDLES:
        return Invalid(Problem.LIMIT)
    bundle = Bundle(
        creator_id=creator_id,
        title=spec.title,
        price_minor=spec.price_minor,
        currency=spec.currency or "USD",
        stars_price=spec.stars,
        published=True,
    )
    session.add(bundle)
    await session.flush()
    session.add_all(BundleCourse(bundle_id=bundle.id, course_id=c) for c in spec.course_ids)
    await session.flush()
    return bundle


async def of_creator(
    session: AsyncSession, creator_id: int, *, published_only: bool
) -> list[Bundle]:
    query = select(Bundle).where(Bundle.creator_id == creator_id)
    if published_only:
        query = query.where(Bundle.published.is_(True))
    return list(await session.scalars(query.order_by(Bundle.id)))


async def unpublish(session: AsyncSession, creator_id: int, bundle_id: int) -> Bundle | None:
    """None: no such bundle of this creator. Learners who bought it keep their courses."""
    bundle = await session.get(Bundle, bundle_id)
    if bundle is None or bundle.creator_id != creator_id:
        return None
    bundle.published = False
    await session.flush()
    return bundle


async def members(session: AsyncSession, bundle_id: int) -> list[Course]:
    """The bundle's courses, in the order the creator listed them (by id: fixed at making)."""
    return list(
        await session.scalars(
            select(Course)
            .join(BundleCourse, BundleCourse.course_id == Course.id)
            .where(BundleCourse.bundle_id == bundle_id)
            .order_by(Course.id)
        )
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """What a card shows of a bundle it is in."""

    id: int
    title: str
    stars_price: int
    price_minor: int
    currency: str


BUNDLES = Tracker(Bundle, BundleCourse)


def _shown_query() -> Any:
    return (
        select(
            BundleCourse.course_id,
            Bundle.id,
            Bundle.title,
            Bundle.stars_price,
            Bundle.price_minor,
            Bundle.currency,
        )
        .join(Bundle, Bundle.id == BundleCourse.bundle_id)
        .where(Bundle.published.is_(True))
        .order_by(Bundle.id)
    )


async def including_all(session: AsyncSession) -> dict[int, tuple[Shown, ...]]:
    """Course id → the published bundles it is in (what cards show; bundles are few: at
    most MAX_BUNDLES live per creator)."""
    by_course: dict[int, list[Shown]] = defaultdict(list)
    for member, bundle_id, title, stars, minor, currency in await session.execute(_shown_query()):
        by_course[int(member)].append(Shown(bundle_id, title, stars, minor, currency))
    return {course_id: tuple(found) for course_id, found in by_course.items()}


async def including(session: AsyncSession, course_id: int) -> tuple[Shown, ...]:
    rows = await session.execute(_shown_query().where(BundleCourse.course_id == course_id))
    return tuple(Shown(b, title, stars, minor, cur) for _c, b, title, stars, minor, cur in rows)


def on_sale(bundle: Bundle, courses: Sequence[Course]) -> bool:
    """Sold while published and every course in it is too."""
    return bundle.published and len(courses) >= MIN_COURSES and all(c.published for c in courses)


def reduced_price(price: int, lists: Sequence[int], owned: Sequence[bool]) -> int | None:
    """The README's rule: ``price × rest / total``, half up, at least 1; None when that is
    not below the rest bought separately (or nothing is left to buy).

    lists: each course's list price in the unit paid (0 = not sold so: the unit is off);
    owned: whether the learner already has that course."""
    if price <= 0 or not lists or any(p <= 0 for p in lists):
        return None
    total = sum(lists)
    rest = sum(p for p, own in zip(lists, owned, strict=True) if not own)
    if rest <= 0:
        return None
    amount = max(1, (2 * price * rest + total) // (2 * total))
    return amount if amount < rest else None
