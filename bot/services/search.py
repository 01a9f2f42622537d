"""The published catalog held in memory: ordered summaries for paging, and a fuzzy search
index. Rebuilt off the event loop; read paths never query the database for it.

Handlers never wait for a rebuild once a snapshot exists: a stale one keeps answering
while a fresh one is built in a worker thread and swapped in. Call `invalidate()` after
any catalog change; other processes (webhook workers) see changes within `max_age`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Course
from bot.recommend import CourseDoc, SearchIndex
from bot.services.catalog import CatalogPage, CourseSummary

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200


_versions = itertools.count(1)


@dataclass(frozen=True, slots=True, eq=False)
class CatalogSnapshot:
    summaries: list[CourseSummary]  # published courses, by id
    by_id: dict[int, CourseSummary]
    docs: list[CourseDoc]
    index: SearchIndex
    # Unique per build, so that screens rendered from a snapshot can be cached by it.
    version: int

    @classmethod
    def build(cls, summaries: list[CourseSummary], docs: list[CourseDoc]) -> CatalogSnapshot:
        by_id = {s.id: s for s in summaries}
        return cls(summaries, by_id, docs, SearchIndex.build(docs), next(_versions))

    def page(self, number: int, size: int) -> CatalogPage:
        total = len(self.summaries)
        pages = max(1, -(-total // size))
        number = min(max(number, 0), pages - 1)
        items = self.summaries[number * size : (number + 1) * size]
        return CatalogPage(items=items, page=number, pages=pages, total=total)


async def _load(session: AsyncSession) -> tuple[list[CourseSummary], list[CourseDoc]]:
    rows = await session.execute(
        select(
            Course.id,
            Course.title,
            Course.description,
            Course.tags,
            Course.language,
            Course.creator_id,
            Course.price_minor,
            Course.currency,
            Course.stars_price,
        )
        .where(Course.published.is_(True))
        .order_by(Course.id)
    )
    summaries: list[CourseSummary] = []
    docs: list[CourseDoc] = []
    for r in rows:
        summaries.append(
            CourseSummary(r.id, r.title, r.price_minor, r.currency, r.stars_price, r.language)
        )
        docs.append(
            CourseDoc(
                id=r.id,
                title=r.title,
                description=r.description or "",
                tags=tuple(r.tags or ()),
                language=r.language,
                creator_id=r.creator_id,
            )
        )
    return summaries, docs


class CatalogSearch:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_age: float = 60.0):
        self._sessionmaker = sessionmaker
        self._max_age = max_age
        self._snapshot: CatalogSnapshot | None = None
        self._built_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        return self._sessionmaker

    def invalidate(self) -> None:
        """Call after any catalog change; the next read schedules a rebuild."""
        self._stale = True

    async def _rebuild(self, session: AsyncSession | None = None) -> None:
        async with self._lock:
            self._stale = False
            if session is not None:
                summaries, docs = await _load(session)
            else:
                async with self._sessionmaker() as own:
                    summaries, docs = await _load(own)
            # Building the index is CPU work: keep it off the event loop.
            self._snapshot = await asyncio.to_thread(CatalogSnapshot.build, summaries, docs)
            self._built_at = time.monotonic()

    def _is_stale(self) -> bool:
        return self._stale or time.monotonic() - self._built_at > self._max_age

    async def snapshot(self, session: AsyncSession | None = None) -> CatalogSnapshot:
        """The current snapshot. Only the very first build makes the caller wait.

        A handler passes its own session so that the first build reuses its connection
        instead of waiting for another one from the pool.
        """
        if self._snapshot is None:
            await self._rebuild(session)
        elif self._is_stale() and (self._refresh is None or self._refresh.done()):
            self._stale = False
            self._refresh = asyncio.create_task(self._rebuild())
        assert self._snapshot is not None
        return self._snapshot

    async def search(
        self, query: str, limit: int = 8, session: AsyncSession | None = None
    ) -> list[CourseSummary]:
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        snap = await self.snapshot(session)
        hits = snap.index.search(query, limit=limit)
        return [snap.by_id[h.course_id] for h in hits if h.course_id in snap.by_id]

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
