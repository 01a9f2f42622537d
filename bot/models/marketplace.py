"""The marketplace: reviews of courses, their votes, and follows of creators."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin, utcnow


class Review(TimestampMixin, Base):
    """One learner's rating (1-5) and short text about one course; edited, never repeated."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("user_id", "course_id", name="uq_reviews_user_course"),
        Index("ix_reviews_course_created", "course_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[int]
    text: Mapped[str] = mapped_column(Text, default="")
    # False once the purchase behind it is refunded: shown nowhere, counted in no average.
    counted: Mapped[bool] = mapped_column(default=True)
    # Hidden by a platform owner after reports.
    hidden: Mapped[bool] = mapped_column(default=False)
    helpful: Mapped[int] = mapped_column(default=0)
    reports: Mapped[int] = mapped_column(default=0)
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReviewVote(Base):
    """A 'helpful' vote or a report: one of each per user per review."""

    __tablename__ = "review_votes"
    __table_args__ = (UniqueConstraint("review_id", "user_id", "kind", name="uq_review_votes_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    # The review's course, so the ratings cache knows which card a vote changes.
    course_id: Mapped[int]
    user_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))  # "helpful" | "report"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (UniqueConstraint("user_id", "creator_id", name="uq_follows_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Bundle(TimestampMixin, Base):
    """Several published courses of one creator sold as one product at one price.

    Its courses and prices are fixed when it is made (a learner's invoice and a refund
    must mean what they meant when paid); the creator can only unpublish it and make
    another. Either price may be 0: not sold that way."""

    __tablename__ = "bundles"

    id: Mapped[int] = mapped_column(primary_key=True)
    creator_id: Mapped[int] = mapped_column(
        ForeignKey("creators.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    price_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    stars_price: Mapped[int] = mapped_column(default=0)
    published: Mapped[bool] = mapped_column(default=True)


class BundleCourse(Base):
    __tablename__ = "bundle_courses"

    bundle_id: Mapped[int] = mapped_column(
        ForeignKey("bundles.id", ondelete="CASCADE"), primary_key=True
    )
    # Indexed: a course card lists the bundles it is in.
    course_id: Mapped[int] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True, index=True
    )
