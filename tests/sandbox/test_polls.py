"""Polls and quizzes, driven by python-telegram-bot (independent of the bot's aiogram): a quiz
the bot sends, a person's answer arriving as poll_answer, stopPoll, and a person's own quiz
handed to the bot."""

from __future__ import annotations

import pytest
import telegram
from telegram import InputPollOption
from telegram.error import BadRequest

from sandbox import SandboxServer
from sandbox.client import SandboxClient, SandboxClientError
from tests.sandbox.test_ptb import next_update


async def send_quiz(pbot: telegram.Bot, chat_id: int) -> telegram.Message:
    return await pbot.send_poll(
        chat_id,
        "2 + 2 = ?",
        [InputPollOption("3"), InputPollOption("4"), InputPollOption("5")],
        type="quiz",
        correct_option_ids=[1],
        is_anonymous=False,
        explanation="Count on your fingers",
    )


async def test_a_quiz_answer_reaches_the_bot_as_poll_answer(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    alice = await client.create_user("Alice")
    await alice.send("/start")
    sent = await send_quiz(pbot, alice.id)
    poll = sent.poll
    assert poll is not None and poll.type == "quiz" and not poll.is_anonymous
    assert list(poll.correct_option_ids or []) == [1]
    assert poll.explanation == "Count on your fingers" and not poll.allows_revoting

    shown = await alice.wait_for_message(contains="2 + 2 = ?")
    assert shown.poll is not None and [o["text"] for o in shown.poll["options"]] == ["3", "4", "5"]
    answer = await alice.vote(shown, 0)
    assert answer["correct"] is False and answer["explanation"] == "Count on your fingers"

    update = await next_update(pbot, "poll_answer")
    pa = update.poll_answer
    assert pa is not None and pa.poll_id == poll.id and pa.user is not None
    assert pa.user.id == alice.id and list(pa.option_ids) == [0]
    assert list(pa.option_persistent_ids or []) == ["0"]
    # A quiz takes one answer: the second tap is refused and nothing is sent.
    with pytest.raises(SandboxClientError) as err:
        await alice.vote(shown, 1)
    assert err.value.status == 409
    assert [u for u in await client.pending_updates() if "poll_answer" in u] == []

    stopped = await pbot.stop_poll(alice.id, sent.message_id)
    assert stopped.is_closed and stopped.total_voter_count == 1
    assert [o.voter_count for o in stopped.options] == [1, 0, 0]
    with pytest.raises(BadRequest, match=r"(?i)already been closed"):
        await pbot.stop_poll(alice.id, sent.message_id)
    bob = await client.create_user("Bob")
    await bob.send("/start")
    with pytest.raises(SandboxClientError):
        await alice.vote(shown, 1)  # closed
    assert server.violations == []


async def test_anonymous_polls_send_no_poll_answer(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    alice = await client.create_user("Alice")
    await alice.send("/start")
    await pbot.get_updates(offset=-1)
    sent = await pbot.send_poll(alice.id, "Tea or coffee?", ["Tea", "Coffee"])
    assert sent.poll is not None and sent.poll.is_anonymous and sent.poll.type == "regular"
    shown = await alice.wait_for_message(contains="Tea or coffee?")
    await alice.vote(shown, 1)
    await alice.vote(shown, 0)  # regular polls can be re-voted
    kinds = [k for u in await client.pending_updates() for k in u if k != "update_id"]
    assert "poll_answer" not in kinds and "poll" in kinds
    assert server.violations == []


async def test_bad_polls_are_refused_as_telegram_does(
    client: SandboxClient, pbot: telegram.Bot
) -> None:
    alice = await client.create_user("Alice")
    await alice.send("/start")
    with pytest.raises(BadRequest, match=r"(?i)need correct_option_ids"):
        await pbot.send_poll(alice.id, "Q", ["a", "b"], type="quiz")
    with pytest.raises(BadRequest, match=r"(?i)wrong correct option"):
        await pbot.send_poll(alice.id, "Q", ["a", "b"], type="quiz", correct_option_ids=[5])
    with pytest.raises(BadRequest, match=r"(?i)question"):
        await pbot.send_poll(alice.id, "x" * 301, ["a", "b"])
    with pytest.raises(BadRequest, match=r"(?i)options"):
        await pbot.send_poll(alice.id, "Q", [str(i) for i in range(13)])
    with pytest.raises(BadRequest, match=r"(?i)explanation"):
        await pbot.send_poll(
            alice.id, "Q", ["a", "b"], type="quiz", correct_option_ids=[0], explanation="e" * 201
        )
    hello = await pbot.send_message(alice.id, "hello")
    with pytest.raises(BadRequest, match=r"(?i)poll to stop not found"):
        await pbot.stop_poll(alice.id, hello.message_id)


async def test_a_persons_quiz_reaches_the_bot_with_its_answer(
    server: SandboxServer, client: SandboxClient, pbot: telegram.Bot
) -> None:
    carol = await client.create_user("Carol")
    await carol.send_poll(
        "Capital of France?", ["Rome", "Paris"], correct_option_id=1, explanation="Paris",
        forwarded=True,
    )  # fmt: skip
    message = (await next_update(pbot, "message")).message
    assert message is not None and message.poll is not None
    assert message.poll.type == "quiz" and list(message.poll.correct_option_ids or []) == [1]
    assert message.forward_origin is not None
    with pytest.raises(SandboxClientError) as err:
        await carol.send_poll("", ["a"])
    assert err.value.status == 400
    assert server.violations == []
