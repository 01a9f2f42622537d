"""The sandbox driven by aiogram's Bot over HTTP, the way the storefront talks to Telegram."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramForbiddenError, TelegramRetryAfter
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    KeyboardButton,
    KeyboardButtonRequestChat,
    LabeledPrice,
    ReplyKeyboardMarkup,
)

from sandbox import RateLimits, SandboxServer
from sandbox.client import SandboxClient
from tests.sandbox.conftest import next_update


def kb(*labels: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=t.lower())] for t in labels]
    )


async def test_send_edit_callback(server: SandboxServer, client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice", "en")
    await alice.send("/start")
    updates = await abot.get_updates(timeout=1)
    assert updates[0].message is not None and updates[0].message.text == "/start"
    entities = updates[0].message.entities or []
    assert entities[0].type == "bot_command"

    sent = await abot.send_message(
        alice.id, "<b>Welcome</b>, Alice", parse_mode="HTML", reply_markup=kb("Catalog", "Help")
    )
    assert sent.text == "Welcome, Alice"
    assert sent.entities and sent.entities[0].type == "bold"
    msg = await alice.wait_for_message(contains="Welcome")
    assert msg.buttons == ["Catalog", "Help"]

    click = await alice.click("Catalog")
    updates = await abot.get_updates(offset=updates[-1].update_id + 1, timeout=1)
    query = updates[0].callback_query
    assert query is not None and query.data == "catalog"
    assert query.message is not None and query.message.message_id == sent.message_id
    await abot.answer_callback_query(query.id, text="Loading…")
    answer = await click.answer(timeout=2)
    assert answer["text"] == "Loading…"
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await abot.answer_callback_query(query.id)

    await abot.edit_message_text(
        "Catalog: 3 courses", chat_id=alice.id, message_id=sent.message_id, reply_markup=kb("Back")
    )
    edited = await alice.wait_for_message(contains="Catalog:")
    assert edited.edited and edited.buttons == ["Back"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await abot.edit_message_text(
            "Catalog: 3 courses",
            chat_id=alice.id,
            message_id=sent.message_id,
            reply_markup=kb("Back"),
        )
    await abot.edit_message_reply_markup(chat_id=alice.id, message_id=sent.message_id)
    assert (await alice.messages())[-1].buttons == []

    await abot.delete_message(alice.id, sent.message_id)
    assert [m.text for m in await alice.messages()] == ["/start"]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await abot.delete_message(alice.id, sent.message_id)

    protected = await abot.send_message(alice.id, "secret", protect_content=True)
    assert protected.has_protected_content
    assert server.violations == []


async def test_get_updates_offsets_and_long_poll(client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice")
    for text in ("one", "two", "three"):
        await alice.send(text)
    first = await abot.get_updates()
    assert [u.message.text for u in first if u.message] == ["one", "two", "three"]
    # Not confirmed yet: the same updates come again.
    again = await abot.get_updates()
    assert [u.update_id for u in again] == [u.update_id for u in first]
    # Confirming the first two leaves the third.
    rest = await abot.get_updates(offset=first[1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["three"]
    assert [u.update_id for u in await abot.get_updates(limit=1)] == [first[2].update_id]
    # A negative offset keeps only the newest.
    await alice.send("four")
    last = await abot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["four"]

    # timeout really waits, and returns early when an update arrives.
    offset = last[0].update_id + 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await abot.get_updates(offset=offset, timeout=1) == []
    assert loop.time() - started >= 0.9

    async def later() -> None:
        await asyncio.sleep(0.2)
        await alice.send("five")

    task = asyncio.create_task(later())
    started = loop.time()
    got = await abot.get_updates(offset=offset, timeout=5)
    await task
    assert [u.message.text for u in got if u.message] == ["five"]
    assert loop.time() - started < 2


async def test_allowed_updates(client: SandboxClient, abot: Bot, server: SandboxServer) -> None:
    alice = await client.create_user("Alice")
    await abot.get_updates(allowed_updates=["callback_query"])
    await alice.send("ignored")
    assert await abot.get_updates() == []
    await abot.get_updates(allowed_updates=[])  # back to the default set
    await alice.send("seen")
    assert [u.message.text for u in await abot.get_updates() if u.message] == ["seen"]
    # chat_member is opt-in
    owner = await client.create_user("Owner")
    group = await owner.create_chat("Club", add_bot=True)
    await abot.get_updates(offset=-1)
    link = await abot.create_chat_invite_link(group.id)
    await alice.join(link.invite_link)
    kinds = {u.event_type for u in await abot.get_updates(offset=-10)}
    assert "chat_member" not in kinds
    await abot.get_updates(offset=-1, allowed_updates=["chat_member", "message"])
    bob = await client.create_user("Bob")
    await bob.join(link.invite_link)
    got = await abot.get_updates(offset=-2)
    assert {u.event_type for u in got} == {"chat_member", "message"}
    assert server.violations == []


async def test_blocked_user_gets_403(client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice")
    stranger = await client.create_user("Stranger")
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await abot.send_message(stranger.id, "hi")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await abot.send_message(999, "hi")
    await alice.send("/start")
    await abot.send_message(alice.id, "hello")
    await alice.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await abot.send_message(alice.id, "still there?")
    updates = await abot.get_updates()
    blocked = [u.my_chat_member for u in updates if u.my_chat_member]
    assert blocked and blocked[0].new_chat_member.status == "kicked"
    await alice.unblock()
    await abot.send_message(alice.id, "welcome back")


async def test_flood_limits_answer_429(server: SandboxServer, abot: Bot) -> None:
    server.config.limits = RateLimits(private_per_second=1, private_burst=3)
    client = SandboxClient(server.base_url)
    alice = await client.create_user("Alice")
    await alice.send("/start")
    for i in range(3):  # the tolerated burst
        await abot.send_message(alice.id, f"m{i}")
    with pytest.raises(TelegramRetryAfter) as exc:
        await abot.send_message(alice.id, "too fast")
    assert exc.value.retry_after >= 1
    assert server.stats["sendMessage"][429] == 1 and server.stats["sendMessage"][200] == 3
    await client.close()


async def test_group_and_global_limits(server: SandboxServer, client: SandboxClient) -> None:
    server.config.limits = RateLimits(
        global_per_second=5, global_burst=5, group_per_minute=20, group_burst=2
    )
    owner = await client.create_user("Owner")
    group = await owner.create_chat("Club", add_bot=True)
    codes = [
        (await server.call("sendMessage", {"chat_id": group.id, "text": "x"}))["ok"]
        for _ in range(3)
    ]
    assert codes == [True, True, False]
    denied = await server.call("sendMessage", {"chat_id": group.id, "text": "x"})
    assert denied["error_code"] == 429 and denied["parameters"]["retry_after"] >= 1
    users = [await client.create_user(f"U{i}") for i in range(6)]
    for u in users:
        await u.send("/start")
    results = [await server.call("sendMessage", {"chat_id": u.id, "text": "x"}) for u in users]
    assert [r["ok"] for r in results].count(False) >= 1  # 5/s overall


async def test_invoice_and_payment(server: SandboxServer, client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice", stars=500)
    await alice.send("/buy")
    await abot.get_updates()
    invoice = await abot.send_invoice(
        alice.id,
        title="Python 101",
        description="Learn Python",
        payload="order:1",
        currency="XTR",
        prices=[LabeledPrice(label="Course", amount=100)],
    )
    assert invoice.invoice is not None and invoice.invoice.total_amount == 100
    shown = await alice.wait_for_message(predicate=lambda m: m.invoice is not None)
    assert shown.buttons and shown.buttons[0].startswith("Pay")

    async def bot_side() -> None:
        query = (await next_update(abot, "pre_checkout_query")).pre_checkout_query
        assert query is not None and query.invoice_payload == "order:1"
        await abot.answer_pre_checkout_query(query.id, ok=True)

    task = asyncio.create_task(bot_side())
    outcome = await alice.pay(shown)
    await task
    assert outcome.paid and outcome.charge_id
    updates = await abot.get_updates(offset=-1)
    paid = updates[-1].message
    assert paid is not None and paid.successful_payment is not None
    assert paid.successful_payment.telegram_payment_charge_id == outcome.charge_id
    assert paid.successful_payment.provider_payment_charge_id
    assert (await alice.state())["user"]["stars"] == 400

    txs = await abot.get_star_transactions()
    assert txs.transactions[0].amount == 100
    await abot.refund_star_payment(alice.id, outcome.charge_id)
    assert (await alice.state())["user"]["stars"] == 500
    with pytest.raises(TelegramBadRequest, match="CHARGE_ALREADY_REFUNDED"):
        await abot.refund_star_payment(alice.id, outcome.charge_id)
    refunded = (await abot.get_updates(offset=-1))[-1].message
    assert refunded is not None and refunded.refunded_payment is not None
    assert server.violations == []


async def test_payment_rejected_declined_and_timeout(client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice")
    await alice.send("/buy")
    inv = await abot.send_invoice(
        alice.id, "Course", "desc", "order:2", "XTR", [LabeledPrice(label="x", amount=5)]
    )
    invoice = (await alice.messages())[-1]
    assert invoice.message_id == inv.message_id

    declined = await alice.pay(invoice, fail="card_declined")
    assert not declined.paid and declined.reason == "card_declined"

    # Nobody answers the pre_checkout_query in time (0.5 s here, 10 s on Telegram).
    timed_out = await alice.pay(invoice)
    assert timed_out.status == "failed" and timed_out.reason == "timeout"
    late = (await abot.get_updates(offset=-1))[-1].pre_checkout_query
    assert late is not None
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await abot.answer_pre_checkout_query(late.id, ok=True)

    await abot.get_updates(offset=-1)
    await abot.get_updates(offset=(await abot.get_updates())[-1].update_id + 1)

    async def reject() -> None:
        query = (await next_update(abot, "pre_checkout_query")).pre_checkout_query
        assert query is not None
        await abot.answer_pre_checkout_query(query.id, ok=False, error_message="Sold out")

    task = asyncio.create_task(reject())
    rejected = await alice.pay(invoice)
    await task
    assert rejected.reason == "rejected" and rejected.data["error_message"] == "Sold out"


async def test_invoice_limits(client: SandboxClient, abot: Bot) -> None:
    alice = await client.create_user("Alice")
    await alice.send("hi")
    with pytest.raises(TelegramBadRequest, match="INVOICE_PAYLOAD_INVALID"):
        await abot.send_invoice(
            alice.id, "T", "D", "p" * 129, "XTR", [LabeledPrice(label="x", amount=1)]
        )
    with pytest.raises(TelegramBadRequest, match="PAYMENT_PROVIDER_INVALID"):
        await abot.send_invoice(
            alice.id, "T", "D", "p", "USD", [LabeledPrice(label="x", amount=100)]
        )
    card = await abot.send_invoice(
        alice.id,
        "T",
        "D",
        "p",
        "USD",
        [LabeledPrice(label="x", amount=100)],
        provider_token="stripe:TEST",
    )
    assert card.invoice is not None and card.invoice.currency == "USD"
    with pytest.raises(TelegramBadRequest, match="SUBSCRIPTION_PERIOD_INVALID"):
        await abot.create_invoice_link(
            "T", "D", "p", "XTR", [LabeledPrice(label="x", amount=1)], subscription_period=3600
        )


async def test_subscription_link_and_renewals(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    alice = await client.create_user("Alice", stars=1000)
    link = await abot.create_invoice_link(
        "Club",
        "Monthly",
        "sub:1",
        "XTR",
        [LabeledPrice(label="Month", amount=250)],
        subscription_period=2592000,
    )
    assert link.startswith("https://t.me/$")

    async def approve_next() -> None:
        query = (await next_update(abot, "pre_checkout_query")).pre_checkout_query
        assert query is not None
        await abot.answer_pre_checkout_query(query.id, ok=True)

    task = asyncio.create_task(approve_next())
    first = await alice.pay(link)
    await task
    assert first.paid
    msgs = [u.message for u in await abot.get_updates(offset=-1) if u.message]
    sp = msgs[-1].successful_payment
    assert sp is not None and sp.is_first_recurring and sp.is_recurring
    assert sp.subscription_expiration_date is not None

    renewals = await client.renew_subscriptions(alice)
    assert renewals[0]["status"] == "renewed"
    renewed = (await abot.get_updates(offset=-1))[-1].message
    assert renewed is not None and renewed.successful_payment is not None
    assert renewed.successful_payment.is_recurring
    assert not renewed.successful_payment.is_first_recurring
    assert renewed.successful_payment.subscription_expiration_date > sp.subscription_expiration_date

    await abot.edit_user_star_subscription(alice.id, first.charge_id or "", is_canceled=True)
    assert (await client.renew_subscriptions(alice))[0]["status"] == "canceled"
    assert (await alice.state())["user"]["stars"] == 500
    assert server.violations == []


async def test_invite_links_join_requests_ban(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    owner = await client.create_user("Owner")
    alice = await client.create_user("Alice")
    group = await owner.create_chat("Paid club", "supergroup")
    with pytest.raises(TelegramBadRequest):
        await abot.create_chat_invite_link(group.id)  # not a member yet
    await group.add_bot({"can_invite_users": True, "can_restrict_members": True})
    added = [u.my_chat_member for u in await abot.get_updates() if u.my_chat_member]
    assert added[-1].new_chat_member.status == "administrator"

    with pytest.raises(TelegramBadRequest, match="member_limit"):
        await abot.create_chat_invite_link(group.id, member_limit=1, creates_join_request=True)

    limited = await abot.create_chat_invite_link(group.id, member_limit=1)
    assert (await alice.join(limited.invite_link))["status"] == "joined"
    bob = await client.create_user("Bob")
    assert (await bob.join(limited.invite_link))["reason"] == "USERS_TOO_MUCH"

    gated = await abot.create_chat_invite_link(
        group.id, creates_join_request=True, name="buyers", expire_date=server.now() + 3600
    )
    assert gated.creates_join_request and gated.name == "buyers"
    assert (await bob.join(gated.invite_link))["status"] == "requested"
    updates = await abot.get_updates(
        offset=-1, allowed_updates=["message", "chat_join_request", "chat_member", "my_chat_member"]
    )
    request = updates[-1].chat_join_request
    assert request is not None and request.from_user.id == bob.id
    await abot.approve_chat_join_request(group.id, bob.id)
    assert (await abot.get_chat_member(group.id, bob.id)).status == "member"
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await abot.decline_chat_join_request(group.id, bob.id)

    carol = await client.create_user("Carol")
    await carol.join(gated.invite_link)
    await abot.decline_chat_join_request(group.id, carol.id)
    assert (await abot.get_chat_member(group.id, carol.id)).status == "left"

    await abot.ban_chat_member(group.id, alice.id)
    assert (await abot.get_chat_member(group.id, alice.id)).status == "kicked"
    assert (await alice.join(gated.invite_link))["status"] == "failed"
    await abot.unban_chat_member(group.id, bob.id, only_if_banned=True)  # a member: no-op
    assert (await abot.get_chat_member(group.id, bob.id)).status == "member"
    await abot.unban_chat_member(group.id, alice.id, only_if_banned=True)
    assert (await abot.get_chat_member(group.id, alice.id)).status == "left"
    with pytest.raises(TelegramBadRequest, match="can't remove chat owner"):
        await abot.ban_chat_member(group.id, owner.id)

    admins = await abot.get_chat_administrators(group.id)
    assert {a.status for a in admins} == {"creator", "administrator"}
    chat = await abot.get_chat(group.id)
    assert chat.title == "Paid club" and chat.type == "supergroup"
    members = [u.chat_member for u in await abot.get_updates(offset=-20) if u.chat_member]
    assert any(m.new_chat_member.status == "kicked" for m in members)
    left = [u.message for u in await abot.get_updates(offset=-20) if u.message]
    assert any(m.left_chat_member and m.left_chat_member.id == alice.id for m in left)
    revoked = await abot.revoke_chat_invite_link(group.id, gated.invite_link)
    assert revoked.is_revoked
    assert server.violations == []


async def test_media_copy_commands_inline_and_chat_shared(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    alice = await client.create_user("Alice", "zh")
    await alice.send("/start")
    photo = await abot.send_photo(
        alice.id,
        BufferedInputFile(b"\x89PNG fake", "cover.png"),
        caption="<i>Cover</i>",
        parse_mode="HTML",
    )
    assert photo.photo and photo.caption == "Cover"
    file_id = photo.photo[-1].file_id
    again = await abot.send_photo(alice.id, file_id)
    assert again.photo and again.photo[-1].file_unique_id == photo.photo[-1].file_unique_id
    file = await abot.get_file(file_id)
    assert file.file_path
    data = await abot.download_file(file.file_path)
    assert data is not None and data.read() == b"\x89PNG fake"
    doc = await abot.send_document(alice.id, BufferedInputFile(b"%PDF", "notes.pdf"))
    assert doc.document and doc.document.file_name == "notes.pdf"
    video = await abot.send_video(alice.id, BufferedInputFile(b"mp4", "a.mp4"), duration=3)
    voice = await abot.send_voice(alice.id, BufferedInputFile(b"ogg", "a.ogg"))
    assert video.video and voice.voice
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await abot.send_video(alice.id, "no-such-file")
    copied = await abot.copy_message(alice.id, alice.id, doc.message_id, caption="copy")
    assert copied.message_id > doc.message_id

    scope = BotCommandScopeAllPrivateChats()
    await abot.set_my_commands([BotCommand(command="start", description="Menu")], scope=scope)
    await abot.set_my_commands(
        [BotCommand(command="start", description="菜单")], scope=scope, language_code="zh"
    )
    zh = await abot.get_my_commands(scope=scope, language_code="zh")
    assert zh[0].description == "菜单"
    assert (await alice.state())["commands"][0]["description"] == "菜单"
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await abot.set_my_commands([BotCommand(command="Bad Command", description="x")])

    owner_group = await alice.create_chat("My channel", "channel")
    await abot.send_message(
        alice.id,
        "Pick your channel",
        reply_markup=ReplyKeyboardMarkup(
            keyboard=[
                [
                    KeyboardButton(
                        text="Share channel",
                        request_chat=KeyboardButtonRequestChat(request_id=7, chat_is_channel=True),
                    )
                ]
            ],
            resize_keyboard=True,
        ),
    )
    await abot.get_updates(offset=-1)
    await alice.press_reply_button("Share channel", shared_chat_id=owner_group.id)
    shared = (await abot.get_updates(offset=-1))[-1].message
    assert shared is not None and shared.chat_shared is not None
    assert shared.chat_shared.chat_id == owner_group.id and shared.chat_shared.request_id == 7

    async def answer_inline() -> None:
        query = (await next_update(abot, "inline_query")).inline_query
        assert query is not None
        result = InlineQueryResultArticle(
            id="1",
            title="Python 101",
            input_message_content=InputTextMessageContent(message_text="Python 101"),
        )
        await abot.answer_inline_query(query.id, [result], cache_time=0)

    task = asyncio.create_task(answer_inline())
    results = await alice.inline("python")
    await task
    assert results[0]["title"] == "Python 101"
    assert server.violations == []


async def test_group_privacy_mode(client: SandboxClient, abot: Bot) -> None:
    owner = await client.create_user("Owner")
    group = await owner.create_chat("Club", add_bot={"status": "member"})
    await abot.get_updates(offset=-1)
    await abot.get_updates(offset=(await abot.get_updates())[-1].update_id + 1)
    await owner.send("just chatting", chat=group)
    await owner.send("/help", chat=group)
    seen = [u.message.text for u in await abot.get_updates() if u.message]
    assert seen == ["/help"]  # a member bot with privacy mode sees commands only
    await group.add_bot({"can_invite_users": True})
    await owner.send("now visible", chat=group)
    seen = [u.message.text for u in await abot.get_updates(offset=-1) if u.message]
    assert seen == ["now visible"]


async def test_webhook_delivery_secret_and_retry(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    from aiohttp import web

    received: list[tuple[str | None, dict[str, object]]] = []
    fail_first = {"left": 2}

    async def hook(request: web.Request) -> web.Response:
        if fail_first["left"] > 0:
            fail_first["left"] -= 1
            return web.Response(status=500)
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/hook"
        await abot.set_webhook(url, secret_token="s3cr3t", allowed_updates=["message"])
        with pytest.raises(TelegramBadRequest):
            await abot.set_webhook(url, secret_token="bad secret!")
        info = await abot.get_webhook_info()
        assert info.url == url
        with pytest.raises(Exception, match="webhook is active"):
            await abot.get_updates()

        alice = await client.create_user("Alice")
        await alice.send("one")
        await alice.send("two")
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        assert [r[0] for r in received] == ["s3cr3t", "s3cr3t"]
        texts = [r[1]["message"]["text"] for r in received]  # type: ignore[index]
        assert texts == ["one", "two"]  # retried, in order
        info = await abot.get_webhook_info()
        assert info.pending_update_count == 0
        assert info.last_error_message and "500" in info.last_error_message
        await abot.delete_webhook()
        await alice.send("three")
        assert [u.message.text for u in await abot.get_updates() if u.message] == ["three"]
    finally:
        await runner.cleanup()
    assert server.violations == []


async def test_webhook_reply_runs_a_method(server: SandboxServer, client: SandboxClient) -> None:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    app = web.Application()
    app.router.add_post("/", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await server.call("setWebhook", {"url": f"http://127.0.0.1:{port}/"})
        alice = await client.create_user("Alice")
        await alice.send("ping")
        reply = await alice.wait_for_message(contains="pong", timeout=3)
        assert reply.outgoing
    finally:
        await server.call("deleteWebhook", {})
        await runner.cleanup()
