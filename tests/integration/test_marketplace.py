"""Reviews, creator pages, follows and creators for you, through the real Dispatcher."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import CourseCB, FollowCB, VoteCB
from bot.marketplace import matching, profiles, reviews
from bot.models import Course, Creator, Entitlement, Job, Lesson, ProductKind, User, utcnow
from bot.models.marketplace import Follow, Review
from bot.services import access
from bot.services.recommendations import recommendations
from tests.support.updates import Harness, tg_user

TEACHER = tg_user(500, "Teacher")
OWNER = tg_user(7, "Olga")


async def _world(db: AsyncSession) -> tuple[int, int]:
    db.add(User(id=TEACHER.id, first_name="Teacher", referral_code="t500"))
    await db.flush()
    creator = Creator(user_id=TEACHER.id, display_name="Teacher")
    db.add(creator)
    await db.flush()
    course = Course(
        creator_id=creator.id,
        title="Python",
        description="python",
        published=True,
        tags=["python"],
    )
    db.add(course)
    await db.flush()
    db.add(Lesson(course_id=course.id, position=1, text="one"))
    await db.commit()
    return creator.id, course.id


async def _buyer(db: AsyncSession, user_id: int, course_id: int, days_ago: float = 2) -> None:
    db.add(User(id=user_id, first_name="Ann", referral_code=f"r{user_id}"))
    await db.flush()
    db.add(
        Entitlement(
            user_id=user_id,
            product_kind=ProductKind.COURSE,
            product_id=course_id,
            starts_at=utcnow() - timedelta(days=days_ago),
        )
    )
    await db.commit()


def test_one_five_star_review_does_not_beat_forty_4_8s() -> None:
    scores = {
        1: (1, 5.0, reviews.bayesian(5.0, 1)),
        2: (40, 4.8, reviews.bayesian(4.8 * 40, 40)),
    }
    assert reviews.rank_by_rating([1, 2, 3], scores) == [2, 1, 3]


async def test_reviews_from_buyers_only_edited_not_repeated(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    _creator_id, course_id = await _world(db)
    stranger, fresh, ann = tg_user(601), tg_user(602), tg_user(603)
    db.add(User(id=stranger.id, first_name="S", referral_code="s601"))
    await db.commit()
    await _buyer(db, fresh.id, course_id, days_ago=0.1)
    await _buyer(db, ann.id, course_id)

    await harness.send(f"/review {course_id} 5 great", stranger)
    assert "Only learners who bought" in harness.last_text()
    await harness.send(f"/review {course_id} 5 great", fresh)
    assert "after you have had it for a day" in harness.last_text()
    await harness.send(f"/review {course_id} 7 great", ann)
    assert "from 1 to 5" in harness.last_text()
    await harness.send(f"/review {course_id} 4 " + "x" * 501, ann)
    assert "at most 500" in harness.last_text()
    assert await db.scalar(select(func.count(Review.id))) == 0

    # The card is read (and its ratings cached) before the review.
    await harness.press(CourseCB(id=course_id).pack(), ann)
    assert "No reviews yet" in harness.last_text()
    await harness.send(f"/review {course_id} 4 Clear & <useful>", ann)
    assert "saved" in harness.last_text()
    await harness.send(f"/review {course_id} 5 Even better", ann)
    assert "updated" in harness.last_text()
    rows = (await db.execute(select(Review.rating, Review.text))).all()
    assert rows == [(5, "Even better")]
    # The creator's notice is a job for the scheduler, queued once.
    assert await db.scalar(select(func.count(Job.id)).where(Job.kind == reviews.REVIEW_NOTICE)) == 1

    await harness.press(CourseCB(id=course_id).pack(), ann)
    card = harness.last_text()
    assert "5.0 (1 reviews)" in card and "Even better" in card

    # Helpful: once per user; a forged review id changes nothing.
    review_id = await db.scalar(select(Review.id))
    assert review_id is not None
    await harness.press(VoteCB(r=review_id, k=0).pack(), stranger)
    await harness.press(VoteCB(r=review_id, k=0).pack(), stranger)
    await harness.press(VoteCB(r=review_id + 99, k=0).pack(), stranger)
    await harness.press(VoteCB(r=review_id, k=7).pack(), stranger)
    db.expire_all()
    assert await db.scalar(select(Review.helpful)) == 1

    # The creator answers once; another creator cannot.
    await harness.send(f"/answer {review_id} Thanks!", TEACHER)
    await harness.send(f"/answer {review_id} Again", TEACHER)
    assert "already answered" in harness.last_text()
    db.expire_all()
    assert await db.scalar(select(Review.reply)) == "Thanks!"

    # A refund takes the review's weight away.
    await access.revoke(db, ann.id, ProductKind.COURSE, course_id)
    await db.commit()
    await harness.press(CourseCB(id=course_id).pack(), stranger)
    assert "No reviews yet" in harness.last_text()


async def test_owner_hides_a_review(app: App, harness: Harness, db: AsyncSession) -> None:
    _creator_id, course_id = await _world(db)
    ann = tg_user(603)
    await _buyer(db, ann.id, course_id)
    await harness.send(f"/review {course_id} 1 spam", ann)
    review_id = await db.scalar(select(Review.id))
    await harness.send(f"/hidereview {review_id}", ann)
    assert "Only platform owners" in harness.last_text()
    await harness.send(f"/hidereview {review_id}", OWNER)
    assert "hidden" in harness.last_text()
    await harness.press(CourseCB(id=course_id).pack(), ann)
    assert "No reviews yet" in harness.last_text()


async def test_follow_and_new_course_notice_once(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    creator_id, _course_id = await _world(db)
    ann = tg_user(603)
    await harness.send(f"/creator {creator_id}", ann)
    assert "Teacher" in harness.last_text()
    await harness.press(FollowCB(id=creator_id, on=1).pack(), ann)
    await harness.press(FollowCB(id=creator_id, on=1).pack(), ann)
    await harness.press(FollowCB(id=creator_id + 50, on=1).pack(), ann)
    assert await db.scalar(select(func.count(Follow.id))) == 1
    # Following oneself is refused.
    await harness.press(FollowCB(id=creator_id, on=1).pack(), TEACHER)
    assert await db.scalar(select(func.count(Follow.id))) == 1

    course = Course(creator_id=creator_id, title="New one", published=False)
    db.add(course)
    await db.commit()
    for _ in range(2):
        course.published = False
        await db.flush()
        await profiles.course_published(db, course)
    await db.commit()
    jobs = await db.scalar(select(func.count(Job.id)).where(Job.kind == profiles.NEW_COURSE))
    assert jobs == 1
    await harness.send(f"/start p_{creator_id}", ann)
    assert "Teacher" in harness.last_text()


def test_creator_ranking_sums_course_scores_and_excludes() -> None:
    ids = [1, 2, 3, 4]
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    creator_of = {1: 10, 2: 20, 3: 20, 4: 30}
    # Creator 20 has two good courses; 30 is excluded (followed); course 1 is owned.
    assert matching.rank_creators(ids, scores, creator_of, owned=[1], exclude={30}) == [20]


async def test_creators_for_you_never_suggests_followed_or_self(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    creator_id, _course_id = await _world(db)
    db.add(User(id=800, first_name="Other", referral_code="o800"))
    await db.flush()
    other = Creator(user_id=800, display_name="Other")
    db.add(other)
    await db.flush()
    db.add(Course(creator_id=other.id, title="Python two", published=True, tags=["python"]))
    db.add(User(id=603, first_name="Ann", referral_code="a603", interests=["programming"]))
    await db.commit()
    app.search.invalidate()
    found = await matching.creators_for(db, 603, catalog=app.search)
    assert {c.id for c in found} == {creator_id, other.id}
    found = await matching.creators_for(db, 603, catalog=app.search, follows={other.id})
    assert [c.id for c in found] == [creator_id]
    found = await matching.creators_for(db, TEACHER.id, catalog=app.search)
    assert creator_id not in {c.id for c in found}
    await harness.send("/creators", tg_user(603))
    assert "Creators for you" in harness.last_text()
    await recommendations(app.search).close()
