"""The standalone command, latency, the web chat's files, time travel, and Telegram's offset
semantics as a property."""

from __future__ import annotations

import asyncio
import re
import sys
import time

import aiohttp
from aiogram import Bot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import SandboxConfig, SandboxServer
from sandbox.client import SandboxClient


async def test_python_m_sandbox_prints_urls_and_serves() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--port", "0", "--token", "42:CLI",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 20)).decode() for _ in range(3)]
        api = re.search(r"TELEGRAM_API_URL=(\S+)", lines[0])
        assert api and "BOT_TOKEN=42:CLI" in lines[1] and "Web chat: http" in lines[2]
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{api.group(1)}/bot42:CLI/getMe") as r:
                assert (await r.json())["result"]["id"] == 42
            async with s.get(f"{api.group(1)}/") as r:
                assert "text-input" in await r.text()
    finally:
        proc.terminate()
        await proc.wait()


async def test_web_chat_files_are_served(server: SandboxServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{server.base_url}/") as r:
            html = await r.text()
        for hook in ('id="text-input"', 'id="send"', 'id="messages"', 'id="user-select"'):
            assert hook in html
        for name in ("app.js", "style.css"):
            async with s.get(f"{server.base_url}/static/{name}") as r:
                assert r.status == 200
                body = await r.text()
        assert ".inline-button" in body


async def test_latency_is_added(config: SandboxConfig) -> None:
    config.latency = 0.2
    async with SandboxServer(config) as server:
        started = time.monotonic()
        assert (await server.call("getMe", {}))["ok"]
        assert time.monotonic() - started >= 0.2


async def test_time_travel_expires_invite_links(
    server: SandboxServer, client: SandboxClient
) -> None:
    owner = await client.create_user("Owner")
    alice = await client.create_user("Alice")
    group = await owner.create_chat("Club", add_bot=True)
    link = await server.call(
        "createChatInviteLink", {"chat_id": group.id, "expire_date": server.now() + 60}
    )
    await client.configure(advance_time=120)
    outcome = await alice.join(link["result"]["invite_link"])
    assert outcome == {"status": "failed", "reason": "INVITE_HASH_EXPIRED", "ok": True,
                       "seq": outcome["seq"]}  # fmt: skip


async def test_concurrent_get_updates_conflict(server: SandboxServer) -> None:
    first = asyncio.create_task(server.call("getUpdates", {"timeout": 5}))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(server.call("getUpdates", {"timeout": 0}))
    assert (await second)["ok"]
    older = await first
    assert older["error_code"] == 409 and "terminated by other getUpdates" in older["description"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.just("push"), st.integers(min_value=-5, max_value=12)),
        max_size=25,
    )
)
def test_offset_semantics(ops: list[object]) -> None:
    """An update is gone only once confirmed by a higher offset; a negative offset keeps the
    newest; what getUpdates returns is always the unconfirmed tail, in order."""

    async def run() -> None:
        server = SandboxServer(SandboxConfig())
        model: list[int] = []
        first_id = server.next_update_id
        for op in ops:
            if op == "push":
                message = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
                server.push_update("message", message)
                model.append(server.next_update_id - 1)
                continue
            assert isinstance(op, int)
            offset = None if op == 0 else (op if op < 0 else first_id + op)
            result = await server.call("getUpdates", {} if offset is None else {"offset": offset})
            if offset is not None:
                model = model[offset:] if offset < 0 else [u for u in model if u >= offset]
            assert [u["update_id"] for u in result["result"]] == model
        assert server.violations == []

    asyncio.run(run())


async def test_a_telegram_affiliate_takes_its_cut_of_a_referred_stars_payment(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    """Telegram's own Stars affiliate programme: the payment's transaction carries
    `affiliate` (AffiliateInfo) and the bot receives the rest; a refund undoes both."""
    alice = await client.create_user("Alice", stars=1000)
    partner = await client.create_user("Partner")
    await alice.referred_by(partner, per_mille=200)
    await alice.send("/start")
    sent = await server.call(
        "sendInvoice",
        {
            "chat_id": alice.id,
            "title": "T",
            "description": "D",
            "payload": "p-aff",
            "currency": "XTR",
            "prices": [{"label": "x", "amount": 500}],
        },
    )
    invoice = server.chats[alice.id].messages[sent["result"]["message_id"]].meta["invoice"]
    pay = asyncio.create_task(server.pay(server.users[alice.id], invoice))
    await asyncio.sleep(0.05)
    pcq = next(u for u in server.updates if "pre_checkout_query" in u)["pre_checkout_query"]
    await server.call("answerPreCheckoutQuery", {"pre_checkout_query_id": pcq["id"], "ok": True})
    outcome = await pay
    txns = (await abot.get_star_transactions()).transactions
    [txn] = txns
    assert txn.amount == 400 and txn.source is not None
    assert txn.source.affiliate is not None  # type: ignore[union-attr]
    assert txn.source.affiliate.amount == 100  # type: ignore[union-attr]
    assert txn.source.affiliate.affiliate_user.id == partner.id  # type: ignore[union-attr]
    assert server.bot_stars == 400
    await abot.refund_star_payment(alice.id, outcome["telegram_payment_charge_id"])
    refund = (await abot.get_star_transactions()).transactions[-1]
    assert refund.amount == 400 and refund.receiver.affiliate.amount == -100  # type: ignore[union-attr]
    assert server.bot_stars == 0
    assert server.violations == []
