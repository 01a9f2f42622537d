"""Funnel events from read paths, written in batches.

Browsing must not commit per update (a commit costs milliseconds, see DESIGN.md), so
views and searches are buffered in memory and flushed with one Core INSERT. Events that
are part of a money or access transaction (paid, refunded, joined) are written in that
transaction instead, by their own service, and are never buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.analytics import rollups
from bot.models import Event, utcnow

log = logging.getLogger(__name__)

EVENTS: Table = Event.__table__  # type: ignore[assignment]


class EventBuffer:
    def __init__(self, max_buffer: int = 500) -> None:
        self._rows: list[dict[str, Any]] = []
        self._max = max_buffer
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def record(
        self,
        kind: str,
        *,
        user_id: int | None = None,
        course_id: int | None = None,
        creator_id: int | None = None,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        self._rows.append(
            {
                "kind": kind,
                "user_id": user_id,
                "course_id": course_id,
                "creator_id": creator_id,
                "data": data or {},
                "created_at": at or utcnow(),
            }
        )
        if len(self._rows) >= self._max:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._rows)

    def forget(self, user_id: int) -> None:
        """Drop a learner's events not yet written (their data was just erased)."""
        self._rows = [row for row in self._rows if row["user_id"] != user_id]

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
        rows, self._rows = self._rows, []
        if not rows:
            return 0
        try:
            async with sessionmaker() as session:
                # The table, not the entity: the ORM's bulk insert leaves out a row's
                # None columns and so splits rows of other shapes (a search has no
                # course) into separate statements, one per row when kinds alternate.
                await session.execute(insert(EVENTS), rows)
                # The analytics rollups move in the same transaction: counted once.
                await rollups.events_written(session, rows)
                await session.commit()
        except Exception:
            # Keep them for the next try rather than losing the funnel.
            log.exception("event flush failed; %d events kept for retry", len(rows))
            self._rows[:0] = rows
            return 0
        return len(rows)

    def start(self, sessionmaker: async_sessionmaker[AsyncSession], interval: float = 2.0) -> None:
        async def loop() -> None:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
                self._wake.clear()
                await self.flush(sessionmaker)

        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(loop(), name="event-buffer")

    async def stop(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        if self._task is not None:
            # Not cancelled: a flush cancelled inside its INSERT could not tell whether
            # its rows were written, so the loop finishes the one in flight and ends.
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        await self.flush(sessionmaker)
