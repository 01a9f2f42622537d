"""Pluggable job kinds: a feature registers a handler for its kind; the worker runs it.

A handler gets a JobContext and the claimed Job. Returning None finishes the job;
returning a datetime runs it again then (a ticker, a reminder series). Raising
`errors.Transient` retries it later with backoff; any other exception marks it failed
with a log line. Handlers change the database through ctx.session; the worker commits
after each job, so a job and its effects land together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Job
from bot.scheduler.clock import Clock
from bot.scheduler.render import Renderer
from bot.scheduler.sender import RateLimitedSender


@dataclass
class JobContext:
    session: AsyncSession
    sender: RateLimitedSender
    clock: Clock
    renderer: Renderer
    # For batch handlers: claim up to n more due jobs of a kind (committed, leased, as
    # the worker claims them); [] when the worker is stopping.
    claim: Callable[[str, int], Awaitable[list[Job]]] | None = None


JobHandler = Callable[[JobContext, Job], Awaitable[datetime | None]]
# Many claimed jobs at once (sends kept in flight together): the handler sets each job's
# status and commits as it goes; the worker commits once more after it returns.
BatchHandler = Callable[[JobContext, list[Job]], Awaitable[None]]
BatchTest = Callable[[Job], bool]


class JobRegistry:
    def __init__(self) -> None:
        self._handlers: dict[str, JobHandler] = {}
        self._batch: dict[str, tuple[BatchTest, BatchHandler]] = {}

    def register_batch(self, kind: str, wants: BatchTest, handler: BatchHandler) -> None:
        """Jobs of `kind` for which `wants(job)` holds run together through `handler`."""
        self._batch[kind] = (wants, handler)

    def batch_handler(self, job: Job) -> BatchHandler | None:
        entry = self._batch.get(job.kind)
        return entry[1] if entry is not None and entry[0](job) else None

    def register(self, kind: str, handler: JobHandler) -> None:
        if len(kind) > 32:
            raise ValueError("job kinds are at most 32 characters")
        self._handlers[kind] = handler

    def get(self, kind: str) -> JobHandler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)
