"""The platform owners' queue of reported reviews (/reported): most reported first, Hide
or Keep under each, a polite refusal for everyone else, forged buttons change nothing."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import CourseCB, ModerateCB, VoteCB
from bot.models.marketplace import Review
from tests.integration.test_marketplace import OWNER, _buyer, _world
from tests.support.updates import Harness, tg_user


async def test_reported_reviews_for_owners_most_reported_first(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    _creator_id, course_id = await _world(db)
    ann, bo = tg_user(603), tg_user(604)
    reporters = [tg_user(700 + i) for i in range(3)]
    await _buyer(db, ann.id, course_id)
    await _buyer(db, bo.id, course_id)
    await harness.send(f"/review {course_id} 1 buy my stuff elsewhere", ann)
    await harness.send(f"/review {course_id} 2 meh", bo)
    spam = await db.scalar(select(Review.id).where(Review.user_id == ann.id))
    meh = await db.scalar(select(Review.id).where(Review.user_id == bo.id))
    assert spam is not None and meh is not None
    for who in reporters:
        await harness.press(VoteCB(r=spam, k=1).pack(), who)
    await harness.press(VoteCB(r=meh, k=1).pack(), reporters[0])

    # Not an owner: a polite refusal, for the command and a forged button alike.
    await harness.send("/reported", ann)
    assert "only platform owners" in harness.last_text()
    await harness.press(ModerateCB(r=spam, a=1).pack(), ann)
    db.expire_all()
    assert await db.scalar(select(Review.hidden).where(Review.id == spam)) is False

    await harness.send("/reported", OWNER)
    listing = harness.last_text()
    assert listing.index(f"#{spam} · 3 reports") < listing.index(f"#{meh} · 1 reports")
    assert harness.button(f"Hide #{spam}") == ModerateCB(r=spam, a=1).pack()

    # Forged: an unknown review, an unknown action.
    await harness.press(ModerateCB(r=spam + 99, a=1).pack(), OWNER)
    await harness.press(ModerateCB(r=spam, a=5).pack(), OWNER)
    db.expire_all()
    assert await db.scalar(select(Review.hidden).where(Review.id == spam)) is False

    await harness.click(f"Hide #{spam}", OWNER)
    await harness.click(f"Keep #{meh}", OWNER)
    db.expire_all()
    rows = dict((await db.execute(select(Review.id, Review.hidden))).all())
    assert rows == {spam: True, meh: False}
    assert await db.scalar(select(Review.reports).where(Review.id == meh)) == 0
    assert "No reported reviews" in harness.last_text()
    # The same reporter cannot put a kept review back in the queue.
    await harness.press(VoteCB(r=meh, k=1).pack(), reporters[0])
    db.expire_all()
    assert await db.scalar(select(Review.reports).where(Review.id == meh)) == 0
    # The hidden one is off the card; the kept one is on it.
    await harness.press(CourseCB(id=course_id).pack(), ann)
    assert "meh" in harness.last_text() and "elsewhere" not in harness.last_text()
