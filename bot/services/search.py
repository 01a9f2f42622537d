"""The published catalog held in memory: ordered summaries for paging, course cards, and
a fuzzy search index. Rebuilt off the event loop; read paths never query the database
for it.

Handlers never wait for a rebuild once a snapshot exists: a stale one keeps answering
pages and searches while a fresh one is built in a worker thread and swapped in. A
commit in this process that changes a course, a lesson or a creator marks the snapshot
stale by itself (`bot.services.changes`); until the fresh one is in, cards are read from
the database, so a creator's edit shows on the next card. Other processes (webhook
workers) see changes within `max_age`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Course, Creator, Lesson, utcnow
from bot.money import warm_prices
from bot.recommend import CourseDoc, SearchIndex, crosslang
from bot.recommend.language import same_language_first
from bot.recommend.search import SearchHit
from bot.services.catalog import (
    CatalogPage,
    CourseCard,
    CourseSummary,
    course_card,
    published_cards,
)
from bot.services.changes import Tracker
from bot.services.ownership import OwnedCourses, load_owners

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200
# Distinct queries whose results a snapshot remembers: people search for the same few
# things, and a repeated query then costs a dictionary lookup instead of a fuzzy match.
MAX_CACHED_QUERIES = 2048
# Matches a search keeps with their scores: its results, and the pool sponsored slots
# may come from.
HIT_POOL = 40

CATALOG = Tracker(Course, Lesson, Creator)

_versions = itertools.count(1)


def _language_of(item: CourseSummary) -> str:
    return item.language


@dataclass(frozen=True, slots=True, eq=False)
class CatalogSnapshot:
    summaries: list[CourseSummary]  # published courses, by id
    by_id: dict[int, CourseSummary]
    docs: list[CourseDoc]
    index: SearchIndex
    # Unique per build, so that screens rendered from a snapshot can be cached by it.
    version: int
    # The course cards, as anyone who does not own the course sees them.
    cards: dict[int, CourseCard]
    # CATALOG.version when the rows were read: any later commit makes this stale.
    changes_version: int
    # The pages' order per learner language: its courses first, each part by id.
    # Computed in the build so that a page costs a slice, never a query or a sort.
    by_language: dict[str, list[CourseSummary]]
    _results: OrderedDict[tuple[str, int, str | None], list[CourseSummary]] = field(
        default_factory=OrderedDict
    )
    _hits: OrderedDict[str, list[SearchHit]] = field(default_factory=OrderedDict)

    @classmethod
    def build(
        cls,
        summaries: list[CourseSummary],
        docs: list[CourseDoc],
        cards: dict[int, CourseCard],
        changes_version: int,
    ) -> CatalogSnapshot:
        by_id = {s.id: s for s in summaries}
        index = SearchIndex.build(docs)
        # Pages and cards show every price in both languages, at ~10 µs a price in Babel:
        # format them here, in the build's worker thread, rather than on the event loop.
        warm_prices([(s.price_minor, s.currency) for s in summaries if s.price_minor > 0])
        by_language = {
            lang: same_language_first(summaries, _language_of, lang)
            for lang in sorted({s.language for s in summaries})
        }
        return cls(
            summaries, by_id, docs, index, next(_versions), cards, changes_version, by_language
        )

    def page(self, number: int, size: int, language: str | None = None) -> CatalogPage:
        """Page ``number`` (clamped); with ``language``, its courses first."""
        ordered = self.by_language.get(language or "", self.summaries)
        total = len(ordered)
        pages = max(1, -(-total // size))
        number = min(max(number, 0), pages - 1)
        items = ordered[number * size : (number + 1) * size]
        return CatalogPage(items=items, page=number, pages=pages, total=total)

    def hits(self, query: str) -> list[SearchHit]:
        """The query's best HIT_POOL matches with their scores, in no language's order
        (the first `limit` of them are search(query, limit) without a language: the index
        ranks a pool the same way whatever its size). Sponsored slots are chosen among
        them (bot.marketplace.sponsored)."""
        hits = self._hits.get(query)
        if hits is None:
            hits = self._hits[query] = self.index.search(query, limit=HIT_POOL)
            if len(self._hits) > MAX_CACHED_QUERIES:
                self._hits.popitem(last=False)
        return hits

    def search(self, query: str, limit: int, language: str | None = None) -> list[CourseSummary]:
        """Best matches first; with ``language`` (the learner's), courses in it lead
        unless another one is clearly the better match (``SearchIndex.search``)."""
        key = (query, limit, language)
        items = self._results.get(key)
        if items is None:
            hits = self._ranked(query, limit, language)
            items = [self.by_id[h.course_id] for h in hits if h.course_id in self.by_id]
            self._results[key] = items
            if len(self._results) > MAX_CACHED_QUERIES:
                self._results.popitem(last=False)
        return items

    def _ranked(self, query: str, limit: int, language: str | None) -> list[SearchHit]:
        translated = crosslang.translate(query)
        if translated:
            # Cross-language discovery: the subject's courses in the other language too.
            pool = max(limit, HIT_POOL)
            return crosslang.merge(
                self.index.search(query, limit=pool),
                self.index.search(translated, limit=pool),
                self._language_of_id,
                language,
                limit,
            )
        if limit <= HIT_POOL and language is None:
            return self.hits(query)[:limit]
        return self.index.search(query, limit=limit, language=language)

    def _language_of_id(self, course_id: int) -> str | None:
        item = self.by_id.get(course_id)
        return None if item is None else item.language


async def _load(
    session: AsyncSession,
) -> tuple[list[CourseSummary], list[CourseDoc], dict[int, CourseCard]]:
    cards = await published_cards(session)
    summaries = [
        CourseSummary(c.id, c.title, c.price_minor, c.currency, c.stars_price, c.language)
        for c in cards
    ]
    docs = [
        CourseDoc(
            id=c.id,
            title=c.title,
            description=c.description or "",
            tags=tuple(c.tags),
            language=c.language,
            creator_id=c.creator_id,
        )
        for c in cards
    ]
    return summaries, docs, {c.id: c for c in cards}


class CatalogSearch:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_age: float = 60.0):
        self._sessionmaker = sessionmaker
        self._max_age = max_age
        self._snapshot: CatalogSnapshot | None = None
        self._built_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        # A card is as fresh as its snapshot: the same bound for whether it says "owned".
        self.owned = OwnedCourses(ttl=max_age)

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sessionmaker

    def invalidate(self) -> None:
        """The next read schedules a rebuild (commits of this process do this by themselves)."""
        self._stale = True

    async def _rebuild(self, session: AsyncSession | None = None) -> None:
        async with self._lock:
            self._stale = False
            # Noted before reading: a commit that lands during the read counts as newer.
            changes_version = CATALOG.version
            if session is not None:
                summaries, docs, cards = await _load(session)
                owners = await load_owners(session)
            else:
                async with self._sessionmaker() as own:
                    summaries, docs, cards = await _load(own)
                    owners = await load_owners(own)
            self.owned.set_owners(*owners)
            # Building the index is CPU work: keep it off the event loop.
            self._snapshot = await asyncio.to_thread(
                CatalogSnapshot.build, summaries, docs, cards, changes_version
            )
            self._built_at = time.monotonic()

    def _changed(self, snapshot: CatalogSnapshot) -> bool:
        return CATALOG.changed_since(snapshot.changes_version)

    def _is_stale(self, snapshot: CatalogSnapshot) -> bool:
        return (
            self._stale
            or self._changed(snapshot)
            or time.monotonic() - self._built_at > self._max_age
        )

    async def snapshot(self, session: AsyncSession | None = None) -> CatalogSnapshot:
        """The current snapshot. Only the very first build makes the caller wait.

        A handler passes its own session so that the first build reuses its connection
        instead of waiting for another one from the pool.
        """
        if self._snapshot is None:
            await self._rebuild(session)
        elif self._is_stale(self._snapshot) and (self._refresh is None or self._refresh.done()):
            self._stale = False
            self._refresh = asyncio.create_task(self._rebuild())
        assert self._snapshot is not None
        return self._snapshot

    async def search(
        self,
        query: str,
        limit: int = 8,
        session: AsyncSession | None = None,
        language: str | None = None,
    ) -> list[CourseSummary]:
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        snap = await self.snapshot(session)
        return snap.search(query, limit, language)

    async def card(
        self, session: AsyncSession, course_id: int, user_id: int, now: datetime | None = None
    ) -> CourseCard | None:
        """The card of a published course, or None (missing, unpublished or forged id)."""
        now = now or utcnow()
        snap = await self.snapshot(session)
        if self._changed(snap):
            # Something changed here since the snapshot was read: ask the database.
            return await course_card(session, course_id, user_id, now)
        card = snap.cards.get(course_id)
        if card is None:
            return None
        if await self.owned.owns(session, user_id, course_id, now):
            card = replace(card, owned=True)
        return card

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
