"""A paid broadcast through the real Dispatcher and the app's own scheduler (manual
clock): the confirmation shows the Stars cost and the time at the paid rate, every
message goes with allow_paid_broadcast, the cost lands on the broadcast's row and in
the status message, checked against the message rows; a refusal for a short Stars
balance is counted as failed and said, not lost silently."""

from __future__ import annotations

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError
from aiogram.methods import EditMessageText, SendMessage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from bot.config import Settings
from bot.models import Entitlement, Job, ProductKind, User
from bot.scheduler import broadcast
from bot.scheduler.clock import ManualClock
from bot.scheduler.errors import Transient
from bot.services import access
from tests.integration.test_growth_messages import CLEO, T0, creator_with_course
from tests.support.broadcasts import draft, enroll_all
from tests.support.settings import bot_settings
from tests.support.updates import Harness, tg_user

LEARNERS = [tg_user(4001 + i, f"P{i}") for i in range(6)]
NEWS = "Launch day: the new course is open"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A small free rate: most paid messages are billed.
    return bot_settings(database_url, scheduler_rate=2.0, paid_broadcast_rate=10.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)  # conftest's app (so harness) runs on it


async def confirm_paid(h: Harness, db: AsyncSession, clock: ManualClock) -> str:
    cid = await creator_with_course(h, db, CLEO, "Watercolour")
    await enroll_all(h, db, clock, cid, LEARNERS)
    return await draft(h, CLEO, cid, NEWS)


def news(h: Harness) -> list[SendMessage]:
    return [r for r in h.session.of_type(SendMessage) if r.text == NEWS]


async def rows(db: AsyncSession) -> tuple[Job, list[Job]]:
    db.expire_all()
    parent = await db.scalar(select(Job).where(Job.kind == broadcast.BROADCAST))
    children = list(await db.scalars(select(Job).where(Job.kind == broadcast.BROADCAST_MESSAGE)))
    await db.close()
    assert parent is not None
    return parent, children


async def run_to_end(app: App, clock: ManualClock) -> None:
    for _ in range(5):
        await app.scheduler.drain()
        clock.advance(seconds=6)
    await app.scheduler.drain()


async def test_paid_broadcast_shows_cost_and_time_and_records_the_cost(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    h = harness
    text = await confirm_paid(h, db, clock)
    # Six at 10+2/s: one second, two carried free by the free rate, four at 0.1 Star.
    assert "Paid broadcast (fast): about 1 s, for about 0.4 Stars" in text, text
    assert "Estimated time: 3 s" in text, text  # at the free 2/s
    await h.click("Paid broadcast", CLEO)
    assert "queued for 6 learners" in h.last_text()
    await run_to_end(app, clock)

    sent = news(h)
    assert sorted(int(r.chat_id) for r in sent) == [u.id for u in LEARNERS]
    assert all(r.allow_paid_broadcast for r in sent)
    parent, children = await rows(db)
    # Independently: the charges on the message rows, 0.1 Star (one tenth) per billed one.
    billed = sum(1 for c in children if c.stars_tenths == 1)
    assert billed == app.scheduler.sender.stats.billed and billed >= 1
    assert parent.payload["paid"] is True and parent.payload["cost_tenths"] == billed
    final = h.session.of_type(EditMessageText)[-1].text
    assert "6 of 6 delivered" in final, final
    assert f"Paid broadcast: {billed // 10}.{billed % 10} Stars spent." in final, final


async def test_a_short_stars_balance_is_counted_failed_and_said(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    for _ in range(2):
        h.session.add_result(
            TelegramBadRequest(SendMessage(chat_id=1, text="…"), "Bad Request: BALANCE_TOO_LOW")
        )
    await run_to_end(app, clock)

    parent, children = await rows(db)
    refused = [c for c in children if c.last_error and "BALANCE_TOO_LOW" in c.last_error]
    assert len(refused) == 2
    assert all(not c.stars_tenths for c in refused)  # not paid for: not charged
    final = h.session.of_type(EditMessageText)[-1].text
    assert "4 of 6 delivered, 2 unreachable" in final, final
    assert "Stars balance ran out: 2 (not sent)" in final, final
    assert parent.payload["cost_tenths"] == sum(c.stars_tenths or 0 for c in children)


async def test_a_crash_mid_batch_resends_only_the_unrecorded(
    app: App,
    harness: Harness,
    db: AsyncSession,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outcomes are committed FLUSH_EVERY at a time; a crash after the first commit leaves
    the rest claimed. After the lease they are sent again (the unrecorded ones may be
    duplicates); the recorded ones never are, and nobody is left out."""
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    monkeypatch.setattr(broadcast, "FLUSH_EVERY", 2)
    record = broadcast._record
    calls = 0

    async def crash_after_first(ctx, outcomes):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("the process dies here")
        await record(ctx, outcomes)

    monkeypatch.setattr(broadcast, "_record", crash_after_first)
    await app.scheduler.run_once()
    _, children = await rows(db)
    recorded = {int(c.payload["chat_id"]) for c in children if c.status == "done"}
    assert len(recorded) == 2
    monkeypatch.setattr(broadcast, "_record", record)
    clock.advance(seconds=settings_lease(app) + 1)  # the claims' lease runs out
    await run_to_end(app, clock)

    per_chat = {u.id: 0 for u in LEARNERS}
    for r in news(h):
        per_chat[int(r.chat_id)] += 1
    assert all(per_chat[c] == 1 for c in recorded)  # recorded: never again
    assert all(1 <= n <= 2 for n in per_chat.values())  # none lost
    _, children = await rows(db)
    assert all(c.status == "done" for c in children)


def settings_lease(app: App) -> float:
    return app.settings.scheduler_lease


async def test_access_is_checked_for_each_learner_when_the_batch_goes(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    """Access follows money, checked in one query per batch just before the sends: a
    learner refunded and one whose access expired after the fan-out get nothing; one
    who blocked the bot is marked so; everyone else gets exactly one message."""
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    cid = int((await rows(db))[0].payload["access"]["ids"][0])
    refunded, expired = LEARNERS[0], LEARNERS[3]
    await access.revoke(db, refunded.id, ProductKind.COURSE, cid, now=clock.now())
    await db.execute(
        update(Entitlement)
        .where(Entitlement.user_id == expired.id, Entitlement.product_id == cid)
        .values(expires_at=clock.now())
    )
    await db.commit()
    await db.close()
    h.session.add_result(
        TelegramForbiddenError(SendMessage(chat_id=1, text="…"), "Forbidden: bot was blocked")
    )
    await run_to_end(app, clock)

    got = sorted(int(r.chat_id) for r in news(h))
    # The first send is answered 403 (that learner blocked the bot), the rest once each.
    assert got == sorted(u.id for u in LEARNERS if u not in (refunded, expired))
    _, children = await rows(db)
    by_chat = {int(c.payload["chat_id"]): c for c in children}
    assert by_chat[refunded.id].last_error == broadcast.ACCESS_REVOKED
    assert by_chat[expired.id].last_error == broadcast.ACCESS_REVOKED
    assert not by_chat[refunded.id].stars_tenths and not by_chat[expired.id].stars_tenths
    blocked = [c for c in children if (c.last_error or "").startswith("blocked")]
    assert len(blocked) == 1
    user = await db.get(User, int(blocked[0].payload["chat_id"]))
    assert user is not None and user.is_blocked
    final = h.session.of_type(EditMessageText)[-1].text
    assert "3 of 6 delivered, 1 unreachable" in final, final
    assert "no longer enrolled (refunded or expired): 2" in final, final


async def test_one_round_streams_past_the_claimed_batch(
    app: App, harness: Harness, db: AsyncSession, clock: ManualClock
) -> None:
    """With SCHEDULER_BATCH at 2 the paid batch claims more as its sends go, so one round
    sends all six; a free broadcast's message claimed along the way goes back untouched
    (not counted as an attempt) and is sent once by its own path."""
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    now = clock.now()
    free = Job(
        kind=broadcast.BROADCAST_MESSAGE,
        dedupe_key="bc999:1",
        payload={"chat_id": LEARNERS[0].id, "text": "A free one", "protect": False},
        run_at=now,
        status="pending",
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    db.add(free)
    await db.commit()
    free_id = free.id
    await db.close()
    app.scheduler.config.batch_size = 2
    await app.scheduler.run_once()
    assert sorted(int(r.chat_id) for r in news(h)) == [u.id for u in LEARNERS]
    back = await db.get(Job, free_id, populate_existing=True)
    assert back is not None and back.status == "pending" and back.attempts == 0
    assert not [r for r in h.session.of_type(SendMessage) if r.text == "A free one"]
    await db.close()
    await run_to_end(app, clock)
    assert len([r for r in h.session.of_type(SendMessage) if r.text == "A free one"]) == 1
    assert len(news(h)) == len(LEARNERS)  # and no paid message twice


async def test_a_stop_mid_batch_halts_the_claimed_rest(
    app: App,
    harness: Harness,
    db: AsyncSession,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stop cancels rows the worker already claimed too; the paid batch re-reads them
    before each CHECK_EVERY, so the rest of its batch is not sent."""
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    parent, _ = await rows(db)
    monkeypatch.setattr(broadcast, "CHECK_EVERY", 2)
    allowed = broadcast._allowed
    calls = 0

    async def stop_after_first(ctx, jobs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        ours = await allowed(ctx, jobs)
        if calls == 1:  # the creator presses Stop as the first two go out
            result = await broadcast.stop(db, parent.id, CLEO.id, clock.now())
            assert result.outcome == broadcast.StopOutcome.STOPPED
            await db.commit()
            await db.close()
        return ours

    monkeypatch.setattr(broadcast, "_allowed", stop_after_first)
    await run_to_end(app, clock)
    assert len(news(h)) == 2
    _, children = await rows(db)
    assert sorted(c.status for c in children) == ["cancelled"] * 4 + ["done"] * 2
    final = h.session.of_type(EditMessageText)[-1].text
    assert "stopped" in final.lower() and "4 cancelled" in final, final


async def test_shared_limits_unreachable_puts_the_message_back(
    app: App,
    harness: Harness,
    db: AsyncSession,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis gone when a slot is asked for: nothing is sent for that learner, the row
    goes back to the queue with a later time (not failed, not lost); the rest go."""
    h = harness
    await confirm_paid(h, db, clock)
    await h.click("Paid broadcast", CLEO)
    await app.scheduler.run_once()  # the fan-out
    sender = app.scheduler.sender
    paid_slot = sender.paid_slot
    calls = 0

    async def unreachable_once(chat_id: int) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Transient("rate limiter unreachable: connection refused")
        return await paid_slot(chat_id)

    monkeypatch.setattr(sender, "paid_slot", unreachable_once)
    await app.scheduler.run_once()
    assert len(news(h)) == len(LEARNERS) - 1
    _, children = await rows(db)
    back = [c for c in children if c.status == "pending"]
    assert len(back) == 1 and "unreachable" in (back[0].last_error or "")
    assert back[0].run_at > clock.now()
    await run_to_end(app, clock)
    clock.advance(seconds=60)
    await run_to_end(app, clock)
    assert sorted(int(r.chat_id) for r in news(h)) == [u.id for u in LEARNERS]  # once each
