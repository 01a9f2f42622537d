"""The scheduler's worker: claims due deliveries and jobs, sends, records the outcome.

Claiming. Due rows are claimed in batches by one UPDATE that moves them to
`sending`/`running` with a lease (`claimed_until`). On PostgreSQL the candidate rows are
selected FOR UPDATE SKIP LOCKED, so several workers share the work without waiting on
each other; SQLite allows one writer, so there the same statement is an atomic claim and
one worker runs. A worker only sends while its lease holds; what it could not send in
time goes back to the queue. Rows whose lease ran out (a dead worker) are due again.

At most one duplicate per crash. Each message is sent alone (one request in flight per
worker) and its row is marked `sent` in its own commit right after Telegram answers.
Claimed rows not yet sent are harmless: they are claimed again after a restart. The only
message that can be delivered without being recorded is the single one in flight when
the process dies (after Telegram accepted it, before our commit); Telegram has no
idempotency key to ask whether it arrived, so that one is sent again. Losing it instead
would break "nothing due is ever dropped", which matters more than a rare duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import (
    Course,
    Delivery,
    DeliveryStatus,
    Enrollment,
    Job,
    JobStatus,
    Lesson,
    User,
)
from bot.ops import metrics
from bot.scheduler.clock import Clock, SystemClock
from bot.scheduler.errors import ChatNotFound, Rejected, Transient, Unreachable
from bot.scheduler.jobs import BatchHandler, JobContext, JobRegistry
from bot.scheduler.render import PlainRenderer, Renderer
from bot.scheduler.sender import RateLimitedSender
from bot.services import drip
from bot.services.drip import LessonView, Prefs, in_quiet_hours, out_of_quiet_hours

log = logging.getLogger(__name__)


@dataclass
class WorkerConfig:
    batch_size: int = 50
    lease_seconds: float = 60.0
    poll_interval: float = 1.0
    # Network errors that outlast the sender's own retries: wait retry_base * 2^n, capped.
    retry_base: float = 30.0
    retry_max: float = 3600.0


@dataclass
class _Item:
    delivery: Delivery
    lesson: Lesson
    course: Course
    user: User
    enrollment: Enrollment


class Scheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        sender: RateLimitedSender,
        *,
        clock: Clock | None = None,
        renderer: Renderer | None = None,
        registry: JobRegistry | None = None,
        config: WorkerConfig | None = None,
        single_worker: bool | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.sender = sender
        self.clock = clock or SystemClock()
        self.renderer = renderer or PlainRenderer()
        self.registry = registry or JobRegistry()
        self.config = config or WorkerConfig()
        if single_worker is None:
            single_worker = sessionmaker.kw["bind"].dialect.name == "sqlite"
        # On SQLite there is one worker, so whatever is claimed at start-up is ours from
        # before a crash: release it at once instead of waiting for the lease to run out.
        self.single_worker = single_worker
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._lock_fd: int | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="scheduler")
        return self._task

    def wake(self) -> None:
        """Look for due work now rather than at the next poll (say, right after a grant)."""
        self._wake.set()

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in flight, then stop; cancelling mid-send could duplicate it."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        except Exception:
            log.exception("scheduler stopped with an error")
        self._task = None

    def _lock_path(self) -> Path | None:
        url = self.sessionmaker.kw["bind"].url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(f"{url.database}.worker.lock")

    async def acquire_worker_lock(self) -> None:
        """SQLite: one worker per database file, enforced with a file lock.

        recover() takes over every claimed row, which is only right if no other worker is
        alive. A second process (a mistaken double start, or a warm standby) waits here;
        the kernel drops the lock when the holder dies, even on kill -9, so a standby
        takes over within a poll interval.
        """
        path = self._lock_path()
        if path is None or self._lock_fd is not None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def run(self) -> None:
        if self.single_worker:
            await self.acquire_worker_lock()
        try:
            await self._run()
        finally:
            self._release_lock()

    async def _run(self) -> None:
        await self.recover()
        while not self._stopping:
            try:
                done = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler round failed; retrying shortly")
                done = 0
                await self.clock.sleep(self.config.poll_interval)
            if done == 0 and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    async def recover(self) -> None:
        if not self.single_worker:
            return
        now = self.clock.now()
        async with self.sessionmaker() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
                .values(claimed_until=now)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(Job)
                .where(Job.status == JobStatus.RUNNING)
                .values(claimed_until=now)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def run_once(self) -> int:
        """One batch of deliveries and one of jobs. Returns how many rows were handled."""
        metrics.SCHEDULER_LAST_ROUND.set(time.time())
        handled = await self._delivery_round()
        if self._stopping:
            return handled
        return handled + await self._job_round()

    async def drain(self, rounds: int = 100) -> int:
        """Run until nothing is due (tests)."""
        total = 0
        for _ in range(rounds):
            done = await self.run_once()
            total += done
            if done == 0:
                break
        return total

    # --- deliveries -------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        seconds = self.config.retry_base * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(self.config.retry_max, seconds))

    async def _claim_deliveries(self, session: AsyncSession, now: datetime) -> list[int]:
        due = (
            select(Delivery.id)
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .join(User, User.id == Delivery.user_id)
            .where(
                or_(
                    and_(Delivery.status == DeliveryStatus.PENDING, Delivery.due_at <= now),
                    and_(Delivery.status == DeliveryStatus.SENDING, Delivery.claimed_until < now),
                ),
                # Paused courses and learners who blocked the bot wait here, untouched.
                Enrollment.paused_at.is_(None),
                User.is_blocked.is_(False),
            )
            .order_by(Delivery.due_at, Delivery.id)
            .limit(self.config.batch_size)
            .with_for_update(of=Delivery, skip_locked=True)
        )
        lease = now + timedelta(seconds=self.config.lease_seconds)
        result = await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(due.scalar_subquery()))
            .values(
                status=DeliveryStatus.SENDING,
                claimed_until=lease,
                attempts=Delivery.attempts + 1,
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        ids = list(result.scalars())
        await session.commit()
        return ids

    async def _load(self, session: AsyncSession, ids: list[int]) -> list[_Item]:
        rows = await session.execute(
            select(Delivery, Lesson, Course, User, Enrollment)
            .join(Lesson, Lesson.id == Delivery.lesson_id)
            .join(Course, Course.id == Lesson.course_id)
            .join(User, User.id == Delivery.user_id)
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .where(Delivery.id.in_(ids))
            .order_by(Delivery.due_at, Delivery.id)
        )
        return [_Item(*row) for row in rows]

    async def _numbers(
        self, session: AsyncSession, course_ids: set[int]
    ) -> tuple[dict[int, int], dict[int, int]]:
        rows = await session.execute(
            select(Lesson.course_id, Lesson.id)
            .where(Lesson.course_id.in_(course_ids))
            .order_by(Lesson.course_id, Lesson.position, Lesson.id)
        )
        number: dict[int, int] = {}
        total: dict[int, int] = {}
        for course_id, lesson_id in rows:
            total[course_id] = total.get(course_id, 0) + 1
            number[lesson_id] = total[course_id]
        return number, total

    async def _delivery_round(self) -> int:
        async with self.sessionmaker() as session:
            now = self.clock.now()
            ids = await self._claim_deliveries(session, now)
            if not ids:
                return 0
            metrics.SCHEDULER_CLAIMED.labels("deliveries").inc(len(ids))
            lease_end = self.clock.monotonic() + self.config.lease_seconds * 0.8
            items = await self._load(session, ids)
            number, total = await self._numbers(session, {i.course.id for i in items})
            queue = deque(items)
            handled = 0
            while queue:
                if self._stopping or self.clock.monotonic() > lease_end:
                    await self._release(session, [i.delivery.id for i in queue])
                    break
                item = queue.popleft()
                # The chat must wait (spacing per chat) while others need not: send those first.
                # A chat's own lessons keep their order, as all of them are deferred together.
                if (
                    queue
                    and self.sender.chat_wait(item.user.id) > 0
                    and any(self.sender.chat_wait(q.user.id) == 0 for q in queue)
                ):
                    queue.append(item)
                    continue
                try:
                    await self._deliver(session, item, number, total)
                except Exception:
                    log.exception("delivery %s failed unexpectedly", item.delivery.id)
                    await session.rollback()
                    await self._fail(session, item.delivery.id)
                    await self._release(session, [i.delivery.id for i in queue])
                    return handled + 1
                handled += 1
            return handled

    async def _release(self, session: AsyncSession, ids: list[int]) -> None:
        if not ids:
            return
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        await session.commit()

    async def _fail(self, session: AsyncSession, delivery_id: int) -> None:
        metrics.SCHEDULER_FAILED.labels("deliveries").inc()
        await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status=DeliveryStatus.FAILED, claimed_until=None, last_error="internal error")
            .execution_options(synchronize_session=False)
        )
        await session.commit()

    async def _deliver(
        self, session: AsyncSession, item: _Item, number: dict[int, int], total: dict[int, int]
    ) -> None:
        d, user = item.delivery, item.user
        now = self.clock.now()
        prefs = Prefs.of(user)
        if not await drip.entitled(session, item.enrollment, now):
            # Access follows money, checked at the last moment: a refund revokes what was
            # planned, but an expiry only passes, and a refund may commit after the claim.
            # The rest of the course stops with it; only a new grant plans it again.
            log.info("delivery %s revoked: user %s has no access to it now", d.id, user.id)
            drip.revoke_delivery(d)
            d.attempts = max(0, d.attempts - 1)
            await drip.stop(session, item.enrollment)
        elif user.is_blocked or item.enrollment.paused_at is not None:
            self._put_back(d, d.due_at)
        elif in_quiet_hours(now, prefs):
            self._put_back(d, out_of_quiet_hours(now, prefs))
        else:
            await self._send(session, item, number, total)
        await session.commit()

    def _put_back(self, d: Delivery, due_at: datetime) -> None:
        d.status = DeliveryStatus.PENDING
        d.claimed_until = None
        d.due_at = due_at
        d.attempts = max(0, d.attempts - 1)  # not a try: nothing was sent

    async def _send(
        self, session: AsyncSession, item: _Item, number: dict[int, int], total: dict[int, int]
    ) -> None:
        d, lesson, user = item.delivery, item.lesson, item.user
        view = LessonView.of(
            lesson,
            item.course,
            number=number.get(lesson.id, lesson.position),
            total=total.get(item.course.id, 1),
            delivery_id=d.id,
            learner=user,
        )
        try:
            message_id = await self.sender.send(user.id, self.renderer.lesson(view))
        except Unreachable as exc:
            # 403: they blocked the bot. Keep the lesson; it waits until they come back
            # (upsert_user clears is_blocked on their next message).
            log.info("user %s blocked the bot; their deliveries pause", user.id)
            user.is_blocked = True
            user.blocked_at = self.clock.now()
            self._put_back(d, d.due_at)
            d.last_error = f"blocked: {exc}"[:500]
        except ChatNotFound as exc:
            log.warning("delivery %s skipped: chat %s not found (%s)", d.id, user.id, exc)
            metrics.SCHEDULER_FAILED.labels("deliveries").inc()
            d.status = DeliveryStatus.SKIPPED
            d.claimed_until = None
            d.last_error = f"chat not found: {exc}"[:500]
        except Rejected as exc:
            log.error("delivery %s rejected by Telegram: %s", d.id, exc)
            metrics.SCHEDULER_FAILED.labels("deliveries").inc()
            d.status = DeliveryStatus.FAILED
            d.claimed_until = None
            d.last_error = str(exc)[:500]
        except Transient as exc:
            retry_at = self.clock.now() + self._backoff(d.attempts)
            log.warning("delivery %s: network trouble (%s); retry at %s", d.id, exc, retry_at)
            d.status = DeliveryStatus.PENDING
            d.claimed_until = None
            d.due_at = retry_at
            d.last_error = str(exc)[:500]
        else:
            metrics.SCHEDULER_SENT.labels("deliveries").inc()
            d.status = DeliveryStatus.SENT
            d.sent_at = self.clock.now()
            d.message_id = message_id
            d.claimed_until = None
            d.last_error = None

    # --- jobs -------------------------------------------------------------------------

    async def _claim_jobs(self, session: AsyncSession, now: datetime) -> list[int]:
        """Jobs whose lease ran out (a dead worker's) first, then due pending ones in
        (run_at, id) order: two claims that each follow the (status, run_at, id) index
        and stop at the batch, rather than one OR that sorted the whole table. Each is
        one UPDATE (atomic on SQLite too, where a read then a write could be refused)."""
        kinds = self.registry.kinds()
        if not kinds:
            return []
        batch = self.config.batch_size
        lapsed = Job.status == JobStatus.RUNNING, Job.claimed_until < now
        claimed = await self._claim_jobs_where(session, now, kinds, lapsed, batch)
        if len(claimed) < batch:
            due = Job.status == JobStatus.PENDING, Job.run_at <= now
            claimed += await self._claim_jobs_where(session, now, kinds, due, batch - len(claimed))
        await session.commit()
        return claimed

    async def _claim_jobs_where(
        self,
        session: AsyncSession,
        now: datetime,
        kinds: list[str],
        which: tuple[ColumnElement[bool], ...],
        limit: int,
    ) -> list[int]:
        pick = (
            select(Job.id)
            .where(Job.kind.in_(kinds), *which)
            .order_by(Job.run_at, Job.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        lease = now + timedelta(seconds=self.config.lease_seconds)
        result = await session.execute(
            update(Job)
            .where(Job.id.in_(pick.scalar_subquery()))
            .values(
                status=JobStatus.RUNNING,
                claimed_until=lease,
                attempts=Job.attempts + 1,
                updated_at=now,
            )
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    async def _job_round(self) -> int:
        async with self.sessionmaker() as session:
            ids = await self._claim_jobs(session, self.clock.now())
            if not ids:
                return 0
            metrics.SCHEDULER_CLAIMED.labels("jobs").inc(len(ids))
            lease_end = self.clock.monotonic() + self.config.lease_seconds * 0.8
            batched = await self._batch_jobs(session, ids)
            handled = len(batched)
            ids = [i for i in ids if i not in batched]
            for position, job_id in enumerate(ids):
                if self._stopping or self.clock.monotonic() > lease_end:
                    await session.execute(
                        update(Job)
                        .where(Job.id.in_(ids[position:]), Job.status == JobStatus.RUNNING)
                        .values(status=JobStatus.PENDING, claimed_until=None)
                        .execution_options(synchronize_session=False)
                    )
                    await session.commit()
                    break
                await self._run_job(session, job_id)
                handled += 1
            return handled

    async def _batch_jobs(self, session: AsyncSession, ids: list[int]) -> set[int]:
        """Claimed jobs whose kind runs in batches (a paid broadcast's messages, many in
        flight): run them together; returns their ids, which the per-job loop skips.
        If the batch fails, what it did not record stays claimed until its lease runs
        out, as after a crash: never sent again at once through the one-by-one path."""
        jobs = list(
            await session.scalars(
                select(Job)
                .where(Job.id.in_(ids), Job.status == JobStatus.RUNNING)
                .order_by(Job.id)
                .execution_options(populate_existing=True)
            )
        )
        groups: dict[BatchHandler, list[Job]] = {}
        for job in jobs:
            wants = self.registry.batch_handler(job)
            if wants is not None:
                groups.setdefault(wants, []).append(job)
        taken: set[int] = set()
        for handler, batch in groups.items():
            taken.update(job.id for job in batch)
            ctx = JobContext(
                session,
                self.sender,
                self.clock,
                self.renderer,
                claim=lambda kind, n: self._claim_more(session, kind, n),
            )
            try:
                await handler(ctx, batch)
            except Exception:
                # What it recorded is committed; the rest stay claimed and come back
                # when their lease runs out (at most those in flight are sent twice).
                log.exception("batch of %d %s jobs failed", len(batch), batch[0].kind)
                await session.rollback()
            await session.commit()
        return taken

    async def _claim_more(self, session: AsyncSession, kind: str, limit: int) -> list[Job]:
        """More due jobs of `kind` for a batch handler that keeps its sends flowing."""
        if self._stopping:
            return []
        now = self.clock.now()
        due = Job.status == JobStatus.PENDING, Job.run_at <= now
        ids = await self._claim_jobs_where(session, now, [kind], due, limit)
        await session.commit()
        if not ids:
            return []
        metrics.SCHEDULER_CLAIMED.labels("jobs").inc(len(ids))
        return list(
            await session.scalars(
                select(Job)
                .where(Job.id.in_(ids))
                .order_by(Job.run_at, Job.id)
                .execution_options(populate_existing=True)
            )
        )

    async def _run_job(self, session: AsyncSession, job_id: int) -> None:
        job = await session.get(Job, job_id)
        if job is None or job.status != JobStatus.RUNNING:
            return
        handler = self.registry.get(job.kind)
        ctx = JobContext(session, self.sender, self.clock, self.renderer)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            again = await handler(ctx, job)
        except Transient as exc:
            await session.rollback()
            job = await session.get(Job, job_id)
            if job is None:
                return
            job.status = JobStatus.PENDING
            job.run_at = self.clock.now() + self._backoff(job.attempts)
            job.last_error = str(exc)[:500]
        except Exception as exc:
            log.exception("job %s (%s) failed", job_id, job.kind)
            await session.rollback()
            job = await session.get(Job, job_id)
            if job is None:
                return
            job.status = JobStatus.FAILED
            job.last_error = repr(exc)[:500]
            metrics.SCHEDULER_FAILED.labels("jobs").inc()
        else:
            metrics.SCHEDULER_SENT.labels("jobs").inc()
            if again is None:
                job.status = JobStatus.DONE
            else:
                job.status = JobStatus.PENDING
                job.run_at = again
        job.claimed_until = None
        await session.commit()
