"""/mydata and /deleteme through the real Dispatcher, and the pruning of raw events.

The world gives the learner Ann a row in every table that can hold a user id, and her
friend Bob rows next to hers: the export must hold all of Ann's and none of Bob's ids;
erasure must remove Ann's personal rows, keep the money, end her access (with the
paid-group removal queued) and leave Bob's data alone.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiogram.methods import (
    AnswerCallbackQuery,
    EditUserStarSubscription,
    SendDocument,
    SendMessage,
)
from aiogram.types import BufferedInputFile
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.keyboards.callbacks import EraseCB
from bot.models import (
    AffiliateAttribution,
    AffiliateEntry,
    AffiliateLink,
    Base,
    Certificate,
    Challenge,
    ChallengeMember,
    CheckIn,
    CheckoutReminder,
    Course,
    Creator,
    Delivery,
    Enrollment,
    Entitlement,
    Event,
    Follow,
    FunnelProgress,
    Gift,
    Group,
    GroupMember,
    Job,
    JobStatus,
    LedgerEntry,
    Lesson,
    MoneyDaily,
    Nudge,
    Order,
    PartnerOptIn,
    Partnership,
    Payment,
    Plan,
    PlanChat,
    PromoCampaign,
    PromoClick,
    PromoImpression,
    Question,
    Quiz,
    QuizAttempt,
    Review,
    ReviewVote,
    User,
    WinbackOffer,
)
from bot.services import access, privacy
from bot.services.users import TelegramProfile, upsert_user
from tests.support.updates import Harness, callback_update, tg_user

ANN = tg_user(424201, "Annabel")
BOB = tg_user(777001, "Bob")
MAYA = tg_user(515151, "Maya")


# --- the schema is covered ------------------------------------------------------------


def test_every_column_holding_a_user_id_is_exported_or_explained() -> None:
    missing = []
    for name in Base.metadata.tables:
        for column in privacy.user_columns(name):
            covered = column in privacy.SUBJECT_COLUMNS.get(name, ())
            if not covered and (name, column) not in privacy.OTHER_PEOPLES:
                missing.append(f"{name}.{column}")
    assert not missing, f"add these to bot.services.privacy.SUBJECT_COLUMNS: {missing}"
    for name, columns in privacy.SUBJECT_COLUMNS.items():
        assert set(columns) <= set(privacy.user_columns(name)), name


def test_erasure_decides_for_every_table_of_a_learner() -> None:
    decided = {
        *privacy.KEPT_FOR_ACCOUNTING,
        *privacy.DELETED,
        "users",  # blanked
        "creators",  # refused: a creator is not erased from the bot
        "reviews",  # deleted through the ORM (rating caches)
        "review_votes",
        "stats_funnel",  # detached from the learner
    }
    assert set(privacy.SUBJECT_COLUMNS) == decided


# --- a world where Ann has a row everywhere ---------------------------------------------


async def _world(app: App, db: AsyncSession) -> dict[str, int]:
    now = app.scheduler.clock.now()
    for who in (ANN, BOB, MAYA):
        await upsert_user(db, TelegramProfile(who.id, who.first_name, username=who.first_name))
    ann = await db.get(User, ANN.id)
    assert ann is not None
    ann.referred_by, ann.interests, ann.timezone = BOB.id, ["python"], "Europe/Berlin"
    maya = Creator(user_id=MAYA.id, display_name="Maya")
    db.add(maya)
    await db.flush()
    course = Course(creator_id=maya.id, title="Python basics", published=True, stars_price=50)
    db.add(course)
    await db.flush()
    db.add_all([Lesson(course_id=course.id, position=i, text=f"L{i}") for i in (1, 2)])
    plan = Plan(
        creator_id=maya.id, title="Inner circle", published=True, period_days=30, stars_price=90
    )
    db.add(plan)
    group = Group(chat_id=-100500, kind="supergroup", title="Circle", creator_id=maya.id)
    db.add(group)
    await db.flush()
    db.add(PlanChat(plan_id=plan.id, group_id=group.id))
    order = Order(
        public_ref="ref-ann-1",
        user_id=ANN.id,
        creator_id=maya.id,
        product_kind="course",
        product_id=course.id,
        method="stars",
        currency="XTR",
        list_amount_minor=50,
        amount_minor=50,
        status="paid",
        paid_at=now,
    )
    pending = Order(
        public_ref="ref-ann-2",
        user_id=ANN.id,
        creator_id=maya.id,
        product_kind="plan",
        product_id=plan.id,
        method="stars",
        currency="XTR",
        list_amount_minor=90,
        amount_minor=90,
        expires_at=now + timedelta(days=1),
    )
    db.add_all([order, pending])
    await db.flush()
    raw = {"credited": True, "order_info": {"name": "Annabel Lee", "phone_number": "+4912345"}}
    payment = Payment(
        order_id=order.id,
        user_id=ANN.id,
        method="stars",
        currency="XTR",
        amount_minor=50,
        telegram_payment_charge_id="st-ann",
        is_recurring=True,
        raw=raw,
    )
    db.add(payment)
    await db.flush()
    db.add(
        LedgerEntry(
            payment_id=payment.id,
            creator_id=maya.id,
            kind="sale",
            currency="XTR",
            gross_minor=50,
            fee_minor=5,
            net_minor=45,
        )
    )
    # Access through the real hooks: drip enrolls, the plan queues its invite.
    await access.grant(db, ANN.id, "course", course.id, days=None, now=now)
    await access.grant(db, ANN.id, "plan", plan.id, days=30, now=now)
    await access.grant(db, BOB.id, "course", course.id, days=None, now=now)
    bob_link = AffiliateLink(
        code="bobcode", user_id=BOB.id, creator_id=maya.id, product_kind="course", product_id=1
    )
    ann_link = AffiliateLink(
        code="anncode", user_id=ANN.id, creator_id=maya.id, product_kind="course", product_id=1
    )
    db.add_all([bob_link, ann_link])
    await db.flush()
    bob_review = Review(user_id=BOB.id, course_id=course.id, creator_id=maya.id, rating=5)
    ann_review = Review(
        user_id=ANN.id, course_id=course.id, creator_id=maya.id, rating=4, text="Annabel says hi"
    )
    db.add_all([bob_review, ann_review])
    await db.flush()
    bob_review.helpful = 1
    ann_delivery = await db.scalar(select(Delivery).where(Delivery.user_id == ANN.id))
    assert ann_delivery is not None
    quiz = Quiz(lesson_id=ann_delivery.lesson_id)
    db.add(quiz)
    await db.flush()
    db.add(QuizAttempt(quiz_id=quiz.id, user_id=ANN.id, delivery_id=ann_delivery.id))
    db.add(
        Certificate(
            serial="annserial",
            user_id=ANN.id,
            course_id=course.id,
            learner_name="Annabel",
            course_title=course.title,
            creator_name="Maya",
        )
    )
    challenge = Challenge(
        creator_id=maya.id,
        course_id=course.id,
        title="30 days",
        days=30,
        ends_at=now + timedelta(days=30),
    )
    db.add(challenge)
    await db.flush()
    db.add_all(
        [
            ChallengeMember(challenge_id=challenge.id, user_id=ANN.id, joined_at=now),
            CheckIn(
                challenge_id=challenge.id,
                user_id=ANN.id,
                day=now.date(),
                chat_id=ANN.id,
                message_id=1,
                content_type="text",
                text="day one",
                created_at=now,
            ),
            PartnerOptIn(user_id=ANN.id, course_id=course.id, created_at=now),
            Partnership(
                course_id=course.id,
                user_a=BOB.id,
                user_b=ANN.id,
                proposed_at=now,
                expires_at=now + timedelta(days=2),
            ),
            Question(
                course_id=course.id,
                creator_id=maya.id,
                user_id=ANN.id,
                chat_id=ANN.id,
                message_id=2,
                text="Why?",
            ),
        ]
    )
    campaign = PromoCampaign(creator_id=maya.id, course_id=course.id, bid_minor=2, status="active")
    db.add(campaign)
    await db.flush()
    seen = PromoImpression(
        token="annseen",
        campaign_id=campaign.id,
        course_id=course.id,
        user_id=ANN.id,
        placement="catalog",
        price_minor=1,
    )
    db.add(seen)
    await db.flush()
    db.add(
        PromoClick(
            campaign_id=campaign.id,
            impression_id=seen.id,
            course_id=course.id,
            user_id=ANN.id,
            day=now.date(),
            price_minor=1,
        )
    )
    offer = WinbackOffer(user_id=ANN.id, plan_id=plan.id, percent=20, reason="cancel")
    db.add(offer)
    await db.flush()
    db.add_all(
        [
            AffiliateAttribution(
                user_id=ANN.id,
                product_kind="course",
                product_id=course.id,
                link_id=bob_link.id,
                affiliate_id=BOB.id,
                clicked_at=now,
            ),
            AffiliateEntry(
                creator_id=maya.id,
                affiliate_id=ANN.id,
                kind="commission",
                currency="XTR",
                amount_minor=3,
                buyer_id=BOB.id,
                payable_at=now,
            ),
            Gift(
                token="gifttoken",
                order_id=order.id,
                buyer_id=ANN.id,
                creator_id=maya.id,
                product_kind="course",
                product_id=course.id,
                status="claimed",
                claimed_by=BOB.id,
            ),
            CheckoutReminder(
                order_id=pending.id, user_id=ANN.id, product_kind="plan", product_id=plan.id
            ),
            ReviewVote(
                review_id=bob_review.id, course_id=course.id, user_id=ANN.id, kind="helpful"
            ),
            Follow(user_id=ANN.id, creator_id=maya.id),
            Follow(user_id=BOB.id, creator_id=maya.id),
            GroupMember(group_id=group.id, user_id=ANN.id, status="member"),
            FunnelProgress(
                product_kind="course",
                product_id=course.id,
                user_id=ANN.id,
                creator_id=maya.id,
                entered_at=now,
                paid_at=now,
            ),
            Nudge(user_id=ANN.id, course_id=course.id, sent_at=now),
            Event(user_id=ANN.id, kind="view", course_id=course.id, data={"q": "python"}),
            Event(user_id=BOB.id, kind="view", course_id=course.id),
            Job(kind="notice", payload={"chat": ANN.id, "text": "for Annabel"}, run_at=now),
            Job(kind="notice", payload={"chat": BOB.id, "text": "for Bob"}, run_at=now),
            Job(kind="growth.remind", payload={"order": pending.id}, run_at=now),
            Job(kind="growth.winback", payload={"offer": offer.id}, run_at=now),
            Job(
                kind="broadcast.msg",
                payload={"users": [BOB.id, ANN.id], "msg": {"text": "news"}},
                run_at=now,
            ),
        ]
    )
    db.add(
        MoneyDaily(
            day=now.date(),
            creator_id=maya.id,
            product_kind="course",
            product_id=course.id,
            currency="XTR",
            source="direct",
            sales=1,
        )
    )
    await db.commit()
    return {"course": course.id, "plan": plan.id, "order": order.id, "bob_review": bob_review.id}


def _document(harness: Harness) -> dict[str, Any]:
    sent = harness.session.of_type(SendDocument)
    assert sent, "no document was sent"
    file = sent[-1].document
    assert isinstance(file, BufferedInputFile)
    assert file.filename == f"lyceum-data-{ANN.id}.json"
    return json.loads(file.data)  # type: ignore[no-any-return]


async def _count(db: AsyncSession, model: type, **where: Any) -> int:
    db.expire_all()
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(await db.scalar(query) or 0)


async def test_mydata_holds_every_table_of_the_learner_and_nobody_else(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    await _world(app, db)
    await harness.send("/mydata", ANN)
    assert "everything Lyceum holds about you" in harness.session.texts()[-1]
    doc = _document(harness)
    tables = doc["tables"]
    empty = [name for name, rows in tables.items() if not rows]
    assert empty == ["creators"], empty  # Ann sells nothing; everything else is there
    assert tables["users"][0]["first_name"] == "Annabel"
    assert tables["payments"][0]["raw"]["order_info"]["name"] == "Annabel Lee"
    assert {r["text"] for r in tables["reviews"]} == {"Annabel says hi"}
    assert tables["scheduled_messages"], "her pending notice"
    # Other people's ids are not hers to take: Bob, who referred her and got her gift.
    text = json.dumps(doc)
    assert str(BOB.id) not in text
    assert "for Bob" not in text

    # In a group the file is not sent.
    harness.session.clear()
    await harness.feed(_group_message("/mydata", ANN))
    assert harness.session.of_type(SendDocument) == []
    assert "private chat" in harness.session.texts()[-1]


def _group_message(text: str, user: Any) -> Any:
    from datetime import UTC, datetime

    from aiogram.types import Chat, Message, MessageEntity, Update

    msg = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=-4242, type="supergroup", title="Somewhere"),
        from_user=user,
        text=text,
        entities=[MessageEntity(type="bot_command", offset=0, length=len(text))],
    )
    return Update(update_id=99_000_001, message=msg)


async def _snapshot(db: AsyncSession) -> dict[str, int]:
    models = (User, Event, Enrollment, Delivery, Review, ReviewVote, Follow, Order, Payment, Job)
    return {m.__name__: await _count(db, m) for m in models} | {
        "revoked": int(
            await db.scalar(
                select(func.count())
                .select_from(Entitlement)
                .where(Entitlement.revoked_at.is_not(None))
            )
            or 0
        )
    }


async def test_deleteme_erases_keeps_the_money_and_ends_access(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    ids = await _world(app, db)
    await harness.send("/deleteme", ANN)
    preview = harness.last_text()
    assert "Python basics" in preview and "Inner circle" in preview
    assert "stay" in preview and "removed from the plans' groups" in preview
    confirm = harness.button("Yes, erase")
    before = await _snapshot(db)

    # Someone else pressing Ann's button: refused, nothing changes.
    await harness.press(confirm, BOB)
    assert "not yours" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    # A forged one with Bob's own id but a stamp he never got: refused too.
    forged = EraseCB.unpack(confirm).model_copy(update={"u": BOB.id}).pack()
    await harness.press(forged, BOB)
    assert "already used" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    # A stale one (asked an hour ago).
    stale = EraseCB.unpack(confirm)
    stale = stale.model_copy(update={"at": stale.at - 3600}).pack()
    await harness.press(stale, ANN)
    assert "expired" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    # Garbage data under the prefix: a polite answer, nothing erased.
    await harness.press("er:abc:x", ANN)
    assert await _snapshot(db) == before

    app.events.record("view", user_id=ANN.id, course_id=ids["course"])  # not yet written
    harness.session.clear()
    await harness.press(confirm, ANN)
    await app.events.flush(app.sessionmaker)
    said = harness.session.texts()[-1]
    assert "erased" in said and "stay" in said
    # Her Stars subscription renewal is cancelled with Telegram, after the commit.
    cancels = harness.session.of_type(EditUserStarSubscription)
    assert [(c.user_id, c.telegram_payment_charge_id, c.is_canceled) for c in cancels] == [
        (ANN.id, "st-ann", True)
    ]

    db.expire_all()
    ann = await db.get(User, ANN.id)
    assert ann is not None
    assert (ann.first_name, ann.username, ann.last_name, ann.language_code) == (
        "",
        None,
        None,
        None,
    )
    assert ann.interests == [] and ann.timezone is None and ann.referred_by is None
    for model in (Event, Enrollment, Delivery, Review, ReviewVote, Follow, Nudge, GroupMember):
        assert await _count(db, model, user_id=ANN.id) == 0, model.__name__
    for model in (AffiliateLink, AffiliateAttribution, CheckoutReminder, WinbackOffer):
        assert await _count(db, model, user_id=ANN.id) == 0, model.__name__
    assert await _count(db, FunnelProgress) == 1  # the creator's funnel still counts her
    assert await _count(db, FunnelProgress, user_id=ANN.id) == 0
    # Money stays, without her personal fields.
    assert await _count(db, Order, user_id=ANN.id) == 2
    payment = await db.scalar(select(Payment).where(Payment.user_id == ANN.id))
    assert payment is not None and payment.raw == {"credited": True}
    assert await _count(db, LedgerEntry) == 1
    assert await _count(db, AffiliateEntry, affiliate_id=ANN.id) == 1
    assert await _count(db, Gift, buyer_id=ANN.id) == 1
    assert await _count(db, MoneyDaily) == 1
    # Access ended: every entitlement revoked, the paid-group removal queued.
    ents = list(await db.scalars(select(Entitlement).where(Entitlement.user_id == ANN.id)))
    assert ents and all(e.revoked_at is not None for e in ents)
    removal = list(await db.scalars(select(Job).where(Job.kind == "grp_remove")))
    assert [j.payload for j in removal] == [{"user": ANN.id, "plan": ids["plan"]}]
    # Her scheduled messages are gone; Bob's stay, also in the shared broadcast.
    jobs = list(await db.scalars(select(Job).where(Job.status == JobStatus.PENDING)))
    payloads = [j.payload for j in jobs]
    assert {"chat": ANN.id, "text": "for Annabel"} not in payloads
    assert {"chat": BOB.id, "text": "for Bob"} in payloads
    assert not any(j.kind in ("growth.remind", "growth.winback") for j in jobs)
    broadcast = next(j for j in jobs if j.kind == "broadcast.msg")
    assert broadcast.payload["users"] == [BOB.id]
    # Bob's things are his: his review (less her vote), his follow, his event, his access.
    review = await db.get(Review, ids["bob_review"])
    assert review is not None and review.helpful == 0
    assert await _count(db, Follow, user_id=BOB.id) == 1
    assert await _count(db, Event, user_id=BOB.id) == 1
    assert await _count(db, Enrollment, user_id=BOB.id) == 1
    pending = await db.scalar(select(Order).where(Order.public_ref == "ref-ann-2"))
    assert pending is not None and pending.expires_at is not None
    assert pending.expires_at <= app.scheduler.clock.now()

    # Pressing again erases nothing more and says so.
    after = await _snapshot(db)
    harness.session.clear()
    await harness.press(confirm, ANN)
    assert "already used" in (harness.session.of_type(AnswerCallbackQuery)[-1].text or "")
    assert await _snapshot(db) == after

    # What /mydata holds now: no name, no progress; the money, with her account number.
    harness.session.clear()
    await harness.send("/mydata", ANN)
    tables = _document(harness)["tables"]
    assert tables["events"] == [] and tables["enrollments"] == [] and tables["reviews"] == []
    assert len(tables["orders"]) == 2 and "Annabel" not in json.dumps(tables["payments"])


async def test_keep_my_data_and_creators_are_not_erased(
    app: App, harness: Harness, db: AsyncSession
) -> None:
    await _world(app, db)
    await harness.send("/deleteme", ANN)
    keep = harness.button("Keep")
    before = await _snapshot(db)
    await harness.press(keep, ANN)
    assert "Nothing was erased" in harness.last_text()
    assert await _snapshot(db) == before

    harness.session.clear()
    await harness.send("/deleteme", MAYA)
    assert "platform owner" in harness.last_text()
    assert harness.last_markup() is None


async def test_raw_events_older_than_events_keep_days_are_pruned(
    app: App, db: AsyncSession
) -> None:
    now = app.scheduler.clock.now()
    await _world(app, db)
    old = Event(user_id=BOB.id, kind="view", course_id=1, created_at=now - timedelta(days=40))
    recent = Event(user_id=BOB.id, kind="view", course_id=1, created_at=now - timedelta(days=5))
    db.add_all([old, recent])
    await db.commit()
    old_id, recent_id = old.id, recent.id
    registry = app.scheduler.registry
    privacy.register_pruning(registry, keep_days=30)
    await privacy.ensure_pruning(db, now)
    await privacy.ensure_pruning(db, now)  # once only
    await db.commit()
    assert await _count(db, Job, kind=privacy.PRUNE) == 1
    await app.scheduler.drain()
    assert await db.get(Event, old_id) is None
    assert await db.get(Event, recent_id) is not None
    assert await _count(db, MoneyDaily) == 1  # the rollups stay
    job = await db.scalar(select(Job).where(Job.kind == privacy.PRUNE))
    assert job is not None and job.status == JobStatus.PENDING
    assert job.run_at >= now + timedelta(hours=23)


async def test_unknown_erase_callback_is_answered(app: App, harness: Harness) -> None:
    await harness.feed(callback_update("er:1:2", ANN))
    assert harness.session.of_type(AnswerCallbackQuery) or harness.session.of_type(SendMessage)
