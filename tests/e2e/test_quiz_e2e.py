"""Quizzes and certificates with the real bot (`python -m bot run`) over the sandbox: the
creator writes a quiz in chat (a typed question and a forwarded Telegram quiz) and sets a
pass mark; the learner answers the bot's quiz polls in the sandbox (poll_answer updates),
fails, retries, passes, and gets the certificate picture; anyone verifies it by its link."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox import SandboxServer
from sandbox.client import Message, SandboxClient, SandboxUser
from sandbox.demo import BotProcess
from tests.e2e.chat import build_course, say
from tests.e2e.conftest import start_bot
from tests.e2e.test_drip_e2e import CREATOR_ID, grant, ids


@pytest.fixture
async def polling_bot(
    sandbox_server: SandboxServer, database_url: str, tmp_path: Path
) -> AsyncIterator[BotProcess]:
    bot = await start_bot(sandbox_server, database_url, tmp_path, webhook=False)
    yield bot
    await bot.stop()


async def poll(user: SandboxUser, question: str) -> Message:
    message = await user.wait_for_message(contains=question, timeout=10)
    assert message.poll is not None and message.poll["type"] == "quiz"
    return message


async def test_quiz_gates_then_certificate_end_to_end(
    polling_bot: BotProcess,
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
) -> None:
    olga = await learner_client.create_user("Olga", "en", id=CREATOR_ID)
    alice = await learner_client.create_user("爱丽丝", "en")
    bob = await learner_client.create_user("Bob", "en")
    await say(olga, "/start", "Welcome", timeout=15)
    course_id = await build_course(olga, "Quiz E2E", stars=100, lessons=("First: hello",))

    await say(olga, f"/addquiz {course_id}", "Send its title")
    await say(olga, "Check", "Question 1")
    await say(olga, "2 + 2 = ?", "options")
    await say(olga, "3\n4", "Which one is right")
    await say(olga, "2 Count them", "Saved question 1")
    await olga.send_poll("Capital of France?", ["Rome", "Paris"], correct_option_id=1,
                         forwarded=True)  # fmt: skip
    await olga.wait_for_message(contains="Saved question 2", timeout=10)
    await olga.wait_for_idle(quiet=0.15)
    await olga.click("✅ Finish the quiz")
    added = await olga.wait_for_message(contains="with 2 questions", timeout=10)
    quiz_id = int(re.search(r"Quiz #(\d+)", added.text).group(1))  # type: ignore[union-attr]
    await olga.wait_for_idle(quiet=0.15)
    await say(olga, f"/quizpass {quiz_id} 100", "100% right passes")
    await say(olga, f"/release {quiz_id} days 0", "released at enrollment")
    _, lessons = await ids(database_url, "Quiz E2E")
    assert lessons[-1] == quiz_id

    await say(alice, "/start", "Welcome", timeout=15)
    await say(alice, "/quiet off", "Saved")
    await grant(database_url, alice.id, course_id)
    lesson1 = await alice.wait_for_message(contains="Lesson 1 of 2", timeout=10)
    intro = await alice.wait_for_message(contains="Lesson 2 of 2", timeout=10)
    assert intro.buttons == ["▶️ Start the quiz", "🔘 With buttons"]
    await alice.click("✅ Done", message=lesson1)
    await alice.wait_for_idle(quiet=0.15)

    await alice.click("▶️ Start the quiz", message=intro)
    first = await poll(alice, "2 + 2 = ?")
    assert first.poll is not None and first.poll["is_anonymous"] is False
    tapped = await alice.vote(first, 0)  # wrong
    assert tapped["correct"] is False and tapped["explanation"] == "Count them"
    second = await poll(alice, "Capital of France?")
    await alice.vote(second, 1)
    failed = await alice.wait_for_message(contains="Not passed", timeout=10)
    assert "1 of 2 (50%)" in failed.text and "🔁 Retry" in failed.buttons
    await alice.wait_for_idle(quiet=0.15)

    await alice.click("🔁 Retry", message=failed)
    again = await poll(alice, "2 + 2 = ?")
    await alice.vote(again, 1)
    last = await alice.wait_for_message(contains="Capital of France?", timeout=10)
    await alice.vote(last, 1)
    passed = await alice.wait_for_message(contains="Passed", timeout=10)
    assert "finished the course" in passed.text
    photo = await alice.wait_for_message(predicate=lambda m: bool(m.raw.get("photo")), timeout=20)
    assert "certificate" in photo.text
    serial = re.search(r"Serial ([A-Z0-9]{10})", photo.text).group(1)  # type: ignore[union-attr]
    first_file = photo.raw["photo"][-1]["file_id"]
    await alice.wait_for_idle(quiet=0.15)

    # Asked again: the same picture, by its file_id.
    await alice.send("/certificate")
    resent = await alice.wait_for_message(
        contains=serial, predicate=lambda m: m.message_id != photo.message_id, timeout=10
    )
    assert resent.message_id != photo.message_id
    assert resent.raw["photo"][-1]["file_id"] == first_file

    await say(bob, f"/start v_{serial}", "is valid", timeout=15)
    assert sandbox_server.violations == []
