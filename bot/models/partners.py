"""Study partners (用户匹配): who opted in per course, and every proposal ever made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base


class PartnerStatus:
    PROPOSED = "proposed"  # waiting for both to accept
    ACTIVE = "active"  # both accepted: names shown
    DECLINED = "declined"
    EXPIRED = "expired"
    ENDED = "ended"


class PartnerOptIn(Base):
    __tablename__ = "partner_opt_ins"
    __table_args__ = (UniqueConstraint("user_id", "course_id", name="uq_partner_opt_ins_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class Partnership(Base):
    """One proposal between two learners, kept for ever: the unique pair is what makes
    "never proposed twice to the same person" hold, whatever happened to the first."""

    __tablename__ = "partnerships"
    __table_args__ = (UniqueConstraint("user_a", "user_b", name="uq_partnerships_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    # user_a < user_b.
    user_a: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    user_b: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=PartnerStatus.PROPOSED)
    a_accepted: Mapped[bool] = mapped_column(default=False)
    b_accepted: Mapped[bool] = mapped_column(default=False)
    proposed_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
