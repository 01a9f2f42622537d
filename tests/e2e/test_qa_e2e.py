"""A paid question over HTTP through the sandbox, the bot as its own process: the learner
asks with a photo, pays the Stars invoice, the creator gets the photo copied with Reply,
answers, and the learner gets the answer in their chat."""

from __future__ import annotations

from pathlib import Path

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.e2e.chat import build_course, say
from tests.e2e.conftest import start_bot
from tests.sandbox.test_user_media import png


async def test_a_paid_question_and_its_answer(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
    tmp_path: Path,
) -> None:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    try:
        creator = await learner_client.create_user("Creator", id=7_000_001)
        learner = await learner_client.create_user("Lena", id=7_000_002)
        course_id = await build_course(creator, "Ask me", stars=0, lessons=("Intro",))
        await say(creator, f"/askprice {course_id} 5", "now cost")

        await say(learner, f"/course {course_id}", "Ask me")
        await learner.click("🎁 Get it free")
        await learner.wait_for_message(contains="is yours")
        await learner.wait_for_idle(quiet=0.2)
        await say(learner, f"/ask {course_id}", "Send your question")
        await learner.send_photo(png(16, 16), caption="What is this?")
        invoice = await learner.wait_for_message(predicate=lambda m: m.invoice is not None)
        assert invoice.invoice is not None
        assert (invoice.invoice["currency"], invoice.invoice["total_amount"]) == ("XTR", 5)
        outcome = await learner.pay(invoice)
        assert outcome.paid, outcome.data
        await learner.wait_for_message(contains="is with the creator", timeout=10)

        copied = await creator.wait_for_message(
            predicate=lambda m: "photo" in m.raw, has_button="✍️ Reply", timeout=10
        )
        assert copied.raw["caption"] == "What is this?"
        await creator.wait_for_idle(quiet=0.2)
        await creator.click("✍️ Reply", message=copied)
        await creator.wait_for_message(contains="Send your answer")
        await creator.wait_for_idle(quiet=0.2)
        await say(creator, "A tiny test image.", "Sent to the learner")
        await learner.wait_for_message(contains="answered your question", timeout=10)
        await learner.wait_for_message(contains="A tiny test image.", timeout=10)
    finally:
        await bot.stop()
