"""People: Telegram users (learners) and creators."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class User(TimestampMixin, Base):
    """A Telegram user; the primary key is the Telegram user id."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str | None] = mapped_column(String(128))
    # What Telegram reports; `language` is what the user chose and wins when set.
    language_code: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    # Lists (catalog, search, suggestions) put courses in the learner's language first;
    # True: no preference, both languages ranked alike (set in the language menu).
    both_languages: Mapped[bool] = mapped_column(default=False, server_default=false())
    interests: Mapped[list[str]] = mapped_column(default=list)
    onboarded: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Quiet hours in minutes after local midnight; deliveries wait until they end.
    quiet_start: Mapped[int] = mapped_column(default=22 * 60)
    quiet_end: Mapped[int] = mapped_column(default=8 * 60)
    # Set when Telegram answers 403: the learner blocked the bot. Nothing is dropped
    # for them; deliveries pause until they write to the bot again.
    is_blocked: Mapped[bool] = mapped_column(default=False)
    blocked_at: Mapped[datetime | None]
    # One button under an abandoned-checkout reminder turns them off for good.
    reminders_off: Mapped[bool] = mapped_column(default=False, server_default=false())
    # An affiliate who asked for no "your commission is payable" messages.
    earnings_notices_off: Mapped[bool] = mapped_column(default=False, server_default=false())
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    referred_by: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class CreatorRole(StrEnum):
    CREATOR = "creator"
    # The platform owner: ADMIN_IDS, able to act on every creator's goods.
    OWNER = "owner"


class Creator(TimestampMixin, Base):
    __tablename__ = "creators"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default=CreatorRole.CREATOR)
    # Platform fee override in basis points; NULL means the configured default.
    fee_bps: Mapped[int | None]
    # The public profile (/creator <id>): set with /profile.
    bio: Mapped[str] = mapped_column(Text, default="")
    photo_file_id: Mapped[str | None] = mapped_column(String(256))
