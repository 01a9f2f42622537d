"""A creator's message to every learner of a course, or to a segment of their audience
(bot.growth.segments), through the same rate-limited sender.

`queue_broadcast` (a course's learners, text) and `queue_to` (a list of recipients fixed
at confirmation, any content: text, or a photo/video/document file_id and caption) store
one parent job. When the worker runs it, it fans out into one
child job per learner (dedupe key `bc<parent>:<user>`, in the same commit, so a crash
cannot fan out twice), then wakes every few seconds to edit the creator's status message
with progress and an ETA until every child has run.

Stop. While it runs, the status message carries a Stop button for the creator who
started it. `stop` cancels, in one transaction, every message not yet sent (status
`cancelled`: the worker never claims those again) and marks the parent stopped; a
message the worker holds at that instant is either skipped (the worker re-reads its
row before running it) or already in flight, and is then counted as sent: nothing is
ever sent twice. The parent's next run edits the status to "stopped" with the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Entitlement, Job, JobStatus, ProductKind, User
from bot.ops import metrics
from bot.scheduler.errors import ChatNotFound, Rejected, SendError, Transient, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing
from bot.services import access

log = logging.getLogger(__name__)

BROADCAST = "broadcast"
BROADCAST_MESSAGE = "broadcast.msg"
PROGRESS_EVERY = timedelta(seconds=5)
# callback_data of the Stop button: f"{STOP_PREFIX}:{job id}" (bot.keyboards.growth.StopCB).
STOP_PREFIX = "bcx"


@dataclass(frozen=True, slots=True)
class BroadcastPlan:
    job_id: int
    total: int
    eta_seconds: float


# Telegram: allow_paid_broadcast costs "0.1 Telegram Stars per message" above the free rate.
PAID_TENTHS_PER_MESSAGE = 1


@dataclass(frozen=True, slots=True)
class PaidEstimate:
    seconds: float  # at the paid cap
    billed: int  # messages above the free rate

    @property
    def stars_tenths(self) -> int:
        return self.billed * PAID_TENTHS_PER_MESSAGE


def paid_estimate(total: int, free_rate: float, paid_rate: float) -> PaidEstimate:
    """Time and cost of a paid broadcast: the free rate carries what it can over the time
    the paid cap needs (those are not billed); every other message costs 0.1 Star."""
    seconds = eta(total, paid_rate + free_rate)
    return PaidEstimate(seconds, max(0, total - int(free_rate * seconds)))


# A message job's last_error when its learner lost access after the fan-out.
ACCESS_REVOKED = "access revoked"
# Telegram's answer to a paid message the bot's Stars balance cannot pay for.
BALANCE_TOO_LOW = "BALANCE_TOO_LOW"


def register(registry: JobRegistry) -> None:
    registry.register(BROADCAST, run_broadcast)
    registry.register(BROADCAST_MESSAGE, send_one)
    registry.register_batch(BROADCAST_MESSAGE, _is_paid, send_paid_batch)


def _is_paid(job: Job) -> bool:
    return bool(job.payload.get("paid"))


# A paid broadcast keeps this many sends in flight (1000/s at ~20-100 ms a call) and
# records their outcomes every FLUSH_EVERY results in one commit.
IN_FLIGHT = 200
FLUSH_EVERY = 200
# ... and checks the learners' access CHECK_EVERY messages at a time, in one query.
CHECK_EVERY = 200
# It claims REFILL more messages whenever fewer than CHECK_EVERY are left to start, for
# up to STREAM_SECONDS: the sends keep flowing instead of draining at the end of each
# claimed batch (SCHEDULER_BATCH may be 50), and the worker then gets back to its other
# due work (a drip lesson waits at most about that long for a busy worker).
REFILL = 500
STREAM_SECONDS = 5.0


def _learners(course_id: int, now: datetime):  # type: ignore[no-untyped-def]
    return (
        select(Entitlement.user_id)
        .join(User, User.id == Entitlement.user_id)
        .where(
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.product_id == course_id,
            Entitlement.revoked_at.is_(None),
            or_(Entitlement.expires_at.is_(None), Entitlement.expires_at > now),
            User.is_blocked.is_(False),
        )
        .order_by(Entitlement.user_id)
    )


async def count_learners(session: AsyncSession, course_id: int, now: datetime) -> int:
    sub = _learners(course_id, now).subquery()
    return int(await session.scalar(select(func.count()).select_from(sub)) or 0)


async def queue_broadcast(
    session: AsyncSession,
    *,
    course_id: int,
    text: str,
    creator_chat_id: int,
    locale: str,
    protect_content: bool,
    per_second: float,
    now: datetime,
) -> BroadcastPlan:
    total = await count_learners(session, course_id, now)
    job = Job(
        kind=BROADCAST,
        payload={
            "course_id": course_id,
            "text": text,
            "chat_id": creator_chat_id,
            "locale": locale,
            "protect": protect_content,
            "total": total,
        },
        run_at=now,
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    return BroadcastPlan(job.id, total, eta(total, per_second))


def dump_message(message: Outgoing) -> dict[str, Any]:
    return {
        "kind": message.kind,
        "text": message.text,
        "file_id": message.file_id,
        "caption": message.caption,
    }


def load_message(data: dict[str, Any], protect: bool, paid: bool = False) -> Outgoing:
    return Outgoing(
        kind=str(data.get("kind") or "text"),
        text=data.get("text"),
        file_id=data.get("file_id"),
        caption=data.get("caption"),
        protect_content=protect,
        paid_broadcast=paid,
    )


async def queue_to(
    session: AsyncSession,
    *,
    recipients: list[int],
    message: Outgoing,
    access_check: dict[str, Any] | None,
    creator_chat_id: int,
    locale: str,
    protect_content: bool,
    per_second: float,
    now: datetime,
    creator_user_id: int | None = None,
    paid: bool = False,
) -> BroadcastPlan:
    """Queue `message` for `recipients` (a segment, counted at confirmation). Each
    message re-checks `access_check` ({"kind", "ids"}: any of them) when it is sent."""
    job = Job(
        kind=BROADCAST,
        payload={
            "users": recipients,
            "msg": dump_message(message),
            "access": access_check,
            "chat_id": creator_chat_id,
            "by": creator_user_id if creator_user_id is not None else creator_chat_id,
            "locale": locale,
            "protect": protect_content,
            "total": len(recipients),
            "paid": paid,
        },
        run_at=now,
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    return BroadcastPlan(job.id, len(recipients), eta(len(recipients), per_second))


def eta(remaining: int, per_second: float) -> float:
    return math.ceil(remaining / per_second) if per_second > 0 else 0.0


def attach_status_message(job: Job, message_id: int) -> None:
    job.payload = {**job.payload, "status_message_id": message_id}


@dataclass(frozen=True, slots=True)
class BroadcastProgress:
    total: int
    sent: int
    failed: int  # blocked the bot, gone, or refused by Telegram
    left: int = 0  # refunded or expired since the fan-out: skipped, not failed
    cancelled: int = 0  # not sent because the creator pressed Stop
    stopped: bool = False
    paid: bool = False
    stars_tenths: int = 0  # what the paid messages sent so far cost
    no_stars: int = 0  # of `failed`: refused because the bot's Stars balance ran out

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.left - self.cancelled)


def _children(job_id: int) -> Any:
    return and_(Job.kind == BROADCAST_MESSAGE, Job.dedupe_key.like(f"bc{job_id}:%"))


async def broadcast_progress(session: AsyncSession, job: Job) -> BroadcastProgress:
    finished = (Job.status == JobStatus.DONE) | (Job.status == JobStatus.FAILED)
    skipped = Job.last_error == ACCESS_REVOKED
    row = (
        await session.execute(
            select(
                func.count(Job.id).filter(and_(finished, Job.last_error.is_(None))),
                func.count(Job.id).filter(and_(finished, Job.last_error.is_not(None), ~skipped)),
                func.count(Job.id).filter(and_(finished, skipped)),
                func.count(Job.id).filter(Job.status == JobStatus.CANCELLED),
                func.coalesce(func.sum(Job.stars_tenths), 0),
                func.count(Job.id).filter(Job.last_error.like(f"%{BALANCE_TOO_LOW}%")),
            ).where(_children(job.id))
        )
    ).one()
    total = int(job.payload.get("total", 0))
    # Stopped before the fan-out: no message rows, every recipient cancelled.
    unfanned = int(job.payload.get("cancelled", 0))
    return BroadcastProgress(
        total,
        int(row[0]),
        int(row[1]),
        int(row[2]),
        int(row[3]) + unfanned,
        bool(job.payload.get("stopped")),
        bool(job.payload.get("paid")),
        int(row[4] or 0),
        int(row[5]),
    )


def stop_buttons(job_id: int, label: str) -> tuple[tuple[Button, ...], ...]:
    return ((Button(label, f"{STOP_PREFIX}:{job_id}"),),)


class StopOutcome(StrEnum):
    STOPPED = "stopped"
    NOT_YOURS = "not_yours"  # another creator's broadcast (or a forged id)
    OVER = "over"  # finished, stopped already, or no such broadcast


@dataclass(frozen=True, slots=True)
class StopResult:
    outcome: StopOutcome
    progress: BroadcastProgress | None = None
    status_message_id: int | None = None


async def _locked_parent(session: AsyncSession, job_id: int) -> Job | None:
    # FOR UPDATE: a stop and the worker's fan-out of the same broadcast take turns
    # (PostgreSQL; SQLite has one writer anyway). populate_existing: read it fresh.
    return await session.scalar(
        select(Job)
        .where(Job.id == job_id, Job.kind == BROADCAST)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _cancel_unsent(session: AsyncSession, job_id: int, now: datetime) -> None:
    await session.execute(
        update(Job)
        .where(_children(job_id), Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING)))
        .values(status=JobStatus.CANCELLED, claimed_until=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def stop(session: AsyncSession, job_id: int, user_id: int, now: datetime) -> StopResult:
    """The creator's Stop: only theirs, only while it runs. Changes nothing otherwise."""
    job = await _locked_parent(session, job_id)
    if job is None:
        return StopResult(StopOutcome.OVER)
    payload = dict(job.payload)
    if int(payload.get("by", payload.get("chat_id", 0)) or 0) != user_id:
        return StopResult(StopOutcome.NOT_YOURS)
    if payload.get("stopped") or job.status in (JobStatus.DONE, JobStatus.FAILED):
        return StopResult(StopOutcome.OVER)
    payload["stopped"] = True
    if not payload.get("fanned"):
        # Nobody was queued yet: every recipient is cancelled, none will be.
        users = payload.pop("users", None)
        payload.update(fanned=True, cancelled=int(payload.get("total", len(users or ()))))
    job.payload = payload
    await _cancel_unsent(session, job.id, now)
    if job.status == JobStatus.PENDING:
        job.run_at = now  # its next run writes the final counts: now, not in 5 s
    await session.flush()
    message_id = payload.get("status_message_id")
    return StopResult(
        StopOutcome.STOPPED,
        await broadcast_progress(session, job),
        int(message_id) if message_id else None,
    )


async def run_broadcast(ctx: JobContext, job: Job) -> datetime | None:
    now = ctx.clock.now()
    job = await _locked_parent(ctx.session, job.id) or job  # a Stop since the claim
    payload = dict(job.payload)
    if not payload.get("fanned"):
        await _fan_out(ctx, job, payload, now)
        return now + timedelta(seconds=1)
    if payload.get("stopped"):
        # A message row the Stop could not see yet (a fan-out committing meanwhile).
        await _cancel_unsent(ctx.session, job.id, now)
    progress = await broadcast_progress(ctx.session, job)
    finished = progress.remaining == 0
    if progress.paid:
        # The broadcast's own row keeps what it cost (the sum of its messages' charges).
        payload["cost_tenths"] = progress.stars_tenths
        job.payload = payload
    message_id = payload.get("status_message_id")
    if message_id:
        locale = payload.get("locale", "en")
        text = ctx.renderer.broadcast_progress(
            locale,
            progress.sent,
            progress.failed,
            progress.total,
            eta(
                progress.remaining,
                ctx.sender.paid_per_second if progress.paid else ctx.sender.per_second,
            ),
            finished,
            left=progress.left,
            cancelled=progress.cancelled,
            stopped=progress.stopped,
            cost_tenths=progress.stars_tenths if progress.paid else None,
            no_stars=progress.no_stars,
        )
        # The Stop button stays while there is something left to stop.
        buttons = (
            ()
            if finished or progress.stopped
            else stop_buttons(job.id, ctx.renderer.broadcast_stop_label(locale))
        )
        # Progress is a courtesy: if the edit fails, the broadcast goes on.
        with contextlib.suppress(SendError):
            await ctx.sender.edit_text(payload["chat_id"], int(message_id), text, buttons)
    return None if finished else now + PROGRESS_EVERY


async def _fan_out(ctx: JobContext, job: Job, payload: dict[str, Any], now: datetime) -> None:
    if "users" in payload:
        learners = [int(u) for u in payload.pop("users")]
        child = {
            "msg": payload.get("msg"),
            "access": payload.get("access"),
            "protect": payload.get("protect", False),
            "paid": bool(payload.get("paid")),
        }
    else:
        learners = list(await ctx.session.scalars(_learners(payload["course_id"], now)))
        child = {
            "course_id": payload["course_id"],
            "text": payload["text"],
            "protect": payload.get("protect", False),
        }
    if learners:
        await ctx.session.execute(
            insert(Job),
            [
                {
                    "kind": BROADCAST_MESSAGE,
                    "dedupe_key": f"bc{job.id}:{user_id}",
                    "payload": {"chat_id": user_id, **child},
                    "run_at": now,
                    "status": JobStatus.PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for user_id in learners
            ],
        )
    payload.update(fanned=True, total=len(learners))
    job.payload = payload


async def _any_access(ctx: JobContext, chat_id: int, check: dict[str, Any]) -> bool:
    """One learner's access (the one-by-one path): the rule `_allowed` applies to many."""
    key = _access_key(check)
    if key is None:
        return True
    holders = await access.holders(ctx.session, [chat_id], *key, ctx.clock.now())
    return chat_id in holders


async def send_one(ctx: JobContext, job: Job) -> datetime | None:
    payload = job.payload
    chat_id = int(payload["chat_id"])
    course_id = payload.get("course_id")  # absent in jobs queued before it was recorded
    check = payload.get("access")
    if course_id is not None:
        check = {"kind": ProductKind.COURSE, "ids": [course_id]}
    if check and not await _any_access(ctx, chat_id, check):
        # Access follows money: refunded or expired since the fan-out, so not a learner now.
        job.last_error = ACCESS_REVOKED
        return None
    protect = bool(payload.get("protect"))
    paid = bool(payload.get("paid"))
    if payload.get("msg"):
        message = load_message(payload["msg"], protect, paid)
    else:
        message = Outgoing(text=payload["text"], protect_content=protect)
    try:
        if paid:
            _, billed = await ctx.sender.send_paid(chat_id, message)
            job.stars_tenths = PAID_TENTHS_PER_MESSAGE if billed else 0
        else:
            await ctx.sender.send(chat_id, message)
    except Unreachable as exc:
        user = await ctx.session.get(User, chat_id)
        if user is not None:
            user.is_blocked = True
            user.blocked_at = ctx.clock.now()
        job.last_error = f"blocked: {exc}"[:500]
    except (ChatNotFound, Rejected) as exc:
        job.last_error = str(exc)[:500]
    return None


# --- paid broadcasts: many sends in flight ----------------------------------------------


@dataclass(slots=True)
class _Outcome:
    job: Job
    error: str | None = None  # None: sent
    billed: bool = False
    blocked: bool = False
    retry: bool = False  # network trouble that outlasted the sender's retries


async def _send_paid(
    ctx: JobContext, job: Job, message: Outgoing, sem: asyncio.Semaphore, free: bool
) -> _Outcome:
    chat_id = int(job.payload["chat_id"])
    try:
        _, billed = await ctx.sender.send_paid(chat_id, message, free=free)
        return _Outcome(job, billed=billed)
    except Unreachable as exc:
        return _Outcome(job, f"blocked: {exc}"[:500], blocked=True)
    except (ChatNotFound, Rejected) as exc:
        return _Outcome(job, str(exc)[:500])
    except Transient as exc:
        return _Outcome(job, str(exc)[:500], retry=True)
    finally:
        sem.release()


_JOBS = cast(Table, Job.__table__)
# Outcomes are written with plain executemany statements, not the ORM's unit of work:
# at ~1000 messages a second per bot the per-object bookkeeping was a large share of a
# worker's CPU. The claimed Job objects are only read after this.
_MARK_DONE = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("j_id"))
    .values(
        status=JobStatus.DONE,
        claimed_until=None,
        last_error=bindparam("j_error"),
        stars_tenths=bindparam("j_stars"),
    )
)
_MARK_RETRY = (
    update(_JOBS)
    .where(_JOBS.c.id == bindparam("j_id"))
    .values(
        status=JobStatus.PENDING,
        claimed_until=None,
        last_error=bindparam("j_error"),
        run_at=bindparam("j_run_at"),
    )
)


async def _record(ctx: JobContext, outcomes: list[_Outcome]) -> None:
    """One commit for many outcomes: the rows were claimed (running) before their sends."""
    now = ctx.clock.now()
    done: list[dict[str, Any]] = []
    retry: list[dict[str, Any]] = []
    blocked: list[int] = []
    for o in outcomes:
        if o.retry:
            wait = min(3600, 30 * 2 ** max(0, o.job.attempts - 1))
            retry.append(
                {"j_id": o.job.id, "j_error": o.error, "j_run_at": now + timedelta(seconds=wait)}
            )
            continue
        stars = PAID_TENTHS_PER_MESSAGE if o.billed else 0
        done.append({"j_id": o.job.id, "j_error": o.error, "j_stars": stars})
        if o.blocked:
            blocked.append(int(o.job.payload["chat_id"]))
    if done:
        await ctx.session.execute(_MARK_DONE, done)
    if retry:
        await ctx.session.execute(_MARK_RETRY, retry)
    if blocked:
        await ctx.session.execute(
            update(User)
            .where(User.id.in_(blocked))
            .values(is_blocked=True, blocked_at=now)
            .execution_options(synchronize_session=False)
        )
    await ctx.session.commit()
    metrics.SCHEDULER_SENT.labels("jobs").inc(len(done))


def _access_key(check: dict[str, Any] | None) -> tuple[str, tuple[int, ...]] | None:
    if not check:
        return None
    return str(check["kind"]), tuple(int(i) for i in check.get("ids") or ())


async def _allowed(ctx: JobContext, jobs: list[Job]) -> set[int]:
    """The ids of those jobs whose learner may get the message now (access follows
    money): one query per distinct access check, and a broadcast has one."""
    now = ctx.clock.now()
    allowed: set[int] = set()
    groups: dict[tuple[str, tuple[int, ...]], list[Job]] = {}
    for job in jobs:
        key = _access_key(job.payload.get("access"))
        if key is None:
            allowed.add(job.id)
        else:
            groups.setdefault(key, []).append(job)
    for (kind, product_ids), members in groups.items():
        users = {int(j.payload["chat_id"]) for j in members}
        holders = await access.holders(ctx.session, users, kind, product_ids, now)
        allowed.update(j.id for j in members if int(j.payload["chat_id"]) in holders)
    return allowed


async def _still_claimed(ctx: JobContext, jobs: list[Job]) -> list[Job]:
    """Those still ours to send: a Stop since the claim cancelled the others (their rows
    stay cancelled and are not sent)."""
    running = set(
        await ctx.session.scalars(
            select(Job.id).where(
                Job.id.in_([job.id for job in jobs]), Job.status == JobStatus.RUNNING
            )
        )
    )
    return [job for job in jobs if job.id in running]


async def _refill(ctx: JobContext) -> list[Job]:
    """The next due paid messages (any paid broadcast's); a free broadcast's message
    claimed with them goes straight back to the queue for the one-by-one path."""
    assert ctx.claim is not None
    # Never more than STREAM_SECONDS' worth at the paid cap: what is claimed must go out
    # well within its lease, or another worker would claim it again.
    limit = max(1, min(REFILL, int(ctx.sender.paid_per_second * STREAM_SECONDS)))
    more = await ctx.claim(BROADCAST_MESSAGE, limit)
    others = [job.id for job in more if not _is_paid(job)]
    if others:
        await ctx.session.execute(
            update(Job)
            .where(Job.id.in_(others), Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.PENDING, claimed_until=None, attempts=Job.attempts - 1)
            .execution_options(synchronize_session=False)
        )
        await ctx.session.commit()
    return [job for job in more if _is_paid(job)]


async def send_paid_batch(ctx: JobContext, jobs: list[Job]) -> None:
    """A paid broadcast's claimed messages, up to IN_FLIGHT sends at once.

    Exactly-once as far as Telegram allows: every row here was claimed (running, with a
    lease) in the database before its send, and is marked done after it, FLUSH_EVERY at
    a time. After a crash only the rows whose outcome was not yet committed come back:
    those in flight and those in the unflushed batch (at most IN_FLIGHT + FLUSH_EVERY);
    nothing else is sent twice and nothing is lost. Access is checked for CHECK_EVERY
    messages at a time in one query, just before they go (at 1000/s, well under a
    second before), with whether each is still claimed: a Stop (which cancels claimed
    rows too) takes effect from the next CHECK_EVERY, only those in flight still go.
    More are claimed as these go (REFILL, for STREAM_SECONDS).
    """
    sem = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[_Outcome]] = set()
    ready: list[_Outcome] = []
    messages: dict[tuple[Any, ...], Outgoing] = {}

    def harvest() -> None:
        for task in [t for t in tasks if t.done()]:
            tasks.discard(task)
            ready.append(task.result())

    def message_of(payload: dict[str, Any]) -> Outgoing:
        # Every message of a broadcast carries the same content: build it once.
        msg, protect = payload["msg"], bool(payload.get("protect"))
        key = (protect, *sorted((k, str(v)) for k, v in msg.items()))
        if key not in messages:
            messages[key] = load_message(msg, protect, True)
        return messages[key]

    queue = deque(jobs)
    until = ctx.clock.monotonic() + STREAM_SECONDS
    try:
        while queue:
            chunk = await _still_claimed(
                ctx, [queue.popleft() for _ in range(min(CHECK_EVERY, len(queue)))]
            )
            allowed = await _allowed(ctx, chunk)
            for job in chunk:
                if job.id not in allowed:
                    ready.append(_Outcome(job, ACCESS_REVOKED))
                else:
                    await sem.acquire()
                    # Slots are taken here, one after another, not by the sends in
                    # flight: after a stall (a commit, a busy CPU) only the limiter's
                    # small slack goes out at once, never every send that was waiting.
                    try:
                        free = await ctx.sender.paid_slot(int(job.payload["chat_id"]))
                    except Transient as exc:  # shared limits unreachable: later
                        sem.release()
                        ready.append(_Outcome(job, str(exc)[:500], retry=True))
                        continue
                    except BaseException:
                        sem.release()
                        raise
                    task = _send_paid(ctx, job, message_of(job.payload), sem, free)
                    tasks.add(asyncio.create_task(task))
                harvest()
                if len(ready) >= FLUSH_EVERY:
                    batch, ready[:] = list(ready), []
                    await _record(ctx, batch)
            if len(queue) < CHECK_EVERY and ctx.claim and ctx.clock.monotonic() < until:
                queue.extend(await _refill(ctx))
        while tasks:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            harvest()
            if len(ready) >= FLUSH_EVERY or not tasks:
                batch, ready[:] = list(ready), []
                await _record(ctx, batch)
        if ready:
            await _record(ctx, ready)
    except BaseException:
        # Let the sends in flight finish and record them: cancelling one mid-call could
        # send it without a record.
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        raise
