"""The same sandbox driven by a second, independent client: python-telegram-bot's Bot."""

from __future__ import annotations

import asyncio

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice
from telegram.error import BadRequest, Forbidden, RetryAfter

from sandbox import RateLimits, SandboxServer
from sandbox.client import SandboxClient


async def next_update(bot: telegram.Bot, kind: str, timeout: float = 5.0) -> telegram.Update:
    offset: int | None = None
    async with asyncio.timeout(timeout):
        while True:
            for u in await bot.get_updates(offset=offset, timeout=1):
                offset = u.update_id + 1
                if getattr(u, kind) is not None:
                    await bot.get_updates(offset=offset)
                    return u


async def test_send_edit_callback(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    assert pbot.username == server.config.bot_username
    alice = await client.create_user("Alice")
    await alice.send("/start")
    start = await next_update(pbot, "message")
    assert start.message and start.message.text == "/start"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Catalog", callback_data="catalog")]])
    sent = await pbot.send_message(
        alice.id, "Hi <i>there</i>", parse_mode="HTML", reply_markup=markup
    )
    assert sent.text == "Hi there"
    await alice.wait_for_message(contains="Hi there")
    click = await alice.click("Catalog")
    query = (await next_update(pbot, "callback_query")).callback_query
    assert query is not None and query.data == "catalog"
    await pbot.answer_callback_query(query.id, text="ok", show_alert=True)
    answer = await click.answer()
    assert answer["show_alert"] is True
    edited = await pbot.edit_message_text("Courses", chat_id=alice.id, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message) and edited.edit_date is not None
    assert (await alice.wait_for_message(contains="Courses")).buttons == []
    assert server.violations == []


async def test_offsets(client: SandboxClient, pbot: telegram.Bot) -> None:
    alice = await client.create_user("Alice")
    await alice.send("a")
    await alice.send("b")
    got = await pbot.get_updates()
    assert len(got) == 2
    assert len(await pbot.get_updates()) == 2
    rest = await pbot.get_updates(offset=got[0].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["b"]


async def test_invoice_payment_and_invite_link(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    alice = await client.create_user("Alice", stars=100)
    await alice.send("/buy")
    await next_update(pbot, "message")
    await pbot.send_invoice(
        alice.id, "Course", "Learn", "order:9", "XTR", [LabeledPrice("Course", 30)]
    )
    invoice = await alice.wait_for_message(predicate=lambda m: m.invoice is not None)

    async def approve() -> None:
        q = (await next_update(pbot, "pre_checkout_query")).pre_checkout_query
        assert q is not None and q.total_amount == 30
        await pbot.answer_pre_checkout_query(q.id, ok=True)

    task = asyncio.create_task(approve())
    outcome = await alice.pay(invoice)
    await task
    assert outcome.paid
    paid = (await next_update(pbot, "message")).message
    assert paid and paid.successful_payment
    assert paid.successful_payment.telegram_payment_charge_id == outcome.charge_id

    owner = await client.create_user("Owner")
    group = await owner.create_chat("Club", add_bot=True)
    link = await pbot.create_chat_invite_link(group.id, creates_join_request=True)
    assert link.creates_join_request
    with pytest.raises(BadRequest, match=r"(?i)member_limit"):
        await pbot.create_chat_invite_link(group.id, member_limit=5, creates_join_request=True)
    assert (await alice.join(link.invite_link))["status"] == "requested"
    req = (await next_update(pbot, "chat_join_request")).chat_join_request
    assert req is not None and req.from_user.id == alice.id
    await pbot.approve_chat_join_request(group.id, alice.id)
    member = await pbot.get_chat_member(group.id, alice.id)
    assert member.status == "member"
    assert server.violations == []


async def test_403_and_429(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    alice = await client.create_user("Alice")
    await alice.send("/start")
    server.config.limits = RateLimits(private_burst=2)
    await pbot.send_message(alice.id, "1")
    await pbot.send_message(alice.id, "2")
    with pytest.raises(RetryAfter) as exc:
        await pbot.send_message(alice.id, "3")
    after = exc.value.retry_after
    assert (after if isinstance(after, int) else after.total_seconds()) >= 1
    server.config.limits = None
    await alice.block()
    with pytest.raises(Forbidden, match=r"(?i)blocked by the user"):
        await pbot.send_message(alice.id, "hello?")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await alice.unblock()
        await pbot.send_message(alice.id, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="y" * 65)]])
        await pbot.send_message(alice.id, "x", reply_markup=markup)


async def test_webhook_with_ptb(server: SandboxServer, pbot: telegram.Bot) -> None:
    assert await pbot.set_webhook("http://127.0.0.1:9/hook", secret_token="abc")
    info = await pbot.get_webhook_info()
    assert info.url == "http://127.0.0.1:9/hook"
    assert await pbot.delete_webhook()
    assert (await pbot.get_webhook_info()).url == ""
    assert server.violations == []
