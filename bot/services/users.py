"""Users: registration on first contact, language, interests, referrals, roles."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Creator, CreatorRole, Event, EventKind, User, utcnow
from bot.services.topics import TOPIC_KEYS

# Writing last_seen on every update would turn every read into a commit.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class TelegramProfile:
    """What Telegram tells us about the sender of an update."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


def new_referral_code() -> str:
    return secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")


async def upsert_user(
    session: AsyncSession, profile: TelegramProfile, now: datetime | None = None
) -> tuple[User, bool]:
    """Return the user, creating them on first contact. The bool says whether they are new."""
    now = now or utcnow()
    # First in its transaction (the user middleware's case): a lost race can roll the
    # whole transaction back, which holds nothing else, instead of paying a savepoint's
    # two extra round trips on every first contact.
    first_in_transaction = not session.in_transaction()
    user = await session.get(User, profile.id)
    if user is None:
        user = User(
            id=profile.id,
            first_name=profile.first_name[:128],
            last_name=(profile.last_name or None) and profile.last_name[:128],
            username=profile.username,
            language_code=profile.language_code,
            interests=[],
            referral_code=new_referral_code(),
            last_seen_at=now,
            created_at=now,
            # Explicit values keep the new row fully loaded (cacheable, see UserMiddleware).
            language=None,
            timezone=None,
            blocked_at=None,
            referred_by=None,
        )
        try:
            # Two first updates of a new user can race (a join request and its service
            # message): the loser of the insert reads the winner's row instead.
            await _insert(session, user, first_in_transaction)
        except IntegrityError:
            if first_in_transaction:
                await session.rollback()
            existing = await session.get(User, profile.id)
            if existing is None:
                raise
            refresh_profile(existing, profile, now)
            return existing, False
        return user, True
    refresh_profile(user, profile, now)
    return user, False


async def _insert(session: AsyncSession, user: User, first_in_transaction: bool) -> None:
    if first_in_transaction:
        session.add(user)
        await session.flush()
    else:
        async with session.begin_nested():
            session.add(user)


def refresh_profile(user: User, profile: TelegramProfile, now: datetime) -> None:
    """Bring a known user up to date with what Telegram says; touches only what changed."""
    if user.first_name != profile.first_name[:128]:
        user.first_name = profile.first_name[:128]
    if user.username != profile.username:
        user.username = profile.username
    if user.language_code != profile.language_code:
        user.language_code = profile.language_code
    if user.is_blocked:
        # They wrote to us, so they unblocked the bot: paused deliveries may resume.
        user.is_blocked = False
        user.blocked_at = None
    if now - user.last_seen_at > LAST_SEEN_RESOLUTION:
        user.last_seen_at = now


async def set_language(session: AsyncSession, user: User, language: str) -> None:
    user.language = language


# The settings switch's callback values (anything else is a forged callback).
BOTH_LANGUAGES_MODES = {"both": True, "mine": False}


def set_both_languages(user: User, both: bool) -> None:
    """True: lists rank courses in both languages alike; False: the learner's first."""
    user.both_languages = both


def toggle_interest(user: User, key: str) -> bool:
    """Flip one topic; False when the key is not a known topic (forged callback)."""
    if key not in TOPIC_KEYS:
        return False
    current = list(user.interests or [])
    if key in current:
        current.remove(key)
    else:
        current.append(key)
    user.interests = current  # a new list, so SQLAlchemy sees the change
    return True


def finish_onboarding(user: User) -> None:
    user.onboarded = True


async def apply_referral(session: AsyncSession, user: User, code: str) -> bool:
    """Record who referred a new user. Only once, never oneself."""
    if user.referred_by is not None or not code:
        return False
    referrer_id = await session.scalar(select(User.id).where(User.referral_code == code[:32]))
    if referrer_id is None or referrer_id == user.id:
        return False
    user.referred_by = referrer_id
    session.add(Event(user_id=user.id, kind=EventKind.START, data={"referrer": referrer_id}))
    return True


async def ensure_creator(
    session: AsyncSession, user: User, *, owner: bool = False, display_name: str | None = None
) -> Creator:
    creator = await session.scalar(select(Creator).where(Creator.user_id == user.id))
    role = CreatorRole.OWNER if owner else CreatorRole.CREATOR
    if creator is None:
        creator = Creator(
            user_id=user.id, display_name=display_name or user.first_name or "Creator", role=role
        )
        session.add(creator)
        await session.flush()
    elif owner and creator.role != CreatorRole.OWNER:
        creator.role = CreatorRole.OWNER
    return creator


async def get_creator(session: AsyncSession, user_id: int) -> Creator | None:
    return await session.scalar(select(Creator).where(Creator.user_id == user_id))


# --- platform owners ----------------------------------------------------------------
#
# The owner role (acting on every creator's courses, sales and payments) belongs to the
# users in ADMIN_IDS of the running configuration, and to nobody else. Every command that
# acts as a creator asks `creator_for` with the current setting, so removing someone from
# ADMIN_IDS takes their rights away at once; `sync_owners` at start-up makes the stored
# role agree too, for anything that reads the row without asking (reports, the CLI).


async def creator_for(
    session: AsyncSession, user: User, admin_ids: frozenset[int]
) -> Creator | None:
    """The creator behind a command, an owner exactly when ADMIN_IDS says so now."""
    if user.id in admin_ids:
        return await ensure_creator(session, user, owner=True)
    creator = await get_creator(session, user.id)
    if creator is not None and creator.role == CreatorRole.OWNER:
        # Left ADMIN_IDS since the row was written (another process has not synced yet).
        creator.role = CreatorRole.CREATOR
        await session.flush()
    return creator


def is_owner(user_id: int, admin_ids: frozenset[int]) -> bool:
    return user_id in admin_ids


async def sync_owners(session: AsyncSession, admin_ids: frozenset[int]) -> list[int]:
    """Make creators.role agree with ADMIN_IDS. Returns the user ids that lost the role."""
    demoted = list(
        await session.scalars(
            select(Creator.user_id)
            .where(Creator.role == CreatorRole.OWNER, Creator.user_id.not_in(admin_ids))
            .order_by(Creator.user_id)
        )
    )
    if demoted:
        await session.execute(
            update(Creator)
            .where(Creator.user_id.in_(demoted))
            .values(role=CreatorRole.CREATOR)
            .execution_options(synchronize_session=False)
        )
    if admin_ids:
        await session.execute(
            update(Creator)
            .where(Creator.user_id.in_(admin_ids), Creator.role != CreatorRole.OWNER)
            .values(role=CreatorRole.OWNER)
            .execution_options(synchronize_session=False)
        )
    return demoted
