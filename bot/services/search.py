"""Catalog search: an in-memory index over published courses, rebuilt off the event loop.

Handlers never wait for a rebuild once an index exists: a stale index keeps answering
while a fresh one is built in a worker thread and swapped in. Other processes (webhook
workers) see catalog changes within `max_age` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Course
from bot.recommend import CourseDoc, SearchIndex

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200


async def load_docs(session: AsyncSession) -> list[CourseDoc]:
    rows = await session.execute(
        select(
            Course.id,
            Course.title,
            Course.description,
            Course.tags,
            Course.language,
            Course.creator_id,
        )
        .where(Course.published.is_(True))
        .order_by(Course.id)
    )
    return [
        CourseDoc(
            id=r.id,
            title=r.title,
            description=r.description or "",
            tags=tuple(r.tags or ()),
            language=r.language,
            creator_id=r.creator_id,
        )
        for r in rows
    ]


class CatalogSearch:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_age: float = 60.0):
        self._sessionmaker = sessionmaker
        self._max_age = max_age
        self._index: SearchIndex | None = None
        self._built_at = 0.0
        self._stale = True
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    def invalidate(self) -> None:
        """Call after any catalog change; the next search schedules a rebuild."""
        self._stale = True

    async def _rebuild(self, session: AsyncSession | None = None) -> None:
        async with self._lock:
            self._stale = False
            if session is not None:
                docs = await load_docs(session)
            else:
                async with self._sessionmaker() as own:
                    docs = await load_docs(own)
            # Building is CPU work: keep it off the event loop.
            self._index = await asyncio.to_thread(SearchIndex.build, docs)
            self._built_at = time.monotonic()

    def _is_stale(self) -> bool:
        return self._stale or time.monotonic() - self._built_at > self._max_age

    async def index(self, session: AsyncSession | None = None) -> SearchIndex:
        """The current index. Only the very first build makes the caller wait.

        A handler passes its own session: on SQLite the pool holds one connection, which
        that handler already has, so opening a second one here would wait forever.
        """
        if self._index is None:
            await self._rebuild(session)
        elif self._is_stale() and (self._refresh is None or self._refresh.done()):
            self._stale = False
            self._refresh = asyncio.create_task(self._rebuild())
        assert self._index is not None
        return self._index

    async def search(
        self, query: str, limit: int = 8, session: AsyncSession | None = None
    ) -> list[int]:
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query:
            return []
        index = await self.index(session)
        return [hit.course_id for hit in index.search(query, limit=limit)]

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh
