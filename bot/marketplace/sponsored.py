"""Sponsored slots: which promoted course fills a slot, and what a click on it costs.

The running campaigns are held in memory (``Campaigns``), reloaded in the background
when this process commits a change to one or every ``TTL`` seconds, so a catalog page, a
search or a recommendation never scans the campaigns table. Selection is a generalised
second-price auction:

- relevance (0..1) of each promoted course to the screen: its search score for a search
  (only courses among the query's own matches, at or above SEARCH_FLOOR), the
  recommender's score relative to the learner's best for recommendations (at or above
  REC_FLOOR), and 1 for a catalog page, which is no query;
- rank = relevance × bid; a winner pays the least bid that would still keep its place,
  ceil(next rank / own relevance), at least MIN_BID and never more than its own bid;
- at most one sponsored slot in every five (SPACING), never a course already on the
  screen, never one the learner owns, never the learner's own course.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.marketplace.promotions import MIN_BID
from bot.models import CampaignStatus, Course, Creator, PromoCampaign
from bot.services.changes import Tracker

log = logging.getLogger(__name__)

CAMPAIGNS = Tracker(PromoCampaign)
TTL = 10.0
SPACING = 5  # one sponsored slot at most in every SPACING slots
SEARCH_FLOOR = 0.7  # WRatio 70 of 100: a course the query really names
REC_FLOOR = 0.3  # of the learner's best recommendation's score


@dataclass(frozen=True, slots=True)
class Live:
    campaign_id: int
    course_id: int
    creator_user_id: int
    bid: int


@dataclass(frozen=True, slots=True)
class LiveSet:
    by_course: dict[int, Live]  # the highest bid per course
    by_bid: tuple[Live, ...]  # the same, highest bid first
    version: int
    # by_bid's course ids and bids as arrays: a recommendation scores them all at once.
    course_ids: NDArray[np.int64]
    bids: NDArray[np.float64]

    @classmethod
    def build(cls, rows: Iterable[Live], version: int) -> LiveSet:
        best: dict[int, Live] = {}
        for live in rows:
            held = best.get(live.course_id)
            if held is None or (live.bid, -live.campaign_id) > (held.bid, -held.campaign_id):
                best[live.course_id] = live
        ordered = tuple(sorted(best.values(), key=lambda x: (-x.bid, x.campaign_id)))
        ids = np.fromiter((x.course_id for x in ordered), dtype=np.int64, count=len(ordered))
        bids = np.fromiter((x.bid for x in ordered), dtype=np.float64, count=len(ordered))
        return cls(best, ordered, version, ids, bids)


@dataclass(frozen=True, slots=True)
class Slot:
    live: Live
    relevance: float
    price: int  # what a click costs (the second price)


def slots_for(organic: int) -> int:
    """Sponsored slots beside `organic` results: s <= (organic + s) / SPACING."""
    return organic // (SPACING - 1)


async def auction(
    ranked: Iterable[tuple[Live, float]],
    slots: int,
    user_id: int,
    on_screen: set[int],
    owns: Callable[[int], Awaitable[bool]],
) -> list[Slot]:
    """`ranked`: candidates with their relevance, by rank (relevance × bid) first. Walks
    them in order, skipping those that may not be shown to this learner, until it has
    the winners and the first loser (whose rank sets the last winner's price)."""
    if slots <= 0:
        return []
    chosen: list[tuple[Live, float]] = []
    for live, rel in ranked:
        if live.course_id in on_screen or live.creator_user_id == user_id:
            continue
        if await owns(live.course_id):
            continue
        chosen.append((live, rel))
        if len(chosen) > slots:
            break
    out: list[Slot] = []
    for i, (live, rel) in enumerate(chosen[:slots]):
        price = MIN_BID
        if i + 1 < len(chosen):
            nxt, nrel = chosen[i + 1]
            price = max(MIN_BID, math.ceil(nxt.bid * nrel / rel - 1e-9))
        out.append(Slot(live, rel, min(price, live.bid)))
    return out


def rank(candidates: Iterable[tuple[Live, float]], floor: float) -> list[tuple[Live, float]]:
    kept = [(live, rel) for live, rel in candidates if rel >= floor]
    kept.sort(key=lambda c: (-c[0].bid * c[1], c[0].campaign_id))
    return kept


def for_catalog(live: LiveSet) -> Iterator[tuple[Live, float]]:
    # Every published course is as relevant to a catalog page: the order is the bids'.
    # Lazy: the auction stops after the first few it may show.
    return ((x, 1.0) for x in live.by_bid)


def for_search(live: LiveSet, hits: Iterable[tuple[int, float]]) -> list[tuple[Live, float]]:
    """`hits`: (course id, score 0..100) of the query's own matches."""
    by_course = live.by_course
    found = ((by_course.get(cid), score / 100.0) for cid, score in hits)
    return rank(((x, r) for x, r in found if x is not None), SEARCH_FLOOR)


def for_recommendations(
    live: LiveSet, relevance: Callable[[NDArray[np.int64]], NDArray[np.float64]]
) -> Iterator[tuple[Live, float]]:
    """`relevance`: the recommender's relative scores of these course ids (0..1). Scored
    and ranked as arrays (a thousand campaigns in microseconds), yielded lazily."""
    if not live.by_bid:
        return iter(())
    rel = relevance(live.course_ids)
    kept = np.flatnonzero(rel >= REC_FLOOR)
    # Highest rank first; stable, so equal ranks keep by_bid's order (bid, then id).
    order = kept[np.argsort(-(rel[kept] * live.bids[kept]), kind="stable")]
    return ((live.by_bid[i], float(rel[i])) for i in order.tolist())


class Campaigns:
    """The running campaigns of one process, for one sessionmaker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ttl: float = TTL) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = ttl
        self._live: LiveSet | None = None
        self._loaded_at = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def live(self, session: AsyncSession | None = None) -> LiveSet:
        """The running campaigns; only the very first load makes the caller wait."""
        current = self._live
        if current is None:
            return await self._load(session)
        stale = (
            CAMPAIGNS.changed_since(current.version)
            or time.monotonic() - self._loaded_at > self.ttl
        )
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._reload())
        return current

    async def _reload(self) -> None:
        try:
            await self._load(None)
        except Exception:  # the current set keeps answering; try again next time
            log.exception("reloading promoted campaigns failed")

    async def _load(self, session: AsyncSession | None) -> LiveSet:
        version = CAMPAIGNS.version  # before reading: a commit meanwhile counts as newer
        if session is None:
            async with self.sessionmaker() as own:
                rows = await _running(own)
        else:
            rows = await _running(session)
        self._live = LiveSet.build(rows, version)
        self._loaded_at = time.monotonic()
        return self._live

    def set(self, live: LiveSet) -> None:
        """Benchmarks and tests: hold exactly these campaigns."""
        self._live, self._loaded_at = live, time.monotonic()

    async def fresh(self) -> None:
        """Tests: wait for a reload in flight, then reload now."""
        if self._refresh is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        await self._load(None)

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh


async def _running(session: AsyncSession) -> list[Live]:
    rows = await session.execute(
        select(
            PromoCampaign.id,
            PromoCampaign.course_id,
            Creator.user_id,
            PromoCampaign.bid_minor,
            PromoCampaign.budget_minor - PromoCampaign.spent_minor - PromoCampaign.withdrawn_minor,
        )
        .join(Course, Course.id == PromoCampaign.course_id)
        .join(Creator, Creator.id == PromoCampaign.creator_id)
        .where(
            PromoCampaign.status == CampaignStatus.ACTIVE,
            Course.published.is_(True),
            Course.creator_id == PromoCampaign.creator_id,
        )
    )
    return [
        Live(int(cid), int(course), int(user), int(bid))
        for cid, course, user, bid, unused in rows
        if unused >= bid
    ]


_holders: weakref.WeakKeyDictionary[object, Campaigns] = weakref.WeakKeyDictionary()


def campaigns(owner: object, sessionmaker: async_sessionmaker[AsyncSession]) -> Campaigns:
    """The holder for this catalog (one per process; tests build several)."""
    holder = _holders.get(owner)
    if holder is None:
        holder = _holders[owner] = Campaigns(sessionmaker)
    return holder
