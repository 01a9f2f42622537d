"""Time for the scheduler, injectable so tests (and the sender's unit tests) can move it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


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
