"""A course card's extras (reviews, bundles, FAQ, challenges) come from memory, through
the real Dispatcher: no query in the steady state, and every commit of this process
shows on the next card; other processes' commits show once the set is read again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import CourseCB
from bot.marketplace.card_extras import CardExtras, card_extras
from bot.models import Bundle, BundleCourse, Challenge, Course, ProductKind, Question, utcnow
from bot.models.marketplace import Review
from bot.models.qa import QuestionStatus
from bot.services import access
from tests.integration.test_catalog_cache import a_course, card_text
from tests.support.updates import Harness, tg_user

OWNER, OTHER = 1001, 1002
T = TypeVar("T")


def labels(harness: Harness) -> list[str]:
    markup = harness.last_markup()
    assert markup is not None
    return [b.text for row in markup.inline_keyboard for b in row]


async def second_course(db: AsyncSession, course: Course) -> Course:
    other = Course(
        creator_id=course.creator_id,
        title="Cached Go",
        description="Goroutines",
        tags=["go"],
        language="en",
        price_minor=900,
        currency="USD",
        stars_price=60,
        published=True,
    )
    db.add(other)
    await db.commit()
    return other


def extras_of(app: App) -> CardExtras:
    return card_extras(app.search)


async def count_checkouts(app: App, cards: Callable[[], Awaitable[T]]) -> tuple[int, T]:
    """Connections the cards took from the pool. The funnel-event writer flushes views
    in the background on its own clock: stopped first, so only the cards' own count."""
    await app.events.stop(app.sessionmaker)
    checkouts: list[object] = []
    listener = lambda *_: checkouts.append(1)  # noqa: E731
    event.listen(app.engine.sync_engine.pool, "checkout", listener)
    try:
        out = await cards()
    finally:
        event.remove(app.engine.sync_engine.pool, "checkout", listener)
    return len(checkouts), out


async def test_each_new_extra_shows_on_the_next_card(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    course = await a_course(db)
    other = await second_course(db, course)
    await access.grant(db, OWNER, ProductKind.COURSE, course.id, days=None)
    await db.commit()
    text = await card_text(harness, course.id)
    assert "No reviews yet." in text and "bundle" not in text
    assert not [x for x in labels(harness) if "FAQ" in x or "Challenge" in x]

    db.add(
        Review(
            user_id=OWNER,
            course_id=course.id,
            creator_id=course.creator_id,
            rating=4,
            text="Clear and kind",
        )
    )
    await db.commit()
    text = await card_text(harness, course.id, OTHER)
    assert "(1 reviews)" in text and "★4 «Clear and kind»" in text

    bundle = Bundle(creator_id=course.creator_id, title="Rust and Go", stars_price=120)
    db.add(bundle)
    await db.flush()
    db.add_all([BundleCourse(bundle_id=bundle.id, course_id=c.id) for c in (course, other)])
    await db.commit()
    assert "Also in bundle «Rust and Go»" in await card_text(harness, course.id, OTHER)
    assert "Also in bundle «Rust and Go»" in await card_text(harness, other.id, OTHER)

    db.add(
        Question(
            course_id=course.id,
            creator_id=course.creator_id,
            user_id=OTHER,
            chat_id=OTHER,
            message_id=1,
            text="Lifetimes?",
            answer_text="Yes",
            status=QuestionStatus.ANSWERED,
            answered_at=utcnow(),
            published=True,
        )
    )
    await db.commit()
    await card_text(harness, course.id, OTHER)
    assert "❓ FAQ (1)" in labels(harness)

    db.add(
        Challenge(
            creator_id=course.creator_id,
            course_id=course.id,
            title="30 days of Rust",
            days=30,
            ends_at=utcnow() + timedelta(days=30),
        )
    )
    await db.commit()
    await card_text(harness, course.id, OWNER)
    assert any("30 days of Rust" in x for x in labels(harness))  # the owner may join
    await card_text(harness, course.id, OTHER)
    assert not any("30 days of Rust" in x for x in labels(harness))

    # A hidden review and an unpublished bundle leave the card as well.
    review = await db.get(Review, 1)
    assert review is not None
    review.hidden = True
    bundle.published = False
    await db.commit()
    text = await card_text(harness, course.id, OTHER)
    assert "No reviews yet." in text and "bundle" not in text

    # Once the whole set is read again, it says the same, and asks nothing more.
    extras = extras_of(app)
    extras.max_age = 0
    await card_text(harness, course.id, OWNER)
    extras.max_age = 60
    assert extras._refresh is not None
    await extras._refresh
    queries, text = await count_checkouts(app, lambda: card_text(harness, course.id, OWNER))
    assert queries == 0
    assert "No reviews yet." in text and "bundle" not in text
    assert "❓ FAQ (1)" in labels(harness)
    assert any("30 days of Rust" in x for x in labels(harness))


async def test_cards_of_courses_never_shown_cost_no_query(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    course = await a_course(db)
    others = [await second_course(db, course) for _ in range(3)]
    db.add(
        Review(
            user_id=OWNER,
            course_id=others[0].id,
            creator_id=course.creator_id,
            rating=5,
            text="Best",
        )
    )
    await db.commit()
    await card_text(harness, course.id)  # the first card reads the extras of every course
    await harness.send("/help", tg_user(OTHER))  # Bob's row is cached too

    async def cards() -> list[str]:
        return [await card_text(harness, c.id, OTHER) for c in others]

    queries, texts = await count_checkouts(app, cards)
    assert queries == 0
    assert "★5 «Best»" in texts[0] and "No reviews yet." in texts[1]


async def test_another_processs_review_shows_once_the_set_is_read_again(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    course = await a_course(db)
    assert "No reviews yet." in await card_text(harness, course.id)
    # Written as another process (webhook worker) would: no Session of this one sees it.
    async with app.engine.begin() as conn:
        await conn.execute(
            Review.__table__.insert().values(
                user_id=OWNER,
                course_id=course.id,
                creator_id=course.creator_id,
                rating=3,
                text="Fine",
                counted=True,
                hidden=False,
                helpful=0,
                reports=0,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    assert "No reviews yet." in await card_text(harness, course.id)  # within max_age
    extras = extras_of(app)
    extras.max_age = 0  # max_age has passed: this card starts the read, the next shows it
    await harness.press(CourseCB(id=course.id).pack(), tg_user(OWNER))
    extras.max_age = 60
    assert extras._refresh is not None
    await extras._refresh
    assert "★3 «Fine»" in await card_text(harness, course.id)


async def test_every_courses_summary_read_at_once_is_each_ones_read_alone(
    db: AsyncSession,
) -> None:
    import random

    from bot.marketplace.reviews import EMPTY, all_summaries, load_summary
    from bot.models import User

    course = await a_course(db)
    courses = [course, *[await second_course(db, course) for _ in range(3)]]
    rng = random.Random(3)
    db.add_all(
        [User(id=u, first_name="R", referral_code=f"r{u}", interests=[]) for u in range(2000, 2012)]
    )
    await db.flush()
    for uid in range(2000, 2012):
        for c in courses:
            if rng.random() < 0.7:
                db.add(Review(user_id=uid, course_id=c.id, creator_id=course.creator_id,
                              rating=rng.randint(1, 5), text=rng.choice(["", "ok", "good"]),
                              helpful=rng.choice([0, 0, 1, 2]), counted=rng.random() < 0.9,
                              hidden=rng.random() < 0.1,
                              created_at=utcnow() - timedelta(hours=rng.randrange(3))))  # fmt: skip
    await db.commit()
    every = await all_summaries(db)
    alone = {c.id: await load_summary(db, c.id) for c in courses}
    assert {c: s for c, s in alone.items() if s != EMPTY} == every
    assert any(len(s.top) == 2 for s in every.values())
