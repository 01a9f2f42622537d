"""Memberships over time: invites on grant, reminders before expiry, removal after grace.

This module sits on top of bot.services.groups (chats, plans, who may be in a chat) and
owns everything that schedules work: the jobs, and the audits that queue removals. The
arrow points one way; groups never imports this module.

Access changes schedule persistent jobs (bot.scheduler) inside the granting transaction;
the one scheduler runs them and sends through its one rate-limited sender. Chat actions
(invite links, ban/unban) go through a `ChatAdmin` the app passes in, so this module
never imports aiogram. A renewal does not cancel anything: every job carries the expiry it
was scheduled for and does nothing once the entitlement says otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.growth import winback
from bot.models import Entitlement, Group, Job, JobStatus, Plan, ProductKind, User, utcnow
from bot.scheduler.errors import ChatNotFound, Rejected, Transient, Unreachable
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.scheduler.sender import Outgoing
from bot.services import access
from bot.services import groups as groups_service

log = logging.getLogger(__name__)

INVITE = "grp_invite"
REMIND = "grp_remind"
EXPIRE = "grp_expire"
REMOVE = "grp_remove"
REMINDER_HOURS = (72, 24)

_config: dict[str, Any] = {"grace_hours": 24}


class ChatAdmin(Protocol):
    async def create_join_link(self, chat_id: int, name: str) -> str: ...

    async def remove(self, chat_id: int, user_id: int) -> None:
        """Ban then unban with only_if_banned: out now, free to rejoin after paying."""
        ...


class Texts(Protocol):
    """The words of scheduled messages, localised by the app (bot/handlers/groups.py)."""

    def invite(self, locale: str, plan: str, links: list[tuple[str, str]]) -> Outgoing: ...

    def reminder(
        self, locale: str, plan: str, plan_id: int, expires_at: datetime, hours: int
    ) -> Outgoing: ...

    def removed(self, locale: str, plan: str, plan_id: int) -> Outgoing: ...


@dataclass(frozen=True, slots=True)
class Wiring:
    admin: ChatAdmin
    texts: Texts


def install(grace_hours: int) -> None:
    """Wire plans into access changes: a grant invites, a revoke removes."""
    _config["grace_hours"] = grace_hours
    access.on_grant(ProductKind.PLAN, on_plan_granted)
    access.on_revoke(ProductKind.PLAN, on_plan_revoked)


def register(registry: JobRegistry, wiring: Wiring) -> None:
    async def invite(ctx: JobContext, job: Job) -> datetime | None:
        await run_invite(ctx, job, wiring)
        return None

    async def remind(ctx: JobContext, job: Job) -> datetime | None:
        await run_remind(ctx, job, wiring)
        return None

    async def expire(ctx: JobContext, job: Job) -> datetime | None:
        await run_expire(ctx, job, wiring)
        return None

    async def remove(ctx: JobContext, job: Job) -> datetime | None:
        await run_remove(ctx, job, wiring)
        return None

    registry.register(INVITE, invite)
    registry.register(REMIND, remind)
    registry.register(EXPIRE, expire)
    registry.register(REMOVE, remove)


def grace() -> timedelta:
    return timedelta(hours=int(_config["grace_hours"]))


# --- scheduling ---------------------------------------------------------------------------


async def schedule(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime,
    dedupe_key: str | None = None,
) -> bool:
    """Queue a job; False when the same logical job (`dedupe_key`) is already there."""
    if dedupe_key is not None:
        seen = await session.scalar(select(Job.id).where(Job.dedupe_key == dedupe_key))
        if seen is not None:
            return False
    session.add(Job(kind=kind, payload=payload, run_at=run_at, dedupe_key=dedupe_key))
    await session.flush()
    return True


def _stamp(when: datetime | None) -> int:
    return 0 if when is None else int(when.timestamp())


async def on_plan_granted(session: AsyncSession, change: access.AccessChange) -> None:
    await _grant_plan_courses(session, change)
    stamp = _stamp(change.expires_at)
    base = {"user": change.user_id, "plan": change.product_id, "exp": stamp}
    # One invite per grant; a renewal of someone still inside gets a fresh link too,
    # which is harmless and helps who left meanwhile.
    await schedule(
        session, INVITE, base, change.at, f"gi:{change.entitlement_id}:{stamp}:{_stamp(change.at)}"
    )
    if change.expires_at is None:
        return
    for hours in REMINDER_HOURS:
        at = change.expires_at - timedelta(hours=hours)
        if at > change.at:
            key = f"gr:{change.entitlement_id}:{stamp}:{hours}"
            await schedule(session, REMIND, {**base, "hours": hours}, at, key)
    await schedule(
        session, EXPIRE, base, change.expires_at + grace(), f"ge:{change.entitlement_id}:{stamp}"
    )


class InviteAgain(StrEnum):
    QUEUED = "queued"
    ALREADY_QUEUED = "already_queued"  # asked within the hour: that link is on its way
    INSIDE = "inside"  # already in every chat of the plan: no link needed
    NOT_ACTIVE = "not_active"


async def invite_again(
    session: AsyncSession, user_id: int, plan_id: int, now: datetime
) -> InviteAgain:
    """A new personal invite link for someone who lost theirs.

    At most one per plan and hour: each one creates an invite link in every chat, and a
    bored thumb should not fill a chat's link list.
    """
    ent = await access.get_entitlement(session, user_id, ProductKind.PLAN, plan_id)
    if ent is None or not ent.is_active(now):
        return InviteAgain.NOT_ACTIVE
    chats = await groups_service.plan_groups(session, plan_id)
    if all([await groups_service.is_present(session, group, user_id) for group in chats]):
        return InviteAgain.INSIDE
    payload = {"user": user_id, "plan": plan_id, "exp": _stamp(ent.expires_at)}
    key = f"gl:{ent.id}:{int(now.timestamp()) // 3600}"
    if await schedule(session, INVITE, payload, now, key):
        return InviteAgain.QUEUED
    return InviteAgain.ALREADY_QUEUED


async def on_plan_revoked(session: AsyncSession, change: access.AccessChange) -> None:
    await _revoke_plan_courses(session, change)
    payload = {"user": change.user_id, "plan": change.product_id}
    await schedule(session, REMOVE, payload, change.at)


async def _grant_plan_courses(session: AsyncSession, change: access.AccessChange) -> None:
    """A plan's courses come with it, for as long as the plan lasts.

    Course access granted through a plan starts when the plan's did and ends with it;
    that shared start marks it as the plan's. A course the learner owns longer (bought
    on its own) is left as it is. access.grant runs the course hooks: drip enrollment.
    """
    plan = await session.get(Plan, change.product_id)
    plan_ent = await session.get(Entitlement, change.entitlement_id)
    if plan is None or plan_ent is None:
        return
    for course_id in plan.course_ids or []:
        ent = await access.get_entitlement(session, change.user_id, ProductKind.COURSE, course_id)
        if ent is not None and ent.is_active(change.at) and not _shorter(ent, change):
            continue
        ent = await access.grant(
            session, change.user_id, ProductKind.COURSE, course_id, days=None, now=change.at
        )
        ent.expires_at = change.expires_at
        ent.starts_at = plan_ent.starts_at
    await session.flush()


def _shorter(ent: Entitlement, change: access.AccessChange) -> bool:
    if ent.expires_at is None:
        return False
    return change.expires_at is None or ent.expires_at < change.expires_at


async def _revoke_plan_courses(session: AsyncSession, change: access.AccessChange) -> None:
    plan = await session.get(Plan, change.product_id)
    plan_ent = await session.get(Entitlement, change.entitlement_id)
    if plan is None or plan_ent is None:
        return
    for course_id in plan.course_ids or []:
        ent = await access.get_entitlement(session, change.user_id, ProductKind.COURSE, course_id)
        if ent is not None and ent.starts_at == plan_ent.starts_at:
            await access.revoke(session, change.user_id, ProductKind.COURSE, course_id, change.at)


async def schedule_removal(
    session: AsyncSession, group: Group, user_ids: list[int], now: datetime
) -> None:
    """An explicit removal (audit confirm, /kick): re-checked when the job runs."""
    await schedule(session, REMOVE, {"chat": group.chat_id, "users": user_ids}, now)


async def audit_all(
    session: AsyncSession, chat_id: int | None, *, confirm: bool, now: datetime | None = None
) -> list[str]:
    """The CLI audit: one line per chat; with confirm, removals are queued as jobs."""
    now = now or utcnow()
    query = select(Group).order_by(Group.id)
    if chat_id is not None:
        query = query.where(Group.chat_id == chat_id)
    lines = []
    for group in await session.scalars(query):
        would = await groups_service.audit(session, group, now)
        shown = ", ".join(map(str, would)) if would else "-"
        verb = "removing" if confirm and would else "would remove"
        lines.append(f"{group.chat_id} {group.title!r}: {verb} {len(would)}: {shown}")
        if confirm and would:
            await schedule_removal(session, group, would, now)
    if not lines:
        lines.append("no linked chats")
    elif not confirm:
        lines.append("dry run: nothing changed (add --confirm to remove)")
    return lines


# --- jobs ---------------------------------------------------------------------------------


async def _user_and_plan(
    session: AsyncSession, payload: dict[str, Any]
) -> tuple[User | None, Plan | None]:
    return await session.get(User, payload["user"]), await session.get(Plan, payload["plan"])


def _locale(user: User | None) -> str:
    if user is None:
        return "en"
    return user.language or (user.language_code or "en")[:2]


async def _send(ctx: JobContext, user: User | None, message: Outgoing) -> None:
    if user is None or user.is_blocked:
        return
    try:
        await ctx.sender.send(user.id, message)
    except (Unreachable, ChatNotFound, Rejected) as exc:
        log.info("could not tell user %s: %s", user.id, exc)


def _current(ent: Entitlement | None, payload: dict[str, Any]) -> bool:
    """The entitlement is still the one this job was scheduled for (not renewed, revoked)."""
    return ent is not None and ent.revoked_at is None and _stamp(ent.expires_at) == payload["exp"]


def _link_name(user: User | None, user_id: int) -> str:
    name = (user.first_name if user else "") or str(user_id)
    return f"{name} · {user_id}"[:32]


async def run_invite(ctx: JobContext, job: Job, wiring: Wiring) -> None:
    user, plan = await _user_and_plan(ctx.session, job.payload)
    if plan is None:
        return None
    now = ctx.clock.now()
    if not await access.has_access(
        ctx.session, job.payload["user"], ProductKind.PLAN, plan.id, now
    ):
        return None
    links = []
    for group in await groups_service.plan_groups(ctx.session, plan.id):
        if await groups_service.is_present(ctx.session, group, job.payload["user"]):
            continue  # a renewal of someone already inside: no new link needed
        try:
            link = await wiring.admin.create_join_link(
                group.chat_id, _link_name(user, job.payload["user"])
            )
        except Transient:
            raise
        except Exception as exc:  # lost rights, chat gone: the others still work
            log.warning("invite link for chat %s failed: %s", group.chat_id, exc)
            continue
        links.append((group.title, link))
    if links:
        await _send(ctx, user, wiring.texts.invite(_locale(user), plan.title, links))
    return None


async def run_remind(ctx: JobContext, job: Job, wiring: Wiring) -> None:
    user, plan = await _user_and_plan(ctx.session, job.payload)
    if plan is None:
        return None
    ent = await access.get_entitlement(ctx.session, job.payload["user"], ProductKind.PLAN, plan.id)
    if not _current(ent, job.payload) or ent is None or ent.expires_at is None:
        return None  # renewed or revoked meanwhile: this reminder is stale
    if ent.expires_at <= ctx.clock.now():
        return None
    message = wiring.texts.reminder(
        _locale(user), plan.title, plan.id, ent.expires_at, int(job.payload["hours"])
    )
    await _send(ctx, user, message)
    return None


async def _remove_from(
    ctx: JobContext, wiring: Wiring, group: Group, user_id: int, now: datetime
) -> bool:
    if await groups_service.is_allowed(ctx.session, group, user_id, now):
        return False
    try:
        await wiring.admin.remove(group.chat_id, user_id)
    except Transient:
        raise
    except Exception as exc:
        log.warning("removing %s from %s failed: %s", user_id, group.chat_id, exc)
        return False
    await groups_service.note_member(ctx.session, group, user_id, "left")
    return True


async def run_expire(ctx: JobContext, job: Job, wiring: Wiring) -> None:
    user, plan = await _user_and_plan(ctx.session, job.payload)
    if plan is None:
        return None
    ent = await access.get_entitlement(ctx.session, job.payload["user"], ProductKind.PLAN, plan.id)
    now = ctx.clock.now()
    if ent is None or ent.is_active(now) or not _current(ent, job.payload):
        return None  # renewed: nothing to do
    removed = 0
    for group in await groups_service.plan_groups(ctx.session, plan.id):
        removed += await _remove_from(ctx, wiring, group, job.payload["user"], now)
    await _send(ctx, user, wiring.texts.removed(_locale(user), plan.title, plan.id))
    # A lapse may earn the plan's one-time win-back offer (once per learner, ever).
    await winback.offer(ctx.session, int(job.payload["user"]), plan, winback.Reason.LAPSE, now)
    log.info("plan %s expired for %s: removed from %d chats", plan.id, job.payload["user"], removed)
    return None


async def run_remove(ctx: JobContext, job: Job, wiring: Wiring) -> None:
    now = ctx.clock.now()
    payload = job.payload
    if "plan" in payload:
        user, plan = await _user_and_plan(ctx.session, payload)
        if plan is None:
            return None
        removed = 0
        for group in await groups_service.plan_groups(ctx.session, plan.id):
            removed += await _remove_from(ctx, wiring, group, payload["user"], now)
        if removed:
            await _send(ctx, user, wiring.texts.removed(_locale(user), plan.title, plan.id))
        return None
    chat = await groups_service.group_by_chat(ctx.session, payload["chat"])
    if chat is None:
        return None
    for user_id in payload["users"]:
        await _remove_from(ctx, wiring, chat, user_id, now)
    return None


async def pending_jobs(session: AsyncSession, kind: str) -> list[Job]:
    return list(
        await session.scalars(
            select(Job).where(Job.kind == kind, Job.status == JobStatus.PENDING).order_by(Job.id)
        )
    )
