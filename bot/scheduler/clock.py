"""Time for the scheduler, injectable so tests (and the sender's unit tests) can move it."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC wall time: due dates, leases, quiet hours."""
        ...

    def monotonic(self) -> float:
        """Seconds on a steady clock: rate limiting."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class OffsetFileClock:
    """The system clock plus an offset in seconds read from a file (CLOCK_OFFSET_FILE).

    For tests and demos only: they move a *running* bot's time by writing to the file
    ("+86400" is a day later, "-3600" an hour earlier, "0" or no file is none; write a
    temporary file and rename it over, so a reading never sees half a write). The file
    is read on every reading, so the scheduler's next poll sees the new time; at a few
    readings per message that costs microseconds. Only the wall clock moves: the steady
    clock (rate limiting, leases) and sleeping stay real, so a jump of a day does not let
    the sender burst or make the worker think its claims expired.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0.0
        self._bad: str | None = None

    def offset(self) -> float:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0.0
        except OSError as exc:
            self._warn(f"unreadable ({exc})")
            return self._offset
        if not text:
            return self._offset  # caught between truncate and write: keep the last value
        try:
            self._offset = float(text)
        except ValueError:
            self._warn(f"holds {text[:40]!r}, not seconds")
        return self._offset

    def _warn(self, problem: str) -> None:
        if problem != self._bad:  # once per problem, not on every reading
            self._bad = problem
            log.warning("clock file %s %s; keeping %+.0f s", self.path, problem, self._offset)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset())

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to; sleeping advances it instead of waiting.

    Both readings move together, so a test can jump a week ahead and see lessons fall due,
    or check the sender's spacing to the microsecond without real waiting.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
        self._mono = 1000.0
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        step = seconds + timedelta(**delta).total_seconds()
        self._now += timedelta(seconds=step)
        self._mono += step

    def set(self, when: datetime) -> None:
        self.advance((when - self._now).total_seconds())

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.advance(seconds)
        await asyncio.sleep(0)
