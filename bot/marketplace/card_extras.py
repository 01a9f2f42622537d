"""What a course card shows besides the course itself (its review summary, the bundles
it is in, its FAQ count, its running challenges), held in memory for every course at
once, the way the catalog snapshot holds the cards (bot.services.search).

Showing a card asks the database nothing in the steady state: the extras are read whole
(five queries), the first time by the card that needs them and afterwards off the
request, in a background task that swaps the fresh set in when it is read.

Fresh as the catalog snapshot is: a commit of this process that changes a review or a
vote, a question, a challenge (each counted per course by `bot.services.changes`) or a
bundle (counted as a change to every course) is seen by the next card, which reads that
part of that course from the database, and keeps it until the next change; other
processes' commits (several webhook workers) show within `max_age`, when the whole set
is read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.marketplace import bundles, reviews
from bot.services import challenges, qa
from bot.services.changes import Tracker

log = logging.getLogger(__name__)

# Parts read again for one course after a change: bounded, cleared with every fresh set.
MAX_FRESH = 20_000


@dataclass(frozen=True, slots=True)
class Extras:
    reviews: reviews.Summary
    bundles: tuple[bundles.Shown, ...]
    faq: int
    # Shown to the course's owners only: empty for everyone else.
    challenges: list[challenges.Running]


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    tracker: Tracker
    every: Callable[[AsyncSession, datetime], Awaitable[dict[int, Any]]]
    one: Callable[[AsyncSession, int, datetime], Awaitable[Any]]
    empty: Any


def _parts() -> tuple[_Part, ...]:
    return (
        _Part(
            "reviews",
            reviews.REVIEWS,
            lambda s, _now: reviews.all_summaries(s),
            lambda s, c, _now: reviews.load_summary(s, c),
            reviews.EMPTY,
        ),
        _Part(
            "bundles",
            bundles.BUNDLES,
            lambda s, _now: bundles.including_all(s),
            lambda s, c, _now: bundles.including(s, c),
            (),
        ),
        _Part(
            "faq",
            qa.QUESTIONS,
            lambda s, _now: qa.faq_counts(s),
            lambda s, c, _now: qa.faq_count(s, c),
            0,
        ),
        _Part(
            "challenges",
            challenges.CHALLENGES,
            challenges.running_by_course,
            challenges.running_on_course,
            (),
        ),
    )


PARTS = _parts()


@dataclass(frozen=True, slots=True)
class _Loaded:
    # Each part's tracker version, noted before reading: a commit during the read is newer.
    versions: dict[str, int]
    values: dict[str, dict[int, Any]]
    at: float


async def _load(session: AsyncSession, now: datetime) -> _Loaded:
    versions = {part.name: part.tracker.version for part in PARTS}
    values = {part.name: await part.every(session, now) for part in PARTS}
    return _Loaded(versions, values, time.monotonic())


class CardExtras:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], max_age: float = 60.0
    ) -> None:
        self._sessionmaker = sessionmaker
        self.max_age = max_age
        self._loaded: _Loaded | None = None
        self._refresh: asyncio.Task[None] | None = None
        # (part, course id) -> (tracker version when read, value): read after a change.
        self._fresh: dict[tuple[str, int], tuple[int, Any]] = {}

    async def get(
        self, session: AsyncSession, course_id: int, now: datetime, *, owned: bool
    ) -> Extras:
        loaded = await self._current(session, now)
        values = {}
        for part in PARTS:
            if part.name == "challenges" and not owned:
                # Owners only: most card views are not theirs, and those ask nothing more.
                values[part.name] = part.empty
                continue
            values[part.name] = await self._value(session, loaded, part, course_id, now)
        return Extras(
            reviews=values["reviews"],
            bundles=values["bundles"],
            faq=values["faq"],
            challenges=challenges.on_card(values["challenges"], now),
        )

    async def _current(self, session: AsyncSession, now: datetime) -> _Loaded:
        if self._loaded is None:
            # Only the very first card waits; it reads with its own connection.
            self._swap(await _load(session, now))
        elif self._is_stale(self._loaded) and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._reload(now))
        assert self._loaded is not None
        return self._loaded

    def _is_stale(self, loaded: _Loaded) -> bool:
        if time.monotonic() - loaded.at > self.max_age:
            return True
        # A change to every course (bundles, bulk statements): read the whole set again.
        return any(part.tracker.changed_all_since(loaded.versions[part.name]) for part in PARTS)

    async def _reload(self, now: datetime) -> None:
        try:
            async with self._sessionmaker() as session:
                self._swap(await _load(session, now))
        except Exception:
            # The set in hand keeps answering; the next card tries again.
            log.exception("reading the card extras failed")

    def _swap(self, loaded: _Loaded) -> None:
        self._loaded = loaded
        self._fresh.clear()

    async def _value(
        self, session: AsyncSession, loaded: _Loaded, part: _Part, course_id: int, now: datetime
    ) -> Any:
        if not part.tracker.changed_since(loaded.versions[part.name], course_id):
            return loaded.values[part.name].get(course_id, part.empty)
        # Changed here since the set was read: this course's part from the database.
        key = (part.name, course_id)
        hit = self._fresh.get(key)
        if hit is not None and not part.tracker.changed_since(hit[0], course_id):
            return hit[1]
        version = part.tracker.version
        value = await part.one(session, course_id, now)
        if len(self._fresh) >= MAX_FRESH:
            self._fresh.clear()
        self._fresh[key] = (version, value)
        return value

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresh


_holders: weakref.WeakKeyDictionary[object, CardExtras] = weakref.WeakKeyDictionary()


def card_extras(owner: Any) -> CardExtras:
    """The extras that belong with one catalog (`CatalogSearch`; one per process, tests
    build several), reading with its sessionmaker."""
    holder = _holders.get(owner)
    if holder is None:
        holder = _holders[owner] = CardExtras(owner.sessionmaker)
    return holder
