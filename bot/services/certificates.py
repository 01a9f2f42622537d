"""Certificates: issued when a learner finishes every lesson of a course (gating quizzes
passed), verified by anyone with `start=v_<serial>`, revoked by a refund.

Issuing is booking: the row and the job that sends the picture are written in the
transaction that records the completion, and the scheduler sends it after that commit
(book first, then speak). The picture is drawn once; its Telegram `file_id` is kept and
every later send reuses it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    Certificate,
    Course,
    Creator,
    Enrollment,
    Job,
    JobStatus,
    ProductKind,
    User,
)
from bot.services import access

JOB_KIND = "certificate"
# No 0/O or 1/I: a serial read aloud or typed from the picture is not mistaken.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SERIAL_LENGTH = 10


def install() -> None:
    """A course taken back (a refund, a refunded gift) revokes its certificate."""
    access.on_revoke(ProductKind.COURSE, _on_course_revoked)


async def _on_course_revoked(session: AsyncSession, change: access.AccessChange) -> None:
    await revoke(session, change.user_id, change.product_id, change.at)


def new_serial() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(SERIAL_LENGTH))


def is_serial(text: str) -> bool:
    return len(text) == SERIAL_LENGTH and all(c in _ALPHABET for c in text)


def full_name(user: User) -> str:
    return " ".join(p for p in (user.first_name, user.last_name) if p).strip() or str(user.id)


async def issue(session: AsyncSession, enrollment: Enrollment, now: datetime) -> Certificate | None:
    """The learner's certificate for the course (once), and the job that sends it."""
    existing = await find(session, enrollment.user_id, enrollment.course_id)
    if existing is not None:
        return existing
    user = await session.get(User, enrollment.user_id)
    course = await session.get(Course, enrollment.course_id)
    creator = await session.get(Creator, course.creator_id) if course is not None else None
    if user is None or course is None or creator is None:
        return None
    cert = Certificate(
        serial=new_serial(),
        user_id=user.id,
        course_id=course.id,
        learner_name=full_name(user)[:200],
        course_title=course.title[:200],
        creator_name=creator.display_name[:200],
        issued_at=now,
        created_at=now,
    )
    session.add(cert)
    await session.flush()
    session.add(
        Job(
            kind=JOB_KIND,
            dedupe_key=f"{JOB_KIND}:{cert.id}",
            payload={"certificate": cert.id},
            run_at=now,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    return cert


async def find(session: AsyncSession, user_id: int, course_id: int) -> Certificate | None:
    return await session.scalar(
        select(Certificate).where(
            Certificate.user_id == user_id, Certificate.course_id == course_id
        )
    )


async def by_serial(session: AsyncSession, serial: str) -> Certificate | None:
    serial = serial.strip().upper()
    if not is_serial(serial):
        return None
    return await session.scalar(select(Certificate).where(Certificate.serial == serial))


async def mine(session: AsyncSession, user_id: int) -> list[Certificate]:
    rows = await session.scalars(
        select(Certificate).where(Certificate.user_id == user_id).order_by(Certificate.id)
    )
    return list(rows)


async def revoke(session: AsyncSession, user_id: int, course_id: int, now: datetime) -> bool:
    """A refund took the course back: its certificate no longer verifies."""
    result = await session.execute(
        update(Certificate)
        .where(
            Certificate.user_id == user_id,
            Certificate.course_id == course_id,
            Certificate.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


async def remember_file_id(session: AsyncSession, cert: Certificate, file_id: str) -> None:
    if cert.file_id is None:
        cert.file_id = file_id
        await session.flush()
