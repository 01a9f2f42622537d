"""Media lessons authored the way the demo's web chat does it: the creator sends a photo, a
document and a voice message after /addlesson, and the real bot delivers each again by the
file_id the sandbox gave it (here through /preview, which sends exactly what a learner gets)."""

from __future__ import annotations

from pathlib import Path

from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxUser
from tests.e2e.chat import build_course, say
from tests.e2e.conftest import start_bot
from tests.sandbox.test_user_media import png


async def add_media_lesson(creator: SandboxUser, course_id: int, kind: str, data: bytes) -> None:
    await say(creator, f"/addlesson {course_id}", "Send the lesson")
    name = {"photo": "lesson.png", "document": "notes.pdf", "voice": "voice.ogg"}[kind]
    await creator.send_media(kind, data, name, caption=f"The {kind} lesson", duration=2)
    await creator.wait_for_message(contains="added as number", timeout=10)
    await creator.wait_for_idle(quiet=0.15)


async def test_photo_document_and_voice_lessons_come_back_by_file_id(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
    tmp_path: Path,
) -> None:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    try:
        creator = await learner_client.create_user("Creator", id=7_000_001)
        course_id = await build_course(creator, "Media course", stars=50, lessons=("Intro",))
        sent = {
            "photo": png(32, 24),
            "document": b"%PDF-1.4 lesson notes",
            "voice": b"OggS a voice lesson",
        }
        for kind, data in sent.items():
            await add_media_lesson(creator, course_id, kind, data)
        mine = {
            kind: m.raw[kind] for m in await creator.messages() if not m.outgoing
            for kind in sent if kind in m.raw
        }  # fmt: skip

        await say(creator, f"/preview {course_id} 400", "lessons on day 400")
        for number, kind in enumerate(sent, start=2):
            await creator.click(f"📖 {number}")
            lesson = await creator.wait_for_message(predicate=lambda m, k=kind: k in m.raw)
            await creator.wait_for_idle(quiet=0.15)
            got, original = lesson.raw[kind], mine[kind]
            if kind == "photo":
                got, original = got[-1], original[-1]
                assert (got["width"], got["height"]) == (32, 24)
            assert got["file_id"] == original["file_id"]
            assert lesson.raw["caption"].endswith(f"The {kind} lesson")  # under its heading
    finally:
        await bot.stop()
