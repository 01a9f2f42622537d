"""A learner's data: all of it as one JSON document (/mydata), and its erasure (/deleteme).

Which rows are someone's is written down once, here, table by table (`SUBJECT_COLUMNS`):
the export reads exactly those rows, and a test holds the list equal to every column of
the schema that holds a Telegram user id, so a table added later cannot be forgotten by
either. Columns that do hold a user id but make the row someone else's (who *they*
referred, the commission *another* learner earned on their purchase) are listed in
`OTHER_PEOPLES` with the reason.

Erasure keeps the money: orders, payments, ledger rows, gifts and affiliate entries are
accounting records the platform must keep. They stay keyed by the Telegram user id (the
refund of a Stars payment needs it), with what the payment provider told us about the
buyer (order_info: name, phone, e-mail, address) dropped. Everything else personal goes:
the profile is blanked, progress, events, reviews, votes, follows, reminders and
affiliate links are deleted, and the per-learner funnel rows of the creators' analytics
are detached from the learner (their counts stay). Access they paid for ends through
`access.revoke`, so its usual consequences follow: lessons stop, and the paid-group
removal job takes them out of the chats.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import String, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified

from bot.models import (
    Base,
    Course,
    Creator,
    Entitlement,
    Event,
    FunnelProgress,
    Job,
    JobStatus,
    Order,
    OrderStatus,
    Payment,
    Plan,
    ProductKind,
    Question,
    Review,
    ReviewVote,
    User,
    WinbackOffer,
)
from bot.scheduler.jobs import JobContext, JobRegistry
from bot.services import access

log = logging.getLogger(__name__)

# Every column holding a Telegram user id whose value makes the row that person's.
SUBJECT_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("id",),
    "creators": ("user_id",),
    "orders": ("user_id",),
    "payments": ("user_id",),
    "entitlements": ("user_id",),
    "enrollments": ("user_id",),
    "deliveries": ("user_id",),
    "events": ("user_id",),
    "affiliate_links": ("user_id",),
    "affiliate_attributions": ("user_id",),
    "affiliate_entries": ("affiliate_id",),
    "gifts": ("buyer_id", "claimed_by"),
    "growth_reminders": ("user_id",),
    "growth_winbacks": ("user_id",),
    "reviews": ("user_id",),
    "review_votes": ("user_id",),
    "follows": ("user_id",),
    "group_members": ("user_id",),
    "stats_funnel": ("user_id",),
    "stats_nudges": ("user_id",),
    "promo_impressions": ("user_id",),
    "promo_clicks": ("user_id",),
    "quiz_attempts": ("user_id",),
    "certificates": ("user_id",),
    "questions": ("user_id",),
    "challenge_members": ("user_id",),
    "check_ins": ("user_id",),
    "partner_opt_ins": ("user_id",),
    "partnerships": ("user_a", "user_b"),
}

# Columns holding a user id that do not make the row that user's: why they are left out.
OTHER_PEOPLES: dict[tuple[str, str], str] = {
    ("users", "referred_by"): "the rows of the people this learner referred",
    ("affiliate_attributions", "affiliate_id"): "other learners this learner's links brought",
    ("affiliate_entries", "buyer_id"): (
        "the commission another learner earned on this learner's purchase (the purchase "
        "itself is in orders and payments)"
    ),
}

# Names of columns that hold a Telegram user id without a foreign key to users.id.
USER_ID_NAMES = frozenset({"user_id", "buyer_id", "affiliate_id", "claimed_by", "referred_by"})

# Kept for accounting, keyed by the user id; everything else of the learner is deleted
# or, for users and stats_funnel, blanked or detached (see `erase`).
# Sponsored impressions and clicks are what a creator's promotion budget was charged for.
KEPT_FOR_ACCOUNTING = (
    "orders",
    "payments",
    "entitlements",
    "affiliate_entries",
    "gifts",
    "promo_impressions",
    "promo_clicks",
    # A question may be paid and owed a refund: the row stays, its words are blanked.
    "questions",
)
DELETED = (
    # A certificate carries the learner's name; erased, its serial no longer verifies.
    "certificates",
    "quiz_attempts",
    "check_ins",
    "challenge_members",
    "partner_opt_ins",
    # A pairing is both learners': it ends for the other one too.
    "partnerships",
    "events",
    "deliveries",
    "enrollments",
    "affiliate_attributions",
    "affiliate_links",
    "growth_reminders",
    "growth_winbacks",
    "follows",
    "group_members",
    "stats_nudges",
)

# What a payment keeps of the provider's message: the bookkeeping, not the buyer.
PAYMENT_RAW_KEPT = frozenset(
    {
        "credited",
        "currency",
        "total_amount",
        "invoice_payload",
        "telegram_payment_charge_id",
        "provider_payment_charge_id",
        "subscription_expiration_date",
        "is_recurring",
        "is_first_recurring",
        "session",
        "event",
    }
)

# Job payload keys naming the learner the job writes to (notices, groups, nudges).
_JOB_USER_KEYS = ("user", "chat", "chat_id")
# Job payload keys naming a row of the learner's: their order, offer, review.
_JOB_ROW_KEYS = ("order", "offer", "review_id")
# Jobs that take access away: erasure queues them itself and must not cancel them.
_KEEP_JOB_KINDS = frozenset({"grp_remove"})


def user_columns(table_name: str) -> list[str]:
    """The columns of a table that hold a Telegram user id (by foreign key or by name)."""
    table = Base.metadata.tables[table_name]
    found = []
    for column in table.columns:
        points_at_users = any(fk.column.table.name == "users" for fk in column.foreign_keys)
        if points_at_users or column.name in USER_ID_NAMES or column.name.endswith("user_id"):
            found.append(column.name)
    if table_name == "users":
        found.append("id")
    return found


# --- export ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


def _row(values: dict[str, Any], user_id: int, id_columns: Iterable[str]) -> dict[str, Any]:
    out = {name: _plain(value) for name, value in values.items()}
    # Another person's id in the learner's row (who referred them, who got their gift)
    # is theirs, not the learner's to take away.
    for name in id_columns:
        if name != "id" and out.get(name) not in (None, user_id):
            out[name] = None
    return out


async def export(session: AsyncSession, user_id: int, now: datetime) -> dict[str, Any]:
    """Everything Lyceum holds about `user_id`: table name → rows, all columns."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, columns in SUBJECT_COLUMNS.items():
        table = Base.metadata.tables[name]
        where = or_(*(table.c[c] == user_id for c in columns))
        rows = await session.execute(select(table).where(where).order_by(*table.primary_key))
        id_columns = user_columns(name)
        tables[name] = [_row(dict(r._mapping), user_id, id_columns) for r in rows]
    tables["scheduled_messages"] = [
        {"id": job.id, "kind": job.kind, "status": job.status, "run_at": _plain(job.run_at)}
        for job in await _jobs_for(session, user_id)
    ]
    return {
        "about": "Everything Lyceum holds about you, table by table.",
        "user_id": user_id,
        "exported_at": now.isoformat(),
        "tables": tables,
    }


def export_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=False).encode()


# --- erasure -----------------------------------------------------------------------------


def confirmation_stamp(user: User) -> str:
    """A short fingerprint of the learner's current referral code. Erasure replaces the
    code, so a confirmation button from before (pressed twice, or an old message) no
    longer matches and erases nothing a second time."""
    return hashlib.sha256(user.referral_code.encode()).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class Loss:
    """What the learner loses, said before they confirm."""

    courses: list[str]
    plans: list[str]


async def what_ends(session: AsyncSession, user_id: int, now: datetime) -> Loss:
    """The paid access that erasure ends, by title."""
    active = [
        e
        for e in await session.scalars(select(Entitlement).where(Entitlement.user_id == user_id))
        if e.is_active(now)
    ]
    course_ids = [e.product_id for e in active if e.product_kind == ProductKind.COURSE]
    plan_ids = [e.product_id for e in active if e.product_kind == ProductKind.PLAN]
    courses = await session.scalars(select(Course.title).where(Course.id.in_(course_ids)))
    plans = await session.scalars(select(Plan.title).where(Plan.id.in_(plan_ids)))
    return Loss(sorted(courses), sorted(plans))


async def is_creator(session: AsyncSession, user_id: int) -> bool:
    return await session.scalar(select(Creator.id).where(Creator.user_id == user_id)) is not None


@dataclass
class Erasure:
    revoked: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    cancelled_jobs: int = 0
    # Stars subscriptions Telegram would renew: cancel them after the commit.
    subscription_charges: list[str] = field(default_factory=list)


async def erase(session: AsyncSession, user_id: int, now: datetime) -> Erasure:
    """Erase the learner's personal data in the caller's transaction (see the module
    docstring for what stays). Safe to run twice: the second run finds nothing."""
    result = Erasure()
    result.cancelled_jobs = await _cancel_jobs(session, user_id)
    result.subscription_charges = await _subscriptions(session, user_id)
    # Through access.revoke: lessons stop, plan chats get their removal jobs.
    for ent in list(
        await session.scalars(
            select(Entitlement).where(
                Entitlement.user_id == user_id, Entitlement.revoked_at.is_(None)
            )
        )
    ):
        await access.revoke(session, user_id, ent.product_kind, ent.product_id, now)
        result.revoked += 1
    await _drop_reviews(session, user_id)
    for name in DELETED:
        table = Base.metadata.tables[name]
        where = or_(*(table.c[c] == user_id for c in SUBJECT_COLUMNS[name]))
        deleted = await session.execute(delete(table).where(where))
        result.deleted[name] = int(getattr(deleted, "rowcount", 0) or 0)
    await _detach_funnel(session, user_id)
    await _close_open_orders(session, user_id, now)
    await _strip_payments(session, user_id)
    await _blank_questions(session, user_id)
    await _blank_profile(session, user_id)
    await session.flush()
    return result


async def _jobs_for(session: AsyncSession, user_id: int) -> list[Job]:
    """Pending jobs that would write to the learner, found by their payload."""
    orders = set(await session.scalars(select(Order.id).where(Order.user_id == user_id)))
    offers = set(
        await session.scalars(select(WinbackOffer.id).where(WinbackOffer.user_id == user_id))
    )
    reviews = set(await session.scalars(select(Review.id).where(Review.user_id == user_id)))
    # The payload's text holds the user's id, or the id of their order, offer or review:
    # a cheap filter in the database first, the exact test below.
    text = cast(Job.payload, String)
    query = select(Job).where(
        Job.status == JobStatus.PENDING,
        or_(text.contains(str(user_id)), *(text.contains(f'"{k}"') for k in _JOB_ROW_KEYS)),
    )
    found = []
    for job in await session.scalars(query.order_by(Job.id)):
        payload = job.payload or {}
        if (
            any(payload.get(k) == user_id for k in _JOB_USER_KEYS)
            or user_id in (payload.get("users") or ())
            or payload.get("order") in orders
            or payload.get("offer") in offers
            or payload.get("review_id") in reviews
        ):
            found.append(job)
    return found


async def _cancel_jobs(session: AsyncSession, user_id: int) -> int:
    cancelled = 0
    for job in await _jobs_for(session, user_id):
        if job.kind in _KEEP_JOB_KINDS:
            continue
        users = job.payload.get("users")
        if isinstance(users, list) and len(users) > 1:
            # A broadcast to many: only this learner leaves the list.
            job.payload = {**job.payload, "users": [u for u in users if u != user_id]}
            flag_modified(job, "payload")
        else:
            await session.delete(job)
        cancelled += 1
    return cancelled


async def _subscriptions(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.scalars(
        select(Payment.telegram_payment_charge_id).where(
            Payment.user_id == user_id,
            Payment.is_recurring.is_(True),
            Payment.refunded_at.is_(None),
            Payment.telegram_payment_charge_id.is_not(None),
        )
    )
    return sorted({c for c in rows if c})


async def _drop_reviews(session: AsyncSession, user_id: int) -> None:
    # Through the ORM, so the rating caches see the change (bot.services.changes).
    for vote in await session.scalars(select(ReviewVote).where(ReviewVote.user_id == user_id)):
        review = await session.get(Review, vote.review_id)
        if review is not None and review.user_id != user_id:
            if vote.kind == "helpful":
                review.helpful = max(0, review.helpful - 1)
            elif vote.kind == "report":
                review.reports = max(0, review.reports - 1)
        await session.delete(vote)
    for review in await session.scalars(select(Review).where(Review.user_id == user_id)):
        await session.execute(delete(ReviewVote).where(ReviewVote.review_id == review.id))
        await session.delete(review)
    await session.flush()


async def _detach_funnel(session: AsyncSession, user_id: int) -> None:
    # A creator's funnel counts learners: the row stays, no longer anyone's. Its own id,
    # negated, keeps (product, user) unique and can never be a Telegram user id.
    await session.execute(
        update(FunnelProgress)
        .where(FunnelProgress.user_id == user_id)
        .values(user_id=-FunnelProgress.id)
        .execution_options(synchronize_session=False)
    )


async def _close_open_orders(session: AsyncSession, user_id: int, now: datetime) -> None:
    # Unpaid invoices run out now: housekeeping expires them and frees the promo code
    # uses they hold, and no checkout reminder follows.
    await session.execute(
        update(Order)
        .where(
            Order.user_id == user_id,
            Order.status == OrderStatus.PENDING,
            or_(Order.expires_at.is_(None), Order.expires_at > now),
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )


async def _strip_payments(session: AsyncSession, user_id: int) -> None:
    for payment in await session.scalars(select(Payment).where(Payment.user_id == user_id)):
        kept = {k: v for k, v in (payment.raw or {}).items() if k in PAYMENT_RAW_KEPT}
        if kept != payment.raw:
            payment.raw = kept
            flag_modified(payment, "raw")


async def _blank_questions(session: AsyncSession, user_id: int) -> None:
    """A question's words go and it leaves the FAQ; the row stays for its payment, and an
    open paid one is still refunded by its job when unanswered."""
    await session.execute(
        update(Question)
        .where(Question.user_id == user_id)
        .values(text="", published=False)
        .execution_options(synchronize_session=False)
    )


async def _blank_profile(session: AsyncSession, user_id: int) -> None:
    user = await session.get(User, user_id)
    if user is None:
        return
    user.username = None
    user.first_name = ""
    user.last_name = None
    user.language_code = None
    user.language = None
    user.both_languages = False
    user.interests = []
    user.onboarded = False
    user.timezone = None
    user.quiet_start = 22 * 60
    user.quiet_end = 8 * 60
    user.referred_by = None
    user.reminders_off = True
    # A new code: links they shared no longer point at them.
    user.referral_code = "x" + secrets.token_hex(8)


# --- retention of raw events -------------------------------------------------------------

PRUNE = "events.prune"
PRUNE_BATCH = 50_000
PRUNE_EVERY = timedelta(days=1)


async def prune_events(session: AsyncSession, before: datetime, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` raw events older than `before`; the rollups built from them
    stay (bot.analytics.rollups). A bounded batch keeps the transaction short."""
    ids = list(
        await session.scalars(
            select(Event.id).where(Event.created_at < before).order_by(Event.id).limit(limit)
        )
    )
    if not ids:
        return 0
    await session.execute(delete(Event).where(Event.id.in_(ids)))
    return len(ids)


def register_pruning(registry: JobRegistry, keep_days: int) -> None:
    async def run(ctx: JobContext, job: Job) -> datetime | None:
        now = ctx.clock.now()
        if keep_days <= 0:
            return now + PRUNE_EVERY  # switched off since it was scheduled: look daily
        pruned = await prune_events(ctx.session, now - timedelta(days=keep_days))
        if pruned:
            log.info("pruned %d raw events older than %d days", pruned, keep_days)
        # A full batch: more are waiting, come back soon rather than tomorrow.
        return now + (timedelta(minutes=1) if pruned >= PRUNE_BATCH else PRUNE_EVERY)

    registry.register(PRUNE, run)


async def ensure_pruning(session: AsyncSession, now: datetime) -> None:
    if await session.scalar(select(Job.id).where(Job.dedupe_key == PRUNE)) is None:
        session.add(Job(kind=PRUNE, dedupe_key=PRUNE, payload={}, run_at=now))
        await session.flush()
