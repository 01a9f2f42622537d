"""Recommendations: "Recommended for you", "Similar courses" and search, as plain data.

One ``Recommendations`` holder per catalog (``CatalogSearch``) in a process. It fits a
``Recommender`` on the catalog snapshot's published courses plus the learners' signals
(entitlements, views, purchases, finished lessons) in a worker thread and swaps the
reference atomically. Handlers never wait for a refit once a model exists:

- the catalog changed (``CatalogSearch.invalidate()`` → a snapshot with a new
  ``version``): the old model keeps answering while a new one is fitted;
- co-purchase statistics drift as people buy: refitted at most every ``max_age`` seconds.

A learner's own profile (interests, what they own and viewed) is read per request, so a
purchase or a new interest counts at once, and owned courses are never suggested.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Entitlement, Event, EventKind, ProductKind, User
from bot.recommend import Interaction, Profile, Recommender
from bot.recommend.language import RECOMMEND_MARGIN, by_places, merge_by_margin
from bot.services.catalog import CourseSummary
from bot.services.search import CatalogSearch, CatalogSnapshot
from bot.services.topics import interest_keywords

log = logging.getLogger(__name__)

# The most recent funnel events the model learns from: bounded fit time and memory.
MAX_EVENTS = 300_000
RECENT_VIEWS = 30
SPARE = 3
# With a language preference, candidates asked of the model per course shown (at most
# LANGUAGE_EXTRA more): enough for the learner's language to fill the list when the best
# ones are in the other, few enough that the model's diversity step stays cheap (measured
# at 20,000 courses: CPU p50 0.8 ms for 8 candidates, 1.1 ms for 23, 1.7 ms for 40).
LANGUAGE_POOL = 4
LANGUAGE_EXTRA = 20
EVENT_KINDS = {
    EventKind.VIEW.value: "view",
    EventKind.PAID.value: "purchase",
    EventKind.LESSON_DONE.value: "done",
}


@dataclass(frozen=True, slots=True)
class Fitted:
    model: Recommender
    snapshot: CatalogSnapshot
    built_at: float


KINDS = ("view", "purchase", "done")


class Signals:
    """Learners' signals in compact arrays (~13 bytes each instead of a ~100-byte object),
    turned into ``Interaction`` objects one at a time inside the fitting thread."""

    __slots__ = ("_courses", "_kinds", "_users")

    def __init__(self) -> None:
        self._users = array("q")
        self._courses = array("q")
        self._kinds = array("b")

    def add(self, user_id: int, course_id: int, kind: str) -> None:
        self._users.append(user_id)
        self._courses.append(course_id)
        self._kinds.append(KINDS.index(kind))

    def __len__(self) -> int:
        return len(self._users)

    def __iter__(self) -> Iterator[Interaction]:
        for user_id, course_id, kind in zip(self._users, self._courses, self._kinds, strict=True):
            yield Interaction(user_id, course_id, KINDS[kind])


async def load_interactions(session: AsyncSession) -> Signals:
    """Every course entitlement ever granted (refunds included: they still say what
    goes together) and the most recent funnel events about courses."""
    out = Signals()
    grants = await session.execute(
        select(Entitlement.user_id, Entitlement.product_id).where(
            Entitlement.product_kind == ProductKind.COURSE
        )
    )
    for user_id, course_id in grants:
        out.add(user_id, course_id, "purchase")
    events = await session.execute(
        select(Event.user_id, Event.course_id, Event.kind)
        .where(Event.kind.in_(list(EVENT_KINDS)), Event.course_id.is_not(None))
        .where(Event.user_id.is_not(None))
        .order_by(Event.id.desc())
        .limit(MAX_EVENTS)
    )
    for who, what, kind in events:
        if who is not None and what is not None:
            out.add(who, what, EVENT_KINDS[kind])
    return out


async def load_profile(session: AsyncSession, user_id: int) -> Profile:
    """What the recommender knows about one learner: onboarding interests (as keywords in
    both languages), owned courses (every non-revoked entitlement, expired ones too:
    they bought it once) and recent views."""
    keys = await session.scalar(select(User.interests).where(User.id == user_id))
    owned = await session.scalars(
        select(Entitlement.product_id).where(
            Entitlement.user_id == user_id,
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.revoked_at.is_(None),
        )
    )
    viewed = await session.scalars(
        select(Event.course_id)
        .where(
            Event.user_id == user_id,
            Event.kind == EventKind.VIEW,
            Event.course_id.is_not(None),
        )
        .order_by(Event.id.desc())
        .limit(RECENT_VIEWS)
    )
    return Profile(
        interests=interest_keywords(list(keys or ())),
        owned=tuple(sorted(set(owned))),
        viewed=tuple(dict.fromkeys(v for v in viewed if v is not None)),
    )


Relevance = Callable[[NDArray[np.int64]], NDArray[np.float64]]


class Recommendations:
    """The process-wide holder of the fitted model for one catalog."""

    def __init__(self, catalog: CatalogSearch, max_age: float = 900.0) -> None:
        self.catalog = catalog
        self.max_age = max_age
        self._fitted: Fitted | None = None
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._stale = False

    def invalidate(self) -> None:
        """Refit soon (new purchases matter now); the current model keeps answering."""
        self._stale = True

    async def _fit(self, session: AsyncSession | None) -> None:
        async with self._lock:
            snapshot = await self.catalog.snapshot(session)
            current = self._fitted
            if current is not None and current.snapshot is snapshot and not self._stale:
                return  # another caller fitted it while we waited for the lock
            self._stale = False
            if session is not None:
                interactions = await load_interactions(session)
            else:
                # CatalogSearch keeps the process's sessionmaker; a background refit
                # reads through its own short session.
                async with self.catalog.sessionmaker() as own:
                    interactions = await load_interactions(own)
            # Fitting is CPU work (seconds at 100k courses): never on the event loop.
            model = await asyncio.to_thread(Recommender.fit, snapshot.docs, interactions)
            self._fitted = Fitted(model, snapshot, time.monotonic())
            log.info("recommender fitted: %d courses, %d signals", len(model), len(interactions))

    async def _refit_in_background(self) -> None:
        try:
            await self._fit(None)
        except Exception:  # the current model keeps answering; try again next time
            self._stale = True
            log.exception("recommender refit failed")

    async def fitted(self, session: AsyncSession | None = None) -> Fitted:
        """The current model. Only the very first fit makes the caller wait."""
        snapshot = await self.catalog.snapshot(session)
        current = self._fitted
        if current is None:
            await self._fit(session)
            assert self._fitted is not None
            return self._fitted
        outdated = (
            current.snapshot is not snapshot
            or self._stale
            or time.monotonic() - current.built_at > self.max_age
        )
        if outdated and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._refit_in_background())
        return current

    def ready(self) -> Fitted | None:
        """The model if one is fitted, without waiting; otherwise start the first fit.

        For suggestions shown beside other work (a receipt, a finished lesson): those run
        inside the update's write transaction, which must not stay open for a first fit.
        """
        if self._fitted is None and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._refit_in_background())
        return self._fitted

    async def wait_fresh(self) -> None:
        """Tests and the demo: wait until a refit in flight (if any) has landed."""
        if self._refresh is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh


_holders: weakref.WeakKeyDictionary[CatalogSearch, Recommendations] = weakref.WeakKeyDictionary()


def recommendations(catalog: CatalogSearch) -> Recommendations:
    """The holder for this catalog (one per process in production; tests build several)."""
    holder = _holders.get(catalog)
    if holder is None:
        holder = _holders[catalog] = Recommendations(catalog)
    return holder


async def _published(
    catalog: CatalogSearch, session: AsyncSession, ids: list[int], k: int
) -> list[CourseSummary]:
    snapshot = await catalog.snapshot(session)
    return [snapshot.by_id[i] for i in ids if i in snapshot.by_id][:k]


def _language_of(item: CourseSummary) -> str:
    return item.language


def _pool(k: int, language: str | None) -> int:
    # A few spare: courses unpublished since the fit drop out against the newest snapshot.
    if not language:
        return k + SPARE
    return min(k * LANGUAGE_POOL, k + LANGUAGE_EXTRA) + SPARE


async def _ranked_in_language(
    catalog: CatalogSearch,
    session: AsyncSession,
    ids: list[int],
    relevance: Relevance,
    k: int,
    language: str | None,
) -> list[CourseSummary]:
    """The published ones, the learner's language first unless the other language's
    course is clearly more relevant (bot.recommend.language)."""
    items = await _published(catalog, session, ids, len(ids))
    if language and items:
        scores = relevance(np.fromiter((i.id for i in items), dtype=np.int64, count=len(items)))
        items = merge_by_margin(items, scores.tolist(), _language_of, language, RECOMMEND_MARGIN)
    return items[:k]


async def recommend_for(
    session: AsyncSession,
    user_id: int,
    k: int = 5,
    *,
    catalog: CatalogSearch,
    wait: bool = True,
    language: str | None = None,
) -> list[CourseSummary]:
    """Courses for this learner, best first: never one they own, never an unpublished one.
    With ``language`` (None: the learner wants both), courses in it lead.

    wait=False answers nothing rather than wait for the very first fit.
    """
    holder = recommendations(catalog)
    fitted = await holder.fitted(session) if wait else holder.ready()
    if fitted is None:
        return []
    profile = await load_profile(session, user_id)
    ids, relevance = fitted.model.ranked(profile, _pool(k, language))
    return await _ranked_in_language(catalog, session, ids, relevance, k, language)


async def recommend_ranked(
    session: AsyncSession,
    user_id: int,
    k: int = 5,
    *,
    catalog: CatalogSearch,
    language: str | None = None,
) -> tuple[list[CourseSummary], Relevance]:
    """recommend_for, and the relevance (0..1) of other courses to this learner from the
    same scores (bot.marketplace.sponsored: a sponsored slot must be relevant too)."""
    fitted = await recommendations(catalog).fitted(session)
    profile = await load_profile(session, user_id)
    ids, relevance = fitted.model.ranked(profile, _pool(k, language))
    items = await _ranked_in_language(catalog, session, ids, relevance, k, language)
    return items, relevance


async def similar_to(
    session: AsyncSession,
    course_id: int,
    k: int = 5,
    *,
    catalog: CatalogSearch,
    user_id: int | None = None,
    language: str | None = None,
) -> list[CourseSummary]:
    """Courses like this one (text and co-purchases); without the learner's own ones.
    With ``language``, courses in it lead unless the other's ranked clearly higher."""
    fitted = await recommendations(catalog).fitted(session)
    owned: set[int] = set()
    if user_id is not None:
        owned = set((await load_profile(session, user_id)).owned)
    wanted = _pool(k, language) + len(owned)
    ids = [i for i in fitted.model.similar(course_id, wanted) if i not in owned]
    items = await _published(catalog, session, ids, len(ids))
    return by_places(items, _language_of, language)[:k]


async def search_courses(
    query: str,
    limit: int = 8,
    *,
    catalog: CatalogSearch,
    session: AsyncSession | None = None,
    language: str | None = None,
) -> list[CourseSummary]:
    """Typo-tolerant search over titles and tags (the catalog's own index); with
    ``language``, the learner's language first unless another course is clearly better."""
    return await catalog.search(query, limit=limit, session=session, language=language)
