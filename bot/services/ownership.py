"""Which courses a learner owns, kept in memory for the course card.

Every card says whether the learner owns the course, and asking the database each time
costs a round trip that the rest of the card no longer needs. Two things are kept:

- who owns any course at all, read with each catalog snapshot: most people who browse
  own nothing, and for them no query is needed;
- per owner, what they own, read on their first card and kept for `ttl` seconds.

Both are dropped at once when this process commits a change to a learner's entitlements
(a payment, a refund, a plan's grant); another process's change shows within `ttl`, the
catalog's own bound. A stale answer only shows an owner a Buy button a little longer (or
hides it): payments re-check ownership against the database before any invoice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Entitlement, ProductKind
from bot.services.changes import Tracker

ENTITLEMENTS = Tracker(Entitlement, key=lambda e: e.user_id)


@dataclass(frozen=True, slots=True)
class _Owned:
    loaded_at: float
    version: int
    # course id -> (starts_at, expires_at or None for lifetime); revoked ones left out
    periods: dict[int, tuple[datetime, datetime | None]]


async def load_owners(session: AsyncSession) -> tuple[frozenset[int], int]:
    """Everyone who holds a course (expired or not), and ENTITLEMENTS.version as of then."""
    version = ENTITLEMENTS.version
    rows = await session.scalars(
        select(Entitlement.user_id)
        .where(
            Entitlement.product_kind == ProductKind.COURSE,
            Entitlement.revoked_at.is_(None),
        )
        .distinct()
    )
    return frozenset(rows), version


class OwnedCourses:
    def __init__(self, ttl: float = 10.0, max_users: int = 50_000) -> None:
        self.ttl = ttl
        self.max_users = max_users
        self._items: OrderedDict[int, _Owned] = OrderedDict()
        # None until the first catalog snapshot says who owns anything.
        self._owners: frozenset[int] | None = None
        self._owners_version = 0
        self._owners_at = 0.0

    def set_owners(self, owners: frozenset[int], version: int) -> None:
        self._owners, self._owners_version = owners, version
        self._owners_at = time.monotonic()

    def _owns_nothing(self, user_id: int) -> bool:
        return (
            self._owners is not None
            and user_id not in self._owners
            and time.monotonic() - self._owners_at <= self.ttl
            and not ENTITLEMENTS.changed_since(self._owners_version, user_id)
        )

    async def owns(
        self, session: AsyncSession, user_id: int, course_id: int, now: datetime
    ) -> bool:
        owned = self._items.get(user_id)
        if owned is None or not self._fresh(owned, user_id):
            if self._owns_nothing(user_id):
                return False
            owned = await self._load(session, user_id)
        period = owned.periods.get(course_id)
        if period is None:
            return False
        starts_at, expires_at = period
        return starts_at <= now and (expires_at is None or expires_at > now)

    def _fresh(self, owned: _Owned, user_id: int) -> bool:
        return time.monotonic() - owned.loaded_at <= self.ttl and not (
            ENTITLEMENTS.changed_since(owned.version, user_id)
        )

    async def _load(self, session: AsyncSession, user_id: int) -> _Owned:
        # Noted before reading: a commit that lands during the read counts as newer.
        version = ENTITLEMENTS.version
        rows = await session.execute(
            select(Entitlement.product_id, Entitlement.starts_at, Entitlement.expires_at).where(
                Entitlement.user_id == user_id,
                Entitlement.product_kind == ProductKind.COURSE,
                Entitlement.revoked_at.is_(None),
            )
        )
        owned = _Owned(time.monotonic(), version, {r[0]: (r[1], r[2]) for r in rows})
        self._items.pop(user_id, None)
        self._items[user_id] = owned
        if len(self._items) > self.max_users:
            self._items.popitem(last=False)
        return owned
