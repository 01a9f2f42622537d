"""What a person does in the sandbox chat, shared by the end-to-end tests."""

from __future__ import annotations

import re

from sandbox.client import SandboxUser


async def say(user: SandboxUser, text: str, expect: str, timeout: float = 10) -> str:
    await user.send(text)
    message = await user.wait_for_message(contains=expect, timeout=timeout)
    await user.wait_for_idle(quiet=0.15)
    return message.text


async def build_course(
    creator: SandboxUser, title: str, *, stars: int, lessons: tuple[str, ...]
) -> int:
    """/newcourse through the chat (no card price), its text lessons, then /publish."""
    await say(creator, "/newcourse", "What is its title")
    await say(creator, title, "Describe")
    await say(creator, "Three short lessons.", "Tags")
    await say(creator, "test, drip", "Which language")
    await creator.click("English")
    await creator.wait_for_message(contains="Card price")
    await creator.wait_for_idle(quiet=0.15)
    await say(creator, "0", "Stars")
    await say(creator, str(stars), "Publish it now")
    await creator.click("🚀 Publish")
    # Without lessons the course stays a draft; it is published after the first one.
    saved = await creator.wait_for_message(contains="saved as a draft")
    course_id = int(re.search(r"#(\d+)", saved.text).group(1))  # type: ignore[union-attr]
    await creator.wait_for_idle(quiet=0.15)
    for body in lessons:
        await say(creator, f"/addlesson {course_id}", "Send the lesson")
        await say(creator, body, "added as number")
    if lessons:
        await say(creator, f"/publish {course_id}", "is published")
    return course_id
