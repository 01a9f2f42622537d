"""One-off messages that must not be lost and must not undo anything: receipts and
refund notes. Book first, then speak.

`queue` writes the message as a job inside the transaction that books the money, so the
two commit together; the job starts claimed (as the worker claims jobs), so the worker
leaves it alone while the caller sends it right after the commit (`send_now`). A send
that fails with 429 or 5xx hands the job back to the worker, which retries it through
the rate-limited sender; if the process dies before or during that first send, the
claim runs out and the worker sends it then (at most the one message in flight twice,
as with lessons). A learner who blocked the bot, or a chat that does not exist, drops
the message with a log line: their purchase is in the books either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Job, JobStatus
from bot.scheduler.errors import ChatNotFound, Rejected, RetryAfter, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Button, Outgoing, Sender

log = logging.getLogger(__name__)

KIND = "notice"


@dataclass(frozen=True, slots=True)
class Notice:
    job_id: int
    chat_id: int
    message: Outgoing


def _dump(chat_id: int, message: Outgoing) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "chat": chat_id,
        "text": message.text,
        "protect": message.protect_content,
        "buttons": [[[b.text, b.data] for b in row] for row in message.buttons],
    }
    if message.copy_from is not None:
        payload["copy"] = [message.copy_from, message.copy_id]
    return payload


def _load(payload: dict[str, Any]) -> tuple[int, Outgoing]:
    buttons = tuple(
        tuple(Button(str(text), str(data)) for text, data in row)
        for row in payload.get("buttons") or ()
    )
    copy = payload.get("copy") or [None, None]
    message = Outgoing(
        text=payload.get("text"),
        protect_content=bool(payload.get("protect")),
        buttons=buttons,
        copy_from=int(copy[0]) if copy[0] is not None else None,
        copy_id=int(copy[1]) if copy[1] is not None else None,
    )
    return int(payload["chat"]), message


async def queue(
    session: AsyncSession, chat_id: int, message: Outgoing, *, now: datetime, lease: float
) -> Notice:
    """Persist `message` in the caller's transaction, claimed for `lease` seconds."""
    job = Job(
        kind=KIND,
        payload=_dump(chat_id, message),
        run_at=now,
        status=JobStatus.RUNNING,
        claimed_until=now + timedelta(seconds=lease),
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    return Notice(job.id, chat_id, message)


async def later(session: AsyncSession, chat_id: int, message: Outgoing, *, now: datetime) -> None:
    """Persist `message` for the worker to send (a job's own notice: it is already in
    the scheduler, so the rate-limited sender takes it on its next round)."""
    session.add(
        Job(
            kind=KIND,
            payload=_dump(chat_id, message),
            run_at=now,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()


async def send_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    sender: Sender,
    notice: Notice,
    *,
    now: Callable[[], datetime],
    wake: Callable[[], None] | None = None,
) -> bool:
    """Send a queued notice once, after its transaction committed. Never raises.

    True when it went out; otherwise the job is back with the worker or dropped."""
    error = ""
    delay = 0.0
    try:
        await sender.send(notice.chat_id, notice.message)
    except (Unreachable, ChatNotFound, Rejected) as exc:
        log.warning("notice to %s dropped: %s", notice.chat_id, exc)
        await _finish(sessionmaker, notice.job_id, JobStatus.DONE, now(), f"dropped: {exc}")
        return False
    except RetryAfter as exc:
        delay, error = exc.retry_after, str(exc)
    except Exception as exc:  # 5xx, network, anything: the worker tries again
        error = repr(exc)
    else:
        await _finish(sessionmaker, notice.job_id, JobStatus.DONE, now(), None)
        return True
    log.warning("notice to %s not sent (%s); the scheduler retries it", notice.chat_id, error)
    at = now() + timedelta(seconds=delay)
    await _finish(sessionmaker, notice.job_id, JobStatus.PENDING, at, error[:500])
    if wake is not None:
        wake()
    return False


async def rewrite(
    sessionmaker: async_sessionmaker[AsyncSession], notice: Notice, message: Outgoing
) -> Notice:
    """Replace a queued notice's words before its first send (say, once a link that needs
    a Telegram call is known). Only while it is still claimed for that first send: if the
    worker has it already, the words it was queued with go out. Never raises."""
    try:
        async with sessionmaker() as session:
            result = await session.execute(
                update(Job)
                .where(Job.id == notice.job_id, Job.status == JobStatus.RUNNING)
                .values(payload=_dump(notice.chat_id, message))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
    except Exception:
        log.exception("could not rewrite notice job %s", notice.job_id)
        return notice
    if not getattr(result, "rowcount", 0):
        return notice
    return Notice(notice.job_id, notice.chat_id, message)


async def _finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    job_id: int,
    status: str,
    at: datetime,
    error: str | None,
) -> None:
    try:
        async with sessionmaker() as session:
            await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                .values(status=status, run_at=at, claimed_until=None, last_error=error)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
    except Exception:
        # The claim runs out and the worker sends it: at worst a second copy.
        log.exception("could not record notice job %s", job_id)


async def run(ctx: JobContext, job: Job) -> datetime | None:
    """The worker's retry: through the rate-limited sender (429s wait, 5xx back off)."""
    chat_id, message = _load(job.payload)
    try:
        await ctx.sender.send(chat_id, message)
    except (Unreachable, ChatNotFound, Rejected) as exc:
        log.warning("notice job %s to %s dropped: %s", job.id, chat_id, exc)
    return None


def register(registry: JobRegistry) -> None:
    registry.register(KIND, run)
