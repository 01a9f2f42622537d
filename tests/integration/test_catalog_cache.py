"""The in-memory catalog (pages, cards, search results) and card ownership follow every
commit of this process at once, whoever wrote it, and forget rolled-back changes."""

from __future__ import annotations

from datetime import timedelta

from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import CourseCB
from bot.models import Course, Creator, Lesson, ProductKind, User, utcnow
from bot.services import access
from bot.services.changes import Tracker
from bot.services.ownership import ENTITLEMENTS
from bot.services.search import CATALOG
from tests.support.updates import Harness, tg_user


async def a_course(db: AsyncSession, title: str = "Cached Rust", price: int = 1500) -> Course:
    owner = User(id=900, first_name="Olga", referral_code="olga900", interests=[])
    db.add(owner)
    for learner in (1001, 1002):
        db.add(User(id=learner, first_name="Ann", referral_code=f"ann{learner}", interests=[]))
    await db.flush()
    creator = Creator(user_id=owner.id, display_name="Olga's School")
    db.add(creator)
    await db.flush()
    course = Course(
        creator_id=creator.id,
        title=title,
        description="Ownership and borrowing",
        tags=["rust"],
        language="en",
        price_minor=price,
        currency="USD",
        stars_price=100,
        published=True,
    )
    db.add(course)
    await db.flush()
    db.add(Lesson(course_id=course.id, position=1, title="Hello", text="Hi"))
    await db.commit()
    return course


async def card_text(harness: Harness, course_id: int, user_id: int = 1001) -> str:
    """The card's text, or the alert that says there is none."""
    harness.session.clear()
    await harness.press(CourseCB(id=course_id).pack(), tg_user(user_id))
    alerts = [r.text or "" for r in harness.session.of_type(AnswerCallbackQuery) if r.show_alert]
    return alerts[-1] if alerts else harness.last_text()


async def test_a_committed_edit_shows_on_the_next_card_and_search(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    course = await a_course(db)
    assert "$15.00" in await card_text(harness, course.id)
    assert (await app.search.snapshot()).cards[course.id].price_minor == 1500

    # Another session of this process (a creator's /editcourse, an admin) commits.
    row = await db.get(Course, course.id)
    assert row is not None
    row.price_minor = 2500
    row.title = "Cached Rust, 2nd edition"
    db.add(Lesson(course_id=course.id, position=2, title="More", text="More"))
    await db.commit()
    # The snapshot is now older than that commit: the card is read from the database.
    text = await card_text(harness, course.id)
    assert "$25.00" in text and "2nd edition" in text and "Lessons: 2" in text

    # Once the fresh snapshot is in, it answers with the same card, and search finds it.
    await app.search._refresh  # type: ignore[misc]
    fresh = await app.search.snapshot()
    assert fresh.cards[course.id].price_minor == 2500
    assert fresh.cards[course.id].lesson_count == 2
    assert "$25.00" in await card_text(harness, course.id)
    await harness.send("2nd edition", tg_user())
    assert "2nd edition" in harness.last_text()

    row.published = False
    await db.commit()
    assert "not available" in await card_text(harness, course.id)


async def test_a_rolled_back_change_leaves_the_snapshot_fresh(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    course_id = (await a_course(db)).id
    snapshot = await app.search.snapshot()
    row = await db.get(Course, course_id)
    assert row is not None
    row.price_minor = 1
    await db.flush()
    await db.rollback()
    assert not CATALOG.changed_since(snapshot.changes_version)
    assert "$15.00" in await card_text(harness, course_id)


async def test_ownership_on_the_card_follows_grants_revokes_and_expiry(
    harness: Harness, db: AsyncSession
) -> None:
    course = await a_course(db)
    assert "You own" not in await card_text(harness, course.id)  # cached: owns nothing

    await access.grant(db, 1001, ProductKind.COURSE, course.id, days=None)
    await db.commit()
    assert "You own" in await card_text(harness, course.id)
    assert "You own" not in await card_text(harness, course.id, user_id=1002)

    await access.revoke(db, 1001, ProductKind.COURSE, course.id)
    await db.commit()
    assert "You own" not in await card_text(harness, course.id)

    # An entitlement that has run out is not ownership, cached or not.
    await access.grant(db, 1001, ProductKind.COURSE, course.id, days=1)
    await db.commit()
    assert "You own" in await card_text(harness, course.id)
    ent = await access.get_entitlement(db, 1001, ProductKind.COURSE, course.id)
    assert ent is not None
    ent.expires_at = utcnow() - timedelta(seconds=1)
    await db.commit()
    assert "You own" not in await card_text(harness, course.id)


async def test_tracker_counts_commits_not_flushes_savepoints_or_rollbacks(
    db: AsyncSession,
) -> None:
    course_id = (await a_course(db)).id
    before = ENTITLEMENTS.version
    await access.grant(db, 1001, ProductKind.COURSE, course_id, days=None)
    assert not ENTITLEMENTS.changed_since(before, 1001)  # flushed, not committed
    async with db.begin_nested():
        await access.revoke(db, 1001, ProductKind.COURSE, course_id)
    assert not ENTITLEMENTS.changed_since(before, 1001)  # a savepoint is not a commit
    await db.commit()
    assert ENTITLEMENTS.changed_since(before, 1001)
    assert not ENTITLEMENTS.changed_since(before, 1002)

    before = ENTITLEMENTS.version
    await access.grant(db, 1002, ProductKind.COURSE, course_id, days=None)
    await db.rollback()
    assert not ENTITLEMENTS.changed_since(before, 1002)


async def test_bulk_statements_count_as_a_change_to_every_key(db: AsyncSession) -> None:
    course = await a_course(db)
    await access.grant(db, 1001, ProductKind.COURSE, course.id, days=None)
    await db.commit()
    before = ENTITLEMENTS.version
    catalog_before = CATALOG.version
    from bot.models import Entitlement

    await db.execute(update(Entitlement).values(is_trial=False))
    await db.execute(update(Course).where(Course.id == course.id).values(price_minor=9))
    await db.commit()
    assert ENTITLEMENTS.changed_since(before, 424242)
    assert CATALOG.changed_since(catalog_before)
    assert await db.scalar(select(Course.price_minor).where(Course.id == course.id)) == 9

    catalog_before = CATALOG.version
    row = {"creator_id": course.creator_id, "title": "Bulk", "tags": [], "published": True}
    await db.execute(insert(Course), [row])  # a seed or an import
    await db.commit()
    assert CATALOG.changed_since(catalog_before)


def test_a_tracker_forgets_keys_past_its_bound_without_missing_a_change() -> None:
    from bot.services import changes

    tracker = Tracker(User, key=lambda u: u.id)
    try:
        tracker._committed({1})
        seen = tracker.version
        old_max, changes.MAX_KEYS = changes.MAX_KEYS, 3
        tracker._committed({2, 3, 4, 5})  # too many: the table is dropped
        assert tracker.changed_since(seen, 1)  # counted as changed, never as unchanged
        assert tracker.changed_since(seen, 99)
    finally:
        changes.MAX_KEYS = old_max
        changes._trackers.remove(tracker)


async def test_a_card_for_someone_who_owns_nothing_costs_no_query(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    from sqlalchemy import event

    course = await a_course(db)
    await card_text(harness, course.id)  # the snapshot is built
    await harness.send("/help", tg_user(1002))  # Bob's row is cached; he saw no card yet
    checkouts: list[object] = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(app.engine.sync_engine.pool, "checkout", listener)
    try:
        for _ in range(3):
            assert "You own" not in await card_text(harness, course.id, user_id=1002)
    finally:
        event.remove(app.engine.sync_engine.pool, "checkout", listener)
    assert checkouts == []


async def test_another_processs_grant_shows_within_the_ttl(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    from bot.models import Entitlement

    course = await a_course(db)
    assert "You own" not in await card_text(harness, course.id)
    # Written as another process would: no Session of this process sees it.
    async with app.engine.begin() as conn:
        await conn.execute(
            Entitlement.__table__.insert().values(
                user_id=1001,
                product_kind=ProductKind.COURSE,
                product_id=course.id,
                starts_at=utcnow() - timedelta(minutes=1),
                is_trial=False,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    assert "You own" not in await card_text(harness, course.id)  # not yet: within the ttl
    app.search.owned.ttl = 0  # the ttl has passed
    assert "You own" in await card_text(harness, course.id)
