"""Reviews and ratings: who may review, one review per learner per course, votes,
reports, the creator's one public answer, and the Bayesian average the catalog sorts by.

A review counts (in averages and on the card) while the purchase behind it stands: a
refund (an access revoke with no other standing: a course entitlement or a plan that
includes the course) sets `counted` to False through an access hook, in the refund's own
transaction; a new purchase counts it again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Course, Entitlement, Job, JobStatus, Plan, ProductKind, utcnow
from bot.models.marketplace import Review, ReviewVote
from bot.services import access
from bot.services.changes import Tracker

MIN_RATING, MAX_RATING = 1, 5
MAX_TEXT = 500
MAX_REPLY = 500
# A learner reviews what they have had for at least this long.
MIN_HOLDING = timedelta(days=1)
# Bayesian average: (PRIOR_WEIGHT * PRIOR_MEAN + sum of ratings) / (PRIOR_WEIGHT + n).
# A fixed prior, not the platform's own mean: with a mean pulled up by many good reviews a
# single 5 would still beat forty 4.8s. 3.5 is "neither good nor bad" on a 1-5 scale, and
# ten reviews' worth of weight means a course needs about ten ratings before its own
# average dominates.
PRIOR_MEAN = 3.5
PRIOR_WEIGHT = 10.0
SHOWN_ON_CARD = 2
REVIEW_NOTICE = "market.review"

HELPFUL, REPORT = "helpful", "report"

REVIEWS = Tracker(Review, ReviewVote, key=lambda obj: obj.course_id)


def bayesian(total: float, count: int) -> float:
    return (PRIOR_WEIGHT * PRIOR_MEAN + total) / (PRIOR_WEIGHT + count)


class Refusal(StrEnum):
    NO_COURSE = "no_course"
    NOT_BUYER = "not_buyer"
    TOO_SOON = "too_soon"
    BAD_RATING = "bad_rating"
    TOO_LONG = "too_long"
    OWN_COURSE = "own_course"


@dataclass(frozen=True, slots=True)
class Saved:
    review_id: int
    created: bool  # False: an edit of the learner's earlier review
    creator_id: int


@dataclass(frozen=True, slots=True)
class ShownReview:
    id: int
    rating: int
    text: str
    helpful: int
    reply: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    average: float  # plain mean of counted, visible ratings; 0 without any
    top: tuple[ShownReview, ...]


EMPTY = Summary(0, 0.0, ())


async def _holding_since(session: AsyncSession, user_id: int, course_id: int) -> datetime | None:
    """Since when the learner has stood to review this course (earliest standing
    entitlement: the course itself, or a plan that includes it); None: never bought."""
    rows = await session.execute(
        select(Entitlement.product_kind, Entitlement.product_id, Entitlement.starts_at).where(
            Entitlement.user_id == user_id,
            Entitlement.revoked_at.is_(None),
            Entitlement.product_kind.in_([ProductKind.COURSE, ProductKind.PLAN]),
        )
    )
    since: list[datetime] = []
    plans: dict[int, datetime] = {}
    for kind, product_id, starts_at in rows:
        if kind == ProductKind.COURSE and product_id == course_id:
            since.append(starts_at)
        elif kind == ProductKind.PLAN:
            plans[product_id] = starts_at
    if plans:
        for plan_id, course_ids in await session.execute(
            select(Plan.id, Plan.course_ids).where(Plan.id.in_(list(plans)))
        ):
            if course_id in (course_ids or []):
                since.append(plans[plan_id])
    return min(since) if since else None


async def may_review(
    session: AsyncSession, user_id: int, course_id: int, now: datetime
) -> Refusal | Course:
    course = await session.get(Course, course_id)
    if course is None or not course.published:
        return Refusal.NO_COURSE
    since = await _holding_since(session, user_id, course_id)
    if since is None:
        return Refusal.NOT_BUYER
    if since > now - MIN_HOLDING:
        return Refusal.TOO_SOON
    return course


def check_input(rating: int, text: str) -> Refusal | None:
    if not MIN_RATING <= rating <= MAX_RATING:
        return Refusal.BAD_RATING
    if len(text) > MAX_TEXT:
        return Refusal.TOO_LONG
    return None


async def save_review(
    session: AsyncSession,
    user_id: int,
    course_id: int,
    rating: int,
    text: str,
    now: datetime | None = None,
) -> Refusal | Saved:
    """Create or edit the learner's review. A new one queues the creator's notice, a job
    the scheduler sends after this transaction commits."""
    now = now or utcnow()
    text = text.strip()
    refused = check_input(rating, text)
    if refused is not None:
        return refused
    course = await may_review(session, user_id, course_id, now)
    if isinstance(course, Refusal):
        return course
    review = await session.scalar(
        select(Review).where(Review.user_id == user_id, Review.course_id == course_id)
    )
    created = review is None
    if review is None:
        review = Review(
            user_id=user_id,
            course_id=course_id,
            creator_id=course.creator_id,
            rating=rating,
            text=text,
            created_at=now,
            updated_at=now,
        )
        session.add(review)
    else:
        review.rating, review.text, review.updated_at = rating, text, now
        review.counted = True
    await session.flush()
    if created:
        session.add(
            Job(
                kind=REVIEW_NOTICE,
                dedupe_key=f"mk.rv:{review.id}",
                payload={"review_id": review.id},
                run_at=now,
                status=JobStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
    return Saved(review.id, created, course.creator_id)


async def vote(session: AsyncSession, review_id: int, user_id: int, kind: str) -> bool | None:
    """A helpful vote or a report, once per user. None: no such review (or one that is
    not shown); False: already voted; True: counted."""
    review = await session.get(Review, review_id)
    if review is None or review.hidden or not review.counted or kind not in (HELPFUL, REPORT):
        return None
    if review.user_id == user_id:
        return False  # nobody votes for their own review
    done = await session.scalar(
        select(ReviewVote.id).where(
            ReviewVote.review_id == review_id,
            ReviewVote.user_id == user_id,
            ReviewVote.kind == kind,
        )
    )
    if done is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(
                ReviewVote(
                    review_id=review_id, course_id=review.course_id, user_id=user_id, kind=kind
                )
            )
    except IntegrityError:  # a double press racing itself
        return False
    column = Review.helpful if kind == HELPFUL else Review.reports
    await session.execute(
        update(Review)
        .where(Review.id == review_id)
        .values({column: column + 1})
        .execution_options(synchronize_session="fetch")
    )
    return True


class ReplyResult(StrEnum):
    OK = "ok"
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"
    ALREADY = "already"
    TOO_LONG = "too_long"
    EMPTY = "empty"


async def reply(
    session: AsyncSession, creator_id: int, review_id: int, text: str, now: datetime | None = None
) -> ReplyResult:
    """The creator's one public answer to a review of their course."""
    text = text.strip()
    if not text:
        return ReplyResult.EMPTY
    if len(text) > MAX_REPLY:
        return ReplyResult.TOO_LONG
    review = await session.get(Review, review_id)
    if review is None:
        return ReplyResult.NOT_FOUND
    if review.creator_id != creator_id:
        return ReplyResult.NOT_YOURS
    if review.reply is not None:
        return ReplyResult.ALREADY
    review.reply, review.replied_at = text, now or utcnow()
    await session.flush()
    return ReplyResult.OK


async def set_hidden(session: AsyncSession, review_id: int, hidden: bool) -> Review | None:
    """A platform owner's moderation."""
    review = await session.get(Review, review_id)
    if review is not None:
        review.hidden = hidden
        await session.flush()
    return review


@dataclass(frozen=True, slots=True)
class Reported:
    id: int
    course_id: int
    course_title: str
    rating: int
    text: str
    reports: int


REPORTED_PAGE = 10


async def reported(session: AsyncSession, limit: int = REPORTED_PAGE) -> list[Reported]:
    """Shown reviews with open reports, most reported first (the owners' queue)."""
    rows = await session.execute(
        select(
            Review.id, Review.course_id, Course.title, Review.rating, Review.text, Review.reports
        )
        .join(Course, Course.id == Review.course_id)
        .where(Review.reports > 0, Review.hidden.is_(False))
        .order_by(Review.reports.desc(), Review.id)
        .limit(limit)
    )
    return [Reported(*row) for row in rows]


async def keep(session: AsyncSession, review_id: int) -> Review | None:
    """A platform owner read the reports and keeps the review: its reports are cleared
    (the queue empties), the votes stay, so the same people cannot report it again."""
    review = await session.get(Review, review_id)
    if review is not None:
        review.reports = 0
        review.hidden = False
        await session.flush()
    return review


async def invite(
    session: AsyncSession, user_id: int, course_id: int, now: datetime, *, last: bool
) -> bool:
    """Whether a finished lesson carries "Rate this course": no review yet, and either the
    course's last lesson (a bought one) or a course the learner may review now."""
    if await session.scalar(
        select(Review.id).where(Review.user_id == user_id, Review.course_id == course_id)
    ):
        return False
    if last:
        return await _holding_since(session, user_id, course_id) is not None
    return isinstance(await may_review(session, user_id, course_id, now), Course)


def _visible() -> tuple[Any, ...]:
    return (Review.counted.is_(True), Review.hidden.is_(False))


def _most_helpful() -> tuple[Any, ...]:
    # "Most helpful recent": helpful votes first, then the newest.
    return (Review.helpful.desc(), Review.created_at.desc(), Review.id.desc())


async def load_summary(session: AsyncSession, course_id: int) -> Summary:
    visible = (Review.course_id == course_id, *_visible())
    count, avg = (
        await session.execute(
            select(func.count(Review.id), func.avg(Review.rating)).where(*visible)
        )
    ).one()
    if not count:
        return EMPTY
    # Only reviews with words are shown.
    rows = await session.execute(
        select(Review.id, Review.rating, Review.text, Review.helpful, Review.reply)
        .where(*visible, Review.text != "")
        .order_by(*_most_helpful())
        .limit(SHOWN_ON_CARD)
    )
    top = tuple(ShownReview(r[0], r[1], r[2], r[3], r[4]) for r in rows)
    return Summary(int(count), round(float(avg), 2), top)


async def all_summaries(session: AsyncSession) -> dict[int, Summary]:
    """`load_summary` of every course with visible reviews, in two queries (the top
    reviews of each course picked by a window function, in the same order)."""
    counts = await session.execute(
        select(Review.course_id, func.count(Review.id), func.avg(Review.rating))
        .where(*_visible())
        .group_by(Review.course_id)
    )
    rank = func.row_number().over(partition_by=Review.course_id, order_by=_most_helpful())
    ranked = (
        select(
            Review.course_id,
            Review.id,
            Review.rating,
            Review.text,
            Review.helpful,
            Review.reply,
            rank.label("rank"),
        )
        .where(*_visible(), Review.text != "")
        .subquery()
    )
    top: dict[int, list[ShownReview]] = {}
    for row in await session.execute(
        select(ranked)
        .where(ranked.c.rank <= SHOWN_ON_CARD)
        .order_by(ranked.c.course_id, ranked.c.rank)
    ):
        top.setdefault(int(row[0]), []).append(ShownReview(row[1], row[2], row[3], row[4], row[5]))
    return {
        int(course_id): Summary(int(n), round(float(avg), 2), tuple(top.get(int(course_id), ())))
        for course_id, n, avg in counts
        if n
    }


async def course_scores(session: AsyncSession) -> dict[int, tuple[int, float, float]]:
    """course id -> (count, mean, Bayesian average) of every course with counted reviews."""
    rows = await session.execute(
        select(Review.course_id, func.count(Review.id), func.sum(Review.rating))
        .where(Review.counted.is_(True), Review.hidden.is_(False))
        .group_by(Review.course_id)
    )
    return {int(c): (int(n), float(s) / int(n), bayesian(float(s), int(n))) for c, n, s in rows}


def rank_by_rating(course_ids: list[int], scores: dict[int, tuple[int, float, float]]) -> list[int]:
    """Best Bayesian average first; unrated courses sit at the prior; ties by id."""
    return sorted(
        course_ids,
        key=lambda c: (-(scores[c][2] if c in scores else PRIOR_MEAN), c),
    )


class Ratings:
    """Per process: the catalog's rating order. Reloaded when a commit of this process
    changed reviews or votes (`bot.services.changes`), or after `max_age` for other
    processes' commits. (What cards show of their reviews: bot.marketplace.card_extras.)"""

    def __init__(self, max_age: float = 60.0) -> None:
        self._max_age = max_age
        self._scores: tuple[int, float, dict[int, tuple[int, float, float]]] | None = None

    async def scores(
        self, session: AsyncSession, mono: float
    ) -> dict[int, tuple[int, float, float]]:
        if self._scores is not None:
            version, at, scores = self._scores
            if not REVIEWS.changed_since(version) and mono - at < self._max_age:
                return scores
        version = REVIEWS.version
        scores = await course_scores(session)
        self._scores = (version, mono, scores)
        return scores


_holders: weakref.WeakKeyDictionary[object, Ratings] = weakref.WeakKeyDictionary()


def ratings(owner: object) -> Ratings:
    """The cache that belongs with one catalog (one per process; tests build several)."""
    holder = _holders.get(owner)
    if holder is None:
        holder = _holders[owner] = Ratings()
    return holder


# -- refunds take a review's weight away ------------------------------------------------


async def _reweigh(session: AsyncSession, user_id: int, course_ids: list[int]) -> None:
    for course_id in course_ids:
        review = await session.scalar(
            select(Review).where(Review.user_id == user_id, Review.course_id == course_id)
        )
        if review is None:
            continue
        standing = await _holding_since(session, user_id, course_id) is not None
        if review.counted != standing:
            review.counted = standing
    await session.flush()


async def _on_course_change(session: AsyncSession, change: access.AccessChange) -> None:
    await _reweigh(session, change.user_id, [change.product_id])


async def _on_plan_change(session: AsyncSession, change: access.AccessChange) -> None:
    course_ids = await session.scalar(select(Plan.course_ids).where(Plan.id == change.product_id))
    if course_ids:
        await _reweigh(session, change.user_id, list(course_ids))


def install() -> None:
    """Refunds and expiries of access re-weigh the learner's reviews (idempotent)."""
    for kind, hook in (
        (ProductKind.COURSE, _on_course_change),
        (ProductKind.PLAN, _on_plan_change),
    ):
        access.on_revoke(kind, hook)
        access.on_grant(kind, hook)
