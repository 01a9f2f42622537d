"""The wire: body encodings, Telegram's error shapes, spec validation, and conformance of
everything the sandbox emits."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from sandbox.spec import load_spec
from sandbox.state import Invoice


async def raw_call(
    server: SandboxServer, method: str, *, json_body: Any = None, form: Any = None
) -> tuple[int, dict[str, Any]]:
    url = f"{server.base_url}/bot{server.token}/{method}"
    async with aiohttp.ClientSession() as s:
        if json_body is not None:
            resp = await s.post(url, json=json_body)
        elif form is not None:
            resp = await s.post(url, data=form)
        else:
            resp = await s.get(url)
        async with resp:
            return resp.status, await resp.json()


async def test_encodings(server: SandboxServer, client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    await alice.send("hi")
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    status, body = await raw_call(
        server,
        "sendMessage",
        json_body={"chat_id": alice.id, "text": "json", "reply_markup": markup},
    )
    assert status == 200 and body["ok"] and body["result"]["reply_markup"] == markup
    status, body = await raw_call(
        server,
        "sendMessage",
        form={"chat_id": str(alice.id), "text": "form", "reply_markup": json.dumps(markup)},
    )
    assert body["ok"] and body["result"]["text"] == "form"
    data = aiohttp.FormData()
    data.add_field("chat_id", str(alice.id))
    data.add_field("document", b"hello", filename="a.txt", content_type="text/plain")
    status, body = await raw_call(server, "sendDocument", form=data)
    assert body["ok"] and body["result"]["document"]["file_name"] == "a.txt"
    status, body = await raw_call(server, "getMe")
    assert body["result"]["is_bot"] is True
    # Method names are case-insensitive, as on Telegram.
    status, body = await raw_call(server, "getme")
    assert body["ok"]
    assert server.violations == []


async def test_error_shapes(server: SandboxServer, client: SandboxClient) -> None:
    status, body = await raw_call(server, "sendMessagee", json_body={})
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    async with aiohttp.ClientSession() as s, s.get(f"{server.base_url}/bot1:bad/getMe") as r:
        assert r.status == 401 and (await r.json())["description"] == "Unauthorized"
    status, body = await raw_call(server, "sendMessage", json_body={"text": "x"})
    assert status == 400 and body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: chat_id is empty",
    }
    status, body = await raw_call(server, "sendMessage", json_body={"chat_id": 1})
    assert body["description"] == "Bad Request: message text is empty"
    status, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": {"x": 1}, "text": "x"}
    )
    assert status == 400 and "chat_id" in body["description"]
    status, body = await raw_call(server, "sendMessage", json_body={"chat_id": 424242, "text": "x"})
    assert body["description"] == "Bad Request: chat not found"
    status, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": 1, "text": "x", "reply_markup": "{oops"}
    )
    assert status == 400
    alice = await client.create_user("Alice")
    await alice.send("hi")
    status, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": alice.id, "text": "<b>x", "parse_mode": "HTML"}
    )
    assert "can't parse entities" in body["description"]
    server.config.limits = __import__("sandbox").RateLimits(private_burst=1)
    await raw_call(server, "sendMessage", json_body={"chat_id": alice.id, "text": "1"})
    status, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": alice.id, "text": "2"}
    )
    assert status == 429
    assert body["description"].startswith("Too Many Requests: retry after ")
    assert body["parameters"]["retry_after"] >= 1
    assert set(body) == {"ok", "error_code", "description", "parameters"}


async def test_unknown_parameters_are_logged(server: SandboxServer, client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    await alice.send("hi")
    _status, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": alice.id, "text": "x", "colour": "red"}
    )
    assert body["ok"]
    assert server.violations == [
        {"kind": "unknown_parameter", "method": "sendMessage", "detail": ["colour"]}
    ]
    assert (await client.violations())[0]["detail"] == ["colour"]
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a", "colour": "red"}]]}
    _, body = await raw_call(
        server, "sendMessage", json_body={"chat_id": alice.id, "text": "x", "reply_markup": markup}
    )
    assert body["ok"]
    assert server.violations[-1]["detail"] == ["reply_markup.inline_keyboard[0][0].colour"]
    await client.clear_violations()
    assert server.violations == []


def test_conformance_checker_catches_mistakes() -> None:
    spec = load_spec()
    good = {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}
    assert spec.check("Message", good) == []
    assert spec.check("Message", {**good, "bogus": 1})  # unknown field
    assert spec.check("Message", {"message_id": "1", "date": 0, "chat": good["chat"]})
    assert spec.check("Message", {"date": 0, "chat": good["chat"]})  # missing required
    member = {"status": "member", "user": {"id": 1, "is_bot": False, "first_name": "A"}}
    assert spec.check("ChatMember", member) == []
    assert spec.check("ChatMember", {**member, "status": "owner"})  # no subtype says "owner"
    assert spec.check("Update", {"update_id": 1, "message": good}) == []


async def test_every_update_and_result_conforms(
    server: SandboxServer, client: SandboxClient
) -> None:
    """A tour through every kind of update the sandbox emits and every method it simulates;
    the server checks each one against the spec and logs any mismatch as a violation."""
    calls: list[str] = []

    async def call(method: str, **params: Any) -> Any:
        calls.append(method)
        result = await server.call(method, params)
        assert result["ok"], (method, result)
        return result["result"]

    await call("setMyCommands", commands=[{"command": "start", "description": "Menu"}])
    await call("getMyCommands")
    await call("deleteMyCommands")
    await call("getMe")
    await call(
        "getUpdates",
        allowed_updates=[
            "message",
            "edited_message",
            "callback_query",
            "inline_query",
            "pre_checkout_query",
            "my_chat_member",
            "chat_member",
            "chat_join_request",
            "channel_post",
        ],
    )
    alice = await client.create_user("Alice", stars=1000, username="alice")
    owner = await client.create_user("Owner")
    await alice.send("/start")
    sent = await call(
        "sendMessage",
        chat_id=alice.id,
        text="<b>Menu</b> <a href='https://x.y'>x</a>",
        parse_mode="HTML",
        protect_content=True,
        reply_markup={
            "inline_keyboard": [
                [{"text": "Go", "callback_data": "go"}, {"text": "Site", "url": "https://x.y"}]
            ]
        },
    )
    await alice.click("Go")
    cq = next(u for u in server.updates if "callback_query" in u)["callback_query"]
    await call("answerCallbackQuery", callback_query_id=cq["id"], text="ok")
    await call("editMessageText", chat_id=alice.id, message_id=sent["message_id"], text="Edited")
    await call(
        "editMessageReplyMarkup",
        chat_id=alice.id,
        message_id=sent["message_id"],
        reply_markup={"inline_keyboard": [[{"text": "B", "callback_data": "b"}]]},
    )
    await call(
        "sendMessage",
        chat_id=alice.id,
        text="reply",
        reply_parameters={"message_id": sent["message_id"]},
        reply_markup={"keyboard": [[{"text": "Hi"}]]},
    )
    photo = await call(
        "sendPhoto", chat_id=alice.id, photo="https://example.com/a.jpg", caption="c"
    )
    await call("editMessageCaption", chat_id=alice.id, message_id=photo["message_id"], caption="d")
    await call("sendVideo", chat_id=alice.id, video="https://example.com/a.mp4")
    await call("sendVoice", chat_id=alice.id, voice="https://example.com/a.ogg")
    doc = await call("sendDocument", chat_id=alice.id, document="https://example.com/a.pdf")
    await call("getFile", file_id=doc["document"]["file_id"])
    await call("copyMessage", chat_id=alice.id, from_chat_id=alice.id, message_id=doc["message_id"])
    await call(
        "forwardMessage", chat_id=alice.id, from_chat_id=alice.id, message_id=doc["message_id"]
    )
    await call("sendChatAction", chat_id=alice.id, action="typing")
    await call("deleteMessage", chat_id=alice.id, message_id=doc["message_id"])
    inv = await call(
        "sendInvoice",
        chat_id=alice.id,
        title="T",
        description="D",
        payload="p",
        currency="XTR",
        prices=[{"label": "x", "amount": 10}],
    )
    stored = server.chats[alice.id].messages[inv["message_id"]].meta["invoice"]
    assert isinstance(stored, Invoice)
    import asyncio

    pay = asyncio.create_task(server.pay(server.users[alice.id], stored))
    await asyncio.sleep(0.05)
    pcq = next(u for u in server.updates if "pre_checkout_query" in u)["pre_checkout_query"]
    await call("answerPreCheckoutQuery", pre_checkout_query_id=pcq["id"], ok=True)
    outcome = await pay
    await call("getStarTransactions")
    await call(
        "refundStarPayment",
        user_id=alice.id,
        telegram_payment_charge_id=outcome["telegram_payment_charge_id"],
    )
    link = await call(
        "createInvoiceLink",
        title="Sub",
        description="D",
        payload="s",
        currency="XTR",
        prices=[{"label": "m", "amount": 5}],
        subscription_period=2592000,
    )
    sub = server.invoice_by_link(link)
    assert sub is not None
    pay = asyncio.create_task(server.pay(server.users[alice.id], sub))
    await asyncio.sleep(0.05)
    pcq = [u for u in server.updates if "pre_checkout_query" in u][-1]["pre_checkout_query"]
    await call("answerPreCheckoutQuery", pre_checkout_query_id=pcq["id"], ok=True)
    first = await pay
    server.renew_subscriptions(alice.id)
    await call(
        "editUserStarSubscription",
        user_id=alice.id,
        telegram_payment_charge_id=first["telegram_payment_charge_id"],
        is_canceled=True,
    )
    await call("getMyStarBalance")

    group = await owner.create_chat("Club", "supergroup", add_bot=True)
    channel = await owner.create_chat("News", "channel", add_bot=True)
    await call("getChat", chat_id=group.id)
    await call("getChat", chat_id=alice.id)
    await call("getChatAdministrators", chat_id=group.id)
    await call("getChatMemberCount", chat_id=group.id)
    plain = await call("createChatInviteLink", chat_id=group.id, name="all", member_limit=10)
    await call(
        "editChatInviteLink", chat_id=group.id, invite_link=plain["invite_link"], member_limit=5
    )
    gated = await call("createChatInviteLink", chat_id=group.id, creates_join_request=True)
    await call("exportChatInviteLink", chat_id=group.id)
    await alice.join(plain["invite_link"])
    await call("getChatMember", chat_id=group.id, user_id=alice.id)
    await call("getChatMember", chat_id=group.id, user_id=owner.id)
    bob = await client.create_user("Bob")
    await bob.join(gated["invite_link"])
    await call("approveChatJoinRequest", chat_id=group.id, user_id=bob.id)
    carol = await client.create_user("Carol")
    await carol.join(gated["invite_link"])
    await call("declineChatJoinRequest", chat_id=group.id, user_id=carol.id)
    await call("banChatMember", chat_id=group.id, user_id=alice.id)
    await call("getChatMember", chat_id=group.id, user_id=alice.id)
    await call("unbanChatMember", chat_id=group.id, user_id=alice.id, only_if_banned=True)
    await call("revokeChatInviteLink", chat_id=group.id, invite_link=plain["invite_link"])
    await call("sendMessage", chat_id=group.id, text="hello group")
    await call("sendMessage", chat_id=channel.id, text="hello channel")
    await channel.post(owner, "a post")
    said = await bob.send("hi all", chat=group)
    await bob.edit(said, "hi everyone")
    await client.request("POST", f"/users/{alice.id}/inline", {"query": "py"})
    iq = next(u for u in server.updates if "inline_query" in u)["inline_query"]
    await call(
        "answerInlineQuery",
        inline_query_id=iq["id"],
        results=[
            {
                "type": "article",
                "id": "1",
                "title": "Py",
                "input_message_content": {"message_text": "Py"},
            }
        ],
    )
    await alice.block()
    await alice.unblock()
    await call("setWebhook", url="http://127.0.0.1:9/")
    await call("getWebhookInfo")
    await call("deleteWebhook")
    await call("getWebhookInfo")

    kinds = {k for u in server.updates for k in u if k != "update_id"}
    assert kinds >= {
        "message",
        "edited_message",
        "callback_query",
        "inline_query",
        "pre_checkout_query",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "channel_post",
    }
    services = {k for u in server.updates for k in u.get("message", {})}
    assert {"successful_payment", "refunded_payment", "new_chat_members"} <= services
    assert server.emitted >= len(server.updates) > 20
    assert server.violations == [], json.dumps(server.violations, indent=1)[:3000]
    assert len(set(calls)) >= 40


@pytest.mark.parametrize("limit", [4096])
async def test_text_limit_counts_utf16(
    server: SandboxServer, client: SandboxClient, limit: int
) -> None:
    alice = await client.create_user("Alice")
    await alice.send("hi")
    ok = await server.call("sendMessage", {"chat_id": alice.id, "text": "a" * limit})
    assert ok["ok"]
    emoji = await server.call("sendMessage", {"chat_id": alice.id, "text": "😀" * (limit // 2 + 1)})
    assert emoji["description"] == "Bad Request: message is too long"
