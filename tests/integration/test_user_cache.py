"""The user row cache never hands out stale or expired rows where it matters."""

from __future__ import annotations

from aiogram.types import User as TgUser
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.middlewares.user import UserCache, UserMiddleware
from bot.models import User, utcnow
from tests.support.updates import Harness, tg_user


def user_cache(app: App) -> UserCache:
    for middleware in app.dp.update.outer_middleware:
        if isinstance(middleware, UserMiddleware):
            return middleware.cache
    raise AssertionError("no UserMiddleware")


async def known_user(app: App, harness: Harness, user_id: int) -> tuple[TgUser, UserCache, User]:
    """A user who has written once: their Telegram user, the cache, and its row of them."""
    tg = tg_user(user_id)
    await harness.send("/help", tg)
    cache = user_cache(app)
    row = cache.get(user_id)
    assert row is not None
    return tg, cache, row


async def test_blocked_flag_set_elsewhere_is_cleared_when_the_user_writes(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    ann = tg_user(4242)
    await harness.send("/help", ann)
    assert user_cache(app).get(ann.id) is not None

    # The scheduler, in its own session, learns that Ann blocked the bot.
    row = await db.get(User, ann.id)
    assert row is not None
    row.is_blocked = True
    row.blocked_at = utcnow()
    await db.commit()
    assert user_cache(app).get(ann.id) is None  # that commit dropped the cached copy

    # Ann comes back and writes: she is reachable again.
    await harness.send("/help", ann)
    db.expire_all()
    row = await db.get(User, ann.id)
    assert row is not None and row.is_blocked is False


async def test_expired_rows_are_never_handed_out(app: App, harness: Harness) -> None:
    ann, cache, cached = await known_user(app, harness, 4343)
    async with app.sessionmaker() as session:
        session.add(cached)
        session.expire(cached)
    assert cache.get(ann.id) is None
    await harness.send("/help", ann)  # loads afresh, no lazy load outside a session
    assert "/paysupport" in harness.last_text()


async def test_concurrent_updates_of_one_user_do_not_crash(app: App, harness: Harness) -> None:
    import asyncio

    from tests.support.updates import message_update

    failures: list[BaseException] = []

    async def capture(event: object) -> bool:
        failures.append(event.exception)  # type: ignore[attr-defined]
        return True

    app.dp.errors.handlers.clear()
    app.dp.errors.register(capture)
    new = tg_user(4444)  # first contact: both updates race to create the row
    await asyncio.gather(*(harness.feed(message_update("/help", new)) for _ in range(4)))
    # Known now and cached: concurrent updates share nothing they could both change.
    await asyncio.gather(*(harness.feed(message_update("/help", new)) for _ in range(4)))
    assert not failures, failures


async def test_a_busy_users_row_is_still_read_again_after_the_ttl(
    app: App, harness: Harness
) -> None:
    """Every update re-stores the row it used; that must not reset its time to live."""
    import asyncio

    ann = tg_user(4545)
    cache = user_cache(app)
    await harness.send("/help", ann)
    first = cache.get(ann.id)
    assert first is not None
    cache.ttl = 0.2
    await harness.send("/help", ann)
    assert cache.get(ann.id) is first  # within the ttl: the same row, no query
    await asyncio.sleep(0.1)
    await harness.send("/help", ann)  # used again just before the ttl ends...
    await asyncio.sleep(0.15)
    await harness.send("/help", ann)  # ...yet read afresh once it has passed
    again = cache.get(ann.id)
    assert again is not None and again is not first


async def test_a_cached_row_changed_without_any_query_is_still_written(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    """/help touches no table: the cached row only joins the session when it changed."""
    ann, _, _ = await known_user(app, harness, 4646)
    renamed = ann.model_copy(update={"username": "ann_new", "first_name": "Annie"})
    await harness.send("/help", renamed)
    row = await db.get(User, ann.id)
    assert row is not None and (row.username, row.first_name) == ("ann_new", "Annie")


async def test_a_waiting_row_is_the_one_the_session_hands_back(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    from sqlalchemy import select

    from bot.middlewares.db import attach_on_use
    from bot.models import Event, EventKind

    ann, cache, _ = await known_user(app, harness, 4747)
    cached = cache.take(ann.id)
    assert cached is not None
    row = cached.user
    async with app.sessionmaker() as session:
        attach_on_use(session, row)
        # The first query joins it: get() and select() give that object, not a copy.
        assert await session.get(User, ann.id) is row
        assert (await session.scalars(select(User).where(User.id == ann.id))).one() is row
        row.language = "zh"
        await session.commit()
    async with app.sessionmaker() as session:
        attach_on_use(session, row)
        # A flush with no query before it: the row joins before the flush decides.
        row.timezone = "Asia/Shanghai"
        session.add(Event(user_id=ann.id, kind=EventKind.VIEW, data={}))
        await session.commit()
    fresh = await db.get(User, ann.id)
    assert fresh is not None and (fresh.language, fresh.timezone) == ("zh", "Asia/Shanghai")


async def test_a_row_in_use_is_not_handed_to_a_second_update(app: App, harness: Harness) -> None:
    ann, cache, _ = await known_user(app, harness, 4848)
    taken = cache.take(ann.id)
    assert taken is not None
    assert cache.take(ann.id) is None  # in use: a concurrent update reads its own row
    cache.keep(taken)
    assert cache.get(ann.id) is taken.user


async def test_a_failed_update_does_not_put_its_row_back(app: App, harness: Harness) -> None:
    from aiogram import Router

    ann, cache, before = await known_user(app, harness, 4949)

    boom = Router()

    @boom.message()
    async def change_then_fail(message: object, user: User) -> None:
        user.language = "zh"  # changed in memory, never committed
        raise RuntimeError("boom")

    app.dp.sub_routers.insert(0, boom)
    boom._parent_router = app.dp
    try:
        await harness.send("anything", ann)
    finally:
        app.dp.sub_routers.remove(boom)
        boom._parent_router = None
    assert cache.get(ann.id) is None  # the changed copy is gone; the next update reads
    await harness.send("/help", ann)
    again = cache.get(ann.id)
    assert again is not None and again is not before and again.language is None


async def test_an_update_that_never_uses_the_session_leaves_the_row_outside_it(
    app: App, harness: Harness
) -> None:
    from sqlalchemy.orm import object_session

    ann, cache, row = await known_user(app, harness, 5050)
    await harness.send("/help", ann)  # no query, no change: the row is never joined
    assert cache.get(ann.id) is row and object_session(row) is None
    await harness.send("/my", ann)  # the library is read: joined, then released
    assert cache.get(ann.id) is row and object_session(row) is None
