"""What a person sends besides text — photos, documents, voice messages — reaches the bot as
Telegram delivers it, and the bot can send the same file again by its file_id; and the chat
list's unread counts."""

from __future__ import annotations

import struct
import zlib

import aiohttp
import pytest
from aiogram import Bot
from aiogram.types import BufferedInputFile

from sandbox import SandboxServer
from sandbox.api.files import image_size
from sandbox.client import SandboxClient, SandboxClientError
from tests.sandbox.conftest import next_update


def png(width: int, height: int) -> bytes:
    """A valid grey PNG of this size."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffc0001108007800a0")


def test_image_sizes_are_read_from_the_file() -> None:
    assert image_size(png(40, 30)) == (40, 30)
    assert image_size(b"GIF89a\x0a\x00\x05\x00") == (10, 5)
    assert image_size(JPEG_HEAD + b"\x00" * 16) == (160, 120)
    assert image_size(b"not an image") is None


async def test_a_photo_from_the_user_can_be_sent_again_by_the_bot(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    alice = await client.create_user("Alice")
    data = png(64, 48)
    sent = await alice.send_photo(data, caption="Lesson one")

    update = await next_update(abot, "message")
    message = update.message
    assert message is not None and message.photo and message.caption == "Lesson one"
    size = message.photo[-1]
    assert (size.width, size.height, size.file_size) == (64, 48, len(data))
    assert sent.raw["photo"][-1]["file_id"] == size.file_id

    again = await abot.send_photo(alice.id, size.file_id, caption="Here it is")
    assert again.photo and again.photo[-1].file_id == size.file_id
    got = await abot.download(size.file_id)
    assert got is not None and got.read() == data
    # The web chat shows it from the control API.
    url = f"{server.base_url}/sandbox/api/files/{size.file_id}"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200 and await r.read() == data
    assert server.violations == []


async def test_documents_and_voices_too(
    server: SandboxServer, client: SandboxClient, abot: Bot
) -> None:
    alice = await client.create_user("Alice")
    await alice.send_document(b"%PDF-1.4 notes", "notes.pdf", mime_type="application/pdf")
    doc = (await next_update(abot, "message")).message
    assert doc is not None and doc.document is not None
    assert (doc.document.file_name, doc.document.mime_type) == ("notes.pdf", "application/pdf")
    await alice.send_voice(b"OggS voice", duration=3)
    voice = (await next_update(abot, "message")).message
    assert voice is not None and voice.voice is not None
    assert (voice.voice.duration, voice.voice.mime_type) == (3, "audio/ogg")

    sent_doc = await abot.send_document(alice.id, doc.document.file_id)
    sent_voice = await abot.send_voice(alice.id, voice.voice.file_id, caption="Listen")
    assert sent_doc.document and sent_doc.document.file_name == "notes.pdf"
    assert sent_voice.voice and sent_voice.voice.file_id == voice.voice.file_id
    assert sent_voice.voice.duration == 3  # a file_id keeps what the file was sent with
    # A bot's own upload works as before, and copyMessage copies the user's file.
    upload = await abot.send_document(alice.id, BufferedInputFile(b"x", "x.txt"))
    assert upload.document and upload.document.file_id != doc.document.file_id
    copy = await abot.copy_message(alice.id, alice.id, doc.message_id)
    copied = (await alice.messages())[-1]
    assert copied.message_id == copy.message_id and copied.raw["document"]["file_name"]
    assert server.violations == []


async def test_bad_media_is_refused(client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    with pytest.raises(SandboxClientError, match="kind"):
        await alice.send_media("sticker", b"x", "x.webp")
    with pytest.raises(SandboxClientError, match="empty"):
        await alice.send_photo(b"")
    with pytest.raises(SandboxClientError, match="1024"):
        await alice.send_photo(png(2, 2), caption="x" * 1025)
    with pytest.raises(SandboxClientError, match="multipart"):
        await client.request("POST", f"/users/{alice.id}/media", {"kind": "photo"})


async def test_unread_counts_per_chat(server: SandboxServer, client: SandboxClient) -> None:
    alice = await client.create_user("Alice")
    owner = await client.create_user("Owner")
    await alice.send("/start")
    group = await owner.create_chat("Club", add_bot=True)
    await server.call("sendMessage", {"chat_id": alice.id, "text": "one"})
    await server.call("sendMessage", {"chat_id": alice.id, "text": "two"})
    assert (await alice.unread())[alice.id] == 2

    await alice.read()
    assert (await alice.unread())[alice.id] == 0
    await server.call("sendMessage", {"chat_id": alice.id, "text": "three"})
    assert (await alice.unread())[alice.id] == 1
    await alice.send("hi")  # writing in a chat reads it
    assert (await alice.unread())[alice.id] == 0

    # In a group, everyone's messages but one's own count.
    assert (await owner.unread())[group.id] == 0  # "Chat created" is the owner's own
    await server.call("sendMessage", {"chat_id": group.id, "text": "welcome"})
    await owner.send("/help", chat=group)
    assert (await owner.unread())[group.id] == 0
    await server.call("sendMessage", {"chat_id": group.id, "text": "help text"})
    assert (await owner.unread())[group.id] == 1
    deleted = await server.call("sendMessage", {"chat_id": group.id, "text": "oops"})
    await server.call(
        "deleteMessage", {"chat_id": group.id, "message_id": deleted["result"]["message_id"]}
    )
    assert (await owner.unread())[group.id] == 1
