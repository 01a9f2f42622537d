"""A paid broadcast's lean send (one JSON request on aiogram's session, bot.telegram.sender)
against the sandbox over real HTTP: it must send exactly what bot.send_* sends, return
the same message_id, and fail with the same errors, counted in the same metrics. (The
sandbox and its client are this folder's conftest fixtures.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode

from bot.ops import metrics
from bot.scheduler.errors import ChatNotFound, Rejected, RetryAfter, Transient, Unreachable
from bot.scheduler.sender import Button, Outgoing
from bot.telegram.sender import TelegramSender
from sandbox import RateLimits, SandboxServer
from sandbox.client import Message, SandboxClient, SandboxUser

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd4"
    "0000000049454e44ae426082"
)


@pytest.fixture
async def sender(server: SandboxServer) -> AsyncIterator[TelegramSender]:
    # As bot.app builds it: HTML by default.
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    bot = Bot(
        server.token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )
    yield TelegramSender(bot)
    await bot.session.close()


async def learner(client: SandboxClient, name: str) -> SandboxUser:
    user = await client.create_user(name)
    await user.send("/start")
    return user


def last_call(server: SandboxServer) -> tuple[str, dict[str, Any]]:
    name, params = server.calls[-1]
    return name, dict(params)


def seen(message: Message) -> dict[str, Any]:
    return {k: v for k, v in message.raw.items() if k not in ("message_id", "date")}


def paid(**kw: Any) -> Outgoing:
    return Outgoing(paid_broadcast=True, **kw)


async def both_ways(
    server: SandboxServer, sender: TelegramSender, chat_id: int, message: Outgoing
) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """The same message through the lean path and through bot.send_*: the calls the
    sandbox received, without chat-specific ids."""
    await sender.send(chat_id, message)
    lean = last_call(server)
    sender.lean = False
    try:
        await sender.send(chat_id, message)
    finally:
        sender.lean = True
    return lean, last_call(server)


@pytest.mark.parametrize(
    "message",
    [
        paid(text="<b>Launch</b> day & more"),
        paid(text="Hi", protect_content=True, buttons=((Button("Open", "c:1"),),)),
        paid(text="x" * 5000),  # clipped as bot.send_message clips it
    ],
    ids=["html", "buttons-protected", "clipped"],
)
async def test_text_is_sent_as_bot_send_message_sends_it(
    server: SandboxServer, client: SandboxClient, sender: TelegramSender, message: Outgoing
) -> None:
    alice = await learner(client, "Alice")
    lean, regular = await both_ways(server, sender, alice.id, message)
    assert lean == regular
    assert lean[0] == "sendMessage" and lean[1]["allow_paid_broadcast"] is True
    shown = [m for m in await alice.messages() if m.outgoing]
    assert shown[-1].raw == {
        **shown[-2].raw,
        "message_id": shown[-1].message_id,
        "date": shown[-1].raw["date"],
    }


async def test_media_and_copies_match_and_return_the_message_id(
    server: SandboxServer, client: SandboxClient, sender: TelegramSender
) -> None:
    alice = await learner(client, "Alice")
    photo = await alice.send_photo(PNG, caption="mine")
    file_id = photo.raw["photo"][-1]["file_id"]
    for message in (
        paid(kind="photo", file_id=file_id, caption="<i>Slides</i>"),
        paid(copy_from=alice.id, copy_id=photo.message_id),
    ):
        lean, regular = await both_ways(server, sender, alice.id, message)
        assert lean == regular
    message_id = await sender.send(alice.id, paid(text="last"))
    last = await alice.last_message()
    assert last is not None and last.message_id == message_id and last.text == "last"


def errors(name: str, code: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "lyceum_bot_api_errors_total", {"method": name, "code": code}
        )
        or 0.0
    )


def calls(name: str) -> float:
    return metrics.REGISTRY.get_sample_value("lyceum_bot_api_calls_total", {"method": name}) or 0.0


async def test_errors_are_aiograms_mapped_as_usual_and_counted(
    server: SandboxServer, client: SandboxClient, sender: TelegramSender
) -> None:
    alice, bob = await learner(client, "Alice"), await learner(client, "Bob")
    await bob.block()
    before = calls("sendMessage"), errors("sendMessage", "403"), errors("sendMessage", "400")
    with pytest.raises(Unreachable):
        await sender.send(bob.id, paid(text="hi"))
    with pytest.raises(ChatNotFound):
        await sender.send(987654321, paid(text="hi"))
    # Above the free rate with no Stars left: refused, nothing charged. (The first one
    # takes the one free slot; the sandbox keeps its buckets, so limits are set once.)
    server.config.limits = RateLimits(global_per_second=0.001, global_burst=1)
    server.set_bot_balance_tenths(0)
    await sender.send(alice.id, paid(text="free"))
    carol = await learner(client, "Carol")
    with pytest.raises(Rejected, match="BALANCE_TOO_LOW"):
        await sender.send(carol.id, paid(text="billed"))
    # One chat flooded (a burst of 3 at 1 a second): 429 with its retry_after.
    server.set_bot_balance_tenths(100)
    with pytest.raises(RetryAfter) as too_many:
        for _ in range(4):
            await sender.send(alice.id, paid(text="again"))
    assert too_many.value.retry_after >= 1
    after = calls("sendMessage"), errors("sendMessage", "403"), errors("sendMessage", "400")
    assert after[0] - before[0] == 2 + 2 + 3  # every request counted, failed or not
    assert after[1] - before[1] == 1
    assert after[2] - before[2] == 2  # chat not found, BALANCE_TOO_LOW
    assert errors("sendMessage", "429") >= 1


async def test_no_answer_is_a_network_error(server: SandboxServer) -> None:
    """Nothing listening: Transient (the scheduler retries it later), counted as 'network'."""
    session = AiohttpSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9"))
    bot = Bot(server.token, session=session)
    before = errors("sendMessage", "network")
    try:
        with pytest.raises(Transient):
            await TelegramSender(bot).send(1, paid(text="hi"))
    finally:
        await bot.session.close()
    assert errors("sendMessage", "network") - before == 1
