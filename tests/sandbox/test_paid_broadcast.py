"""allow_paid_broadcast: up to 1000 messages/s, 0.1 Star per message above the free rate,
charged from the bot's balance (kept in tenths of a Star); BALANCE_TOO_LOW when short."""

from __future__ import annotations

from sandbox import RateLimits, SandboxServer
from sandbox.client import SandboxClient


async def _learners(client: SandboxClient, n: int) -> list[int]:
    ids = []
    for i in range(n):
        user = await client.create_user(f"L{i}")
        await user.send("/start")
        ids.append(user.id)
    return ids


async def test_paid_messages_above_the_free_rate_cost_a_tenth(
    server: SandboxServer, client: SandboxClient
) -> None:
    server.config.limits = RateLimits(global_per_second=0.001, global_burst=2)
    ids = await _learners(client, 6)
    got = await client.request("POST", "/bot/stars", {"stars": 1.5})
    assert got["tenths"] == 15 and got["stars"] == 1.5
    # Without the flag the third message is over the free rate: 429.
    plain = [await server.call("sendMessage", {"chat_id": u, "text": "x"}) for u in ids[:3]]
    assert [r["ok"] for r in plain] == [True, True, False]
    assert plain[2]["error_code"] == 429
    paid = [
        await server.call("sendMessage", {"chat_id": u, "text": "x", "allow_paid_broadcast": True})
        for u in ids
    ]
    assert all(r["ok"] for r in paid)
    got = await client.request("GET", "/bot/stars")
    # Six billed at 0.1 Star: 1.5 - 0.6 = 0.9, no rounding lost.
    assert got["tenths"] == 9 and got["stars"] == 0.9
    assert got["paid_broadcast_billed"] == 6
    assert server.violations == []


async def test_a_paid_message_the_free_rate_has_room_for_is_free(
    server: SandboxServer, client: SandboxClient
) -> None:
    server.config.limits = RateLimits()
    ids = await _learners(client, 3)
    for u in ids:
        r = await server.call(
            "sendMessage", {"chat_id": u, "text": "x", "allow_paid_broadcast": True}
        )
        assert r["ok"]
    got = await client.request("GET", "/bot/stars")
    assert got["paid_broadcast_billed"] == 0 and got["tenths"] == 0


async def test_short_balance_is_refused_and_charges_nothing(
    server: SandboxServer, client: SandboxClient
) -> None:
    server.config.limits = RateLimits(global_per_second=0.001, global_burst=1)
    ids = await _learners(client, 4)
    await client.request("POST", "/bot/stars", {"tenths": 2})
    results = [
        await server.call("sendMessage", {"chat_id": u, "text": "x", "allow_paid_broadcast": True})
        for u in ids
    ]
    # One free, two billed (0.2 Star), then the balance is empty: refused, as Telegram does.
    assert [r["ok"] for r in results] == [True, True, True, False]
    assert results[3]["error_code"] == 400
    assert "BALANCE_TOO_LOW" in results[3]["description"]
    got = await client.request("GET", "/bot/stars")
    assert got["tenths"] == 0 and got["paid_broadcast_billed"] == 2
