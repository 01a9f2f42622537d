"""Paid groups end to end: the real bot process against the sandbox. A creator links a
group (first without the rights the bot needs: a clear error naming them, nothing linked),
makes a plan; a learner pays in Stars, gets a personal join-request link and is approved;
another user with the same link is declined; a reminder, expiry and removal (time moved by
editing the job table), paying again and rejoining; a Stars subscription renewing and being
cancelled; an audit dry run and its confirm; another creator denied."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.db import create_engine, create_sessionmaker
from bot.models import Entitlement, Group, Job, JobStatus
from sandbox import SandboxServer
from sandbox.client import Message, SandboxChat, SandboxClient, SandboxUser
from sandbox.demo import BotProcess
from tests.e2e.conftest import ROOT

FULL = {"can_invite_users": True, "can_restrict_members": True}
LINK = re.compile(r"https://t\.me/\+\S+")


@pytest.fixture
async def people(learner_client: SandboxClient) -> dict[str, SandboxUser]:
    return {
        "boss": await learner_client.create_user("Boss", "en"),
        "cleo": await learner_client.create_user("Cleo", "en"),
        "dan": await learner_client.create_user("Dan", "en"),
        "ann": await learner_client.create_user("Ann", "en", stars=1000),
        "bo": await learner_client.create_user("Bo", "en", stars=1000),
    }


@pytest.fixture
async def group_bot(
    sandbox_server: SandboxServer,
    database_url: str,
    tmp_path: Path,
    people: dict[str, SandboxUser],
) -> AsyncIterator[BotProcess]:
    env = {
        "THROTTLE_RATE": "0",
        "ADMIN_IDS": str(people["boss"].id),
        "GRACE_PERIOD_HOURS": "0",
        "SCHEDULER_POLL_INTERVAL": "0.2",
    }
    bot = BotProcess(
        sandbox_server, database_url, extra_env=env, cwd=ROOT, log_path=tmp_path / "bot.log"
    )
    try:
        await bot.start(webhook=False, ready_timeout=60)
    except BaseException:
        await bot.stop()
        print((tmp_path / "bot.log").read_text(errors="replace")[-4000:])
        raise
    yield bot
    await bot.stop()


async def say(
    user: SandboxUser, text: str, expect: str, chat: SandboxChat | None = None
) -> Message:
    await user.send(text, chat)
    message = await user.wait_for_message(contains=expect, timeout=10)
    await user.wait_for_idle(quiet=0.2)
    return message


async def become_creator(user: SandboxUser) -> None:
    await say(user, "/start", "")
    await user.send("/becomecreator")
    await user.wait_for_idle(quiet=0.3)


async def link_group(cleo: SandboxUser, title: str) -> SandboxChat:
    chat = await cleo.create_chat(title, "supergroup", add_bot={"rights": FULL})
    await say(cleo, "/linkgroup", f"Linked {title}", chat)
    return chat


async def buy_with_stars(user: SandboxUser, plan_title: str) -> str:
    """/plans → Buy → Stars → pay; returns the personal invite link the bot sends."""
    await say(user, "/plans", plan_title)
    await user.click("🛒 Buy access")
    await user.wait_for_message(has_button="⭐ Telegram Stars — ⭐ 100", timeout=10)
    await user.click("⭐ Telegram Stars — ⭐ 100")
    invoice = await user.wait_for_message(predicate=lambda m: m.invoice is not None, timeout=10)
    assert (await user.pay(invoice)).paid
    invite = await user.wait_for_message(contains="personal links", timeout=10)
    found = LINK.search(invite.text)
    assert found is not None, invite.text
    return found.group(0)


async def wait_status(chat: SandboxChat, user: SandboxUser, wanted: str) -> None:
    async def check() -> bool:
        return await chat.status_of(user) == wanted

    await chat.client.wait_until(check, timeout=10)


async def move_job(database_url: str, kind: str, user_id: int, *, expire: bool = False) -> None:
    """Time travel: the job falls due now (and, for expiry, the entitlement has ended)."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with create_sessionmaker(engine)() as session:
            jobs = [
                j
                for j in await session.scalars(
                    select(Job)
                    .where(Job.kind == kind, Job.status == JobStatus.PENDING)
                    .order_by(Job.run_at)
                )
                if j.payload.get("user") == user_id
            ]
            assert jobs, f"no pending {kind} for {user_id}"
            job = jobs[0]  # the earliest: 72 h before 24 h
            if expire:
                ended = now - timedelta(seconds=1)
                await session.execute(
                    update(Entitlement)
                    .where(Entitlement.user_id == user_id)
                    .values(expires_at=ended)
                )
                job.payload = {**job.payload, "exp": int(ended.timestamp())}
            job.run_at = now
            await session.commit()
    finally:
        await engine.dispose()


async def linked_chat_ids(database_url: str) -> list[int]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(Group.chat_id)))
    finally:
        await engine.dispose()


async def test_linking_without_rights_names_them_and_links_nothing(
    group_bot: BotProcess,
    learner_client: SandboxClient,
    people: dict[str, SandboxUser],
    database_url: str,
) -> None:
    cleo = people["cleo"]
    await become_creator(cleo)
    # An admin without either right the bot needs.
    none = {"can_invite_users": False, "can_restrict_members": False}
    chat = await cleo.create_chat("Bare", "supergroup", add_bot={"rights": none})
    await cleo.send("/linkgroup", chat)
    error = await cleo.wait_for_message(contains="Cannot link", timeout=10)
    await cleo.wait_for_idle(quiet=0.3)
    named = [line for line in error.text.split("\n") if line.startswith("•")]
    assert named == [
        "• the bot lacks the right to invite users via link",
        "• the bot lacks the right to ban (restrict) members",
    ], error.text
    assert await linked_chat_ids(database_url) == []
    await say(cleo, "/groups", "None yet")

    # Only the right to invite given: only the right to ban is named.
    await chat.add_bot({"can_invite_users": True, "can_restrict_members": False})
    await cleo.send("/linkgroup", chat)
    error = await cleo.wait_for_message(contains="Cannot link", timeout=10)
    await cleo.wait_for_idle(quiet=0.3)
    named = [line for line in error.text.split("\n") if line.startswith("•")]
    assert named == ["• the bot lacks the right to ban (restrict) members"], error.text
    assert await linked_chat_ids(database_url) == []

    # Both rights: linked.
    await chat.add_bot(FULL)
    await say(cleo, "/linkgroup", "Linked Bare", chat)
    assert await linked_chat_ids(database_url) == [chat.id]
    assert await learner_client.violations() == []


async def test_gate_expiry_and_coming_back(
    group_bot: BotProcess,
    learner_client: SandboxClient,
    people: dict[str, SandboxUser],
    database_url: str,
) -> None:
    cleo, ann, bo, dan = people["cleo"], people["ann"], people["bo"], people["dan"]
    await become_creator(cleo)
    # The bot can invite but not ban: linking says exactly that.
    chat = await cleo.create_chat(
        "Club",
        "supergroup",
        add_bot={"rights": {"can_invite_users": True, "can_restrict_members": False}},
    )
    await cleo.send("/linkgroup", chat)
    error = await cleo.wait_for_message(contains="Cannot link", timeout=10)
    assert "ban (restrict)" in error.text and "invite" not in error.text.split("\n")[1]
    await chat.add_bot(FULL)
    await say(cleo, "/linkgroup", "Linked Club", chat)
    await say(cleo, f"/plan new Club pass stars=100 days=30 publish=yes chat={chat.id}", "Plan #")

    # Another creator may not look at Cleo's chat.
    await become_creator(dan)
    await say(dan, f"/members {chat.id}", "No such chat or plan of yours")

    link = await buy_with_stars(ann, "Club pass")
    assert (await ann.join(link))["status"] == "requested"
    await wait_status(chat, ann, "member")
    # Bo with Ann's link: declined, and told how to buy.
    await say(bo, "/start", "")
    assert (await bo.join(link))["status"] == "requested"
    told = await bo.wait_for_message(contains="needs an active plan", timeout=10)
    assert "🛒 Buy access" in told.buttons
    assert await chat.status_of(bo) != "member"

    # 72 hours before the end: a reminder with Renew.
    await move_job(database_url, "grp_remind", ann.id)
    reminder = await ann.wait_for_message(contains="ends in 72 hours", timeout=10)
    assert "🔄 Renew" in reminder.buttons
    # The end, no grace: removed (ban + unban), told, free to come back.
    await move_job(database_url, "grp_expire", ann.id, expire=True)
    ended = await ann.wait_for_message(contains="has ended", timeout=10)
    await wait_status(chat, ann, "left")
    # Paying again: Renew → Stars → a new link → approved.
    await ann.click("🔄 Renew", ended)
    await ann.wait_for_message(has_button="⭐ Telegram Stars — ⭐ 100", timeout=10)
    await ann.click("⭐ Telegram Stars — ⭐ 100")
    invoice = await ann.wait_for_message(predicate=lambda m: m.invoice is not None, timeout=10)
    assert (await ann.pay(invoice)).paid
    again = await ann.wait_for_message(contains="personal links", timeout=10)
    new_link = LINK.search(again.text)
    assert new_link is not None
    assert (await ann.join(new_link.group(0)))["status"] == "requested"
    await wait_status(chat, ann, "member")
    assert await learner_client.violations() == []


async def test_subscription_audit_and_guard(
    group_bot: BotProcess,
    learner_client: SandboxClient,
    people: dict[str, SandboxUser],
    database_url: str,
) -> None:
    cleo, ann, bo = people["cleo"], people["ann"], people["bo"]
    await become_creator(cleo)
    chat = await link_group(cleo, "Monthly club")
    await say(
        cleo,
        f"/plan new Monthly stars=100 days=30 sub=yes publish=yes chat={chat.id}",
        "subscription",
    )
    await say(ann, "/plans", "Monthly")
    await ann.click("⭐ Subscribe monthly")
    offer = await ann.wait_for_message(has_button="⭐ Subscribe", timeout=10)
    button = offer.button("⭐ Subscribe")
    assert button is not None
    assert (await ann.pay(button["url"])).paid
    invite = await ann.wait_for_message(contains="personal links", timeout=10)
    link = LINK.search(invite.text)
    assert link is not None
    assert (await ann.join(link.group(0)))["status"] == "requested"
    await wait_status(chat, ann, "member")
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            first = await session.scalar(select(Entitlement.expires_at))
        renewals = await learner_client.renew_subscriptions(ann)
        assert [r["status"] for r in renewals] == ["renewed"]

        async def extended() -> bool:
            async with create_sessionmaker(engine)() as session:
                now = await session.scalar(select(Entitlement.expires_at))
            return now is not None and first is not None and now >= first + timedelta(days=29)

        await learner_client.wait_until(extended, timeout=10)
    finally:
        await engine.dispose()
    # Cancel the renewal: access stays, the next renewal does not happen.
    await say(ann, "/subscriptions", "Monthly")
    await ann.click("Cancel renewal")
    await ann.wait_for_message(contains="lasts to the end", timeout=10)
    assert [r["status"] for r in await learner_client.renew_subscriptions(ann)] == ["canceled"]

    # The guard: Bo added by someone without a plan is removed at once. (Bo has started
    # the bot: a new user's first two updates at once race on the users row, see report.)
    await say(bo, "/start", "")
    await learner_client.request(
        "POST", f"/chats/{chat.id}/members", {"user_id": bo.id, "status": "member"}
    )
    await wait_status(chat, bo, "left")
    # Whitelisted he may stay; taken off the list, the audit finds him (dry run first).
    await say(cleo, f"/whitelist {chat.id} {bo.id}", "Whitelist")
    await learner_client.request(
        "POST", f"/chats/{chat.id}/members", {"user_id": bo.id, "status": "member"}
    )
    await cleo.wait_for_idle(quiet=0.5)
    assert await chat.status_of(bo) == "member"
    await say(cleo, f"/whitelist {chat.id} {bo.id} off", "Whitelist")
    report = await say(cleo, f"/audit {chat.id}", "would remove 1")
    assert str(bo.id) in report.text
    assert await chat.status_of(bo) == "member"  # a dry run
    await cleo.click("Confirm: remove 1", report)
    await wait_status(chat, bo, "left")
    assert await chat.status_of(ann) == "member"
    assert await learner_client.violations() == []
