"""One AsyncSession per update. This middleware owns the commit; handlers never commit.

Most updates (a page turn, a cached card) never touch the database, and on the hot path
the session's own bookkeeping costs more than the handler: a commit and a close each
hop through a greenlet, and `async with AsyncSession` closes in a task of its own (a
whole event-loop turn). A session that never took a connection and holds no changes is
therefore closed in place, with no commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from inspect import isawaitable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, object_session

log = logging.getLogger(__name__)

# Callbacks other middlewares and handlers register to run once the update's transaction
# committed (after a rollback nothing is called: whatever the update held is simply not
# kept). A callback may return an awaitable: that is where a handler speaks after it
# booked (a receipt after a payment); its failure is logged and undoes nothing.
AFTER_COMMIT = "after_commit"

_CONNECTED = "lyceum.connected"
_ON_USE = "lyceum.attach_on_use"


def attach_on_use(session: AsyncSession, obj: object) -> None:
    """Join a fully loaded, committed row (a cached one) to `session` only once the
    session is used: before its first query or flush.

    Adding an object costs a transaction and an identity-map entry, then detaching it at
    close; most updates never query. Joined before the first query, the row is the one
    `session.get()` and `select()` hand back for its key, so nothing sees two copies.
    """
    session.sync_session.info.setdefault(_ON_USE, []).append(obj)


def attach_if_changed(session: AsyncSession, obj: object) -> None:
    """Join `obj` now if it was changed in memory without the session being used."""
    if object_session(obj) is None and inspect(obj).modified:
        session.add(obj)


def _attach_waiting(session: Session) -> None:
    for obj in session.info.pop(_ON_USE, ()):
        if object_session(obj) is None:
            session.add(obj)


@event.listens_for(Session, "after_begin")
def _mark_connected(session: Session, _transaction: object, _connection: object) -> None:
    # Fired whenever the session takes a connection: only then is there I/O to finish.
    session.info[_CONNECTED] = True
    _attach_waiting(session)


@event.listens_for(Session, "before_flush")
def _attach_before_flush(session: Session, _context: object, _instances: object) -> None:
    # A flush may take the connection itself; what it writes is decided before that.
    _attach_waiting(session)


def _connected(session: AsyncSession) -> bool:
    return bool(session.sync_session.info.get(_CONNECTED))


def _needs_commit(session: AsyncSession) -> bool:
    return _connected(session) or bool(session.new or session.dirty or session.deleted)


async def _close(session: AsyncSession) -> None:
    if _connected(session):
        # As AsyncSession.__aexit__ does: a cancelled update still returns its connection.
        await asyncio.shield(session.close())
    elif session.in_transaction() or len(session.identity_map):
        # No connection, so no I/O: the sync close needs no greenlet.
        session.sync_session.close()
    # Else the session was never used (nothing added, nothing begun): nothing to release,
    # and closing would still build a fresh identity map for a session thrown away.


class DbSessionMiddleware(BaseMiddleware):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        # Steps the caller asked for come first (bot.polling: confirm a payment update).
        after_commit: list[Callable[[], object]] = data.setdefault(AFTER_COMMIT, [])
        session = self.sessionmaker()
        data["session"] = session
        try:
            result = await handler(event, data)
            if _needs_commit(session):
                await session.commit()
        except BaseException:
            try:
                await session.rollback()
            finally:
                await _close(session)
            raise
        await _close(session)
        for callback in after_commit:
            outcome = callback()
            if isawaitable(outcome):
                try:
                    await outcome
                except Exception:
                    log.exception("an after-commit step failed; what was committed stays")
        return result
