"""What the sessions of this process have committed changes to, for in-memory caches.

A cache that relies on every writer remembering to invalidate it goes stale the first
time someone forgets. SQLAlchemy's Session events see every ORM write instead: a
`Tracker` counts the commits that changed one of its models, and remembers, per key
(a user id, say), the last such commit. A cache notes `tracker.version` when it loads
and asks `changed_since(version, key)` before it answers.

Changes count at commit, not at flush: a cache reloading between a flush and its commit
would otherwise read the old row and keep it as fresh. A rolled-back transaction's
changes are forgotten. Bulk INSERT, UPDATE and DELETE statements on a tracked model have
no objects to look at, so they count as a change to every key.

Other processes are not seen here; caches bound that with a time to live.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

_PENDING = "lyceum.changes"
MAX_KEYS = 200_000

_trackers: list[Tracker] = []


class Tracker:
    def __init__(self, *models: type, key: Callable[[Any], Hashable] | None = None) -> None:
        self.models = models
        self.key = key
        self.version = 0
        # Every key changed at or before `_floor` counts as changed (the per-key table
        # is dropped when it grows too big, and bulk statements change every key).
        self._floor = 0
        self._keys: dict[Hashable, int] = {}
        _trackers.append(self)

    def changed_since(self, version: int, key: Hashable | None = None) -> bool:
        """Whether a commit after `version` changed `key` (or anything, without a key)."""
        if key is None or self.key is None:
            return self.version > version
        return max(self._floor, self._keys.get(key, 0)) > version

    def changed_all_since(self, version: int) -> bool:
        """Whether a commit after `version` changed every key (a bulk statement, a tracker
        without keys): what a per-key answer cannot tell a cache that holds every key."""
        return (self.version if self.key is None else self._floor) > version

    def _committed(self, keys: set[Hashable] | None) -> None:
        self.version += 1
        if keys is None or self.key is None:
            self._floor = self.version
            self._keys.clear()
            return
        for key in keys:
            self._keys[key] = self.version
        if len(self._keys) > MAX_KEYS:
            self._floor = self.version
            self._keys.clear()


def _pending(session: Session) -> dict[Tracker, set[Hashable] | None]:
    pending: dict[Tracker, set[Hashable] | None] = session.info.setdefault(_PENDING, {})
    return pending


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: object) -> None:
    # Still the pre-flush state here: new, dirty and deleted list what this flush wrote.
    for obj in chain(session.new, session.dirty, session.deleted):
        for tracker in _trackers:
            if isinstance(obj, tracker.models):
                pending = _pending(session)
                if tracker in pending and pending[tracker] is None:
                    continue
                keys = pending.setdefault(tracker, set())
                if tracker.key is not None and keys is not None:
                    keys.add(tracker.key(obj))


@event.listens_for(Session, "do_orm_execute")
def _bulk(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    mapper = state.bind_mapper
    if mapper is None:
        return
    for tracker in _trackers:
        if issubclass(mapper.class_, tracker.models):
            _pending(state.session)[tracker] = None


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: nothing is committed yet
    pending: dict[Tracker, set[Hashable] | None] | None = session.info.pop(_PENDING, None)
    for tracker, keys in (pending or {}).items():
        tracker._committed(keys)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: SessionTransaction) -> None:
    # A savepoint's rollback keeps what the rest of the transaction may still commit
    # (its own changes stay counted: a needless reload, never a stale answer).
    if previous.parent is None:
        session.info.pop(_PENDING, None)
