"""Our Command filters say no sooner than aiogram's, and never differently."""

from __future__ import annotations

import re

from aiogram import Bot
from aiogram.filters import Command as AiogramCommand
from aiogram.filters import CommandStart as AiogramCommandStart
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.handlers.common import Command, CommandStart
from tests.support.recording import RecordingSession
from tests.support.updates import message_update, tg_user

TEXTS = [
    "/search python",
    "/search",
    "/search@lyceum_test_bot python",
    "/search@other_bot python",
    "/SEARCH python",
    "/searchx",
    "/",
    "/ search",
    "//search",
    "search",
    "",
    "/start",
    "/start c_12",
    "/start@lyceum_test_bot r_abc",
    "/Start",
    "!search x",
    "/search\npython",
    "/plan 3 price=10",
    "/planx",
]

FILTERS = [
    (Command("search"), AiogramCommand("search")),
    (Command("search", ignore_case=True), AiogramCommand("search", ignore_case=True)),
    (Command("search", "plan"), AiogramCommand("search", "plan")),
    (Command("search", prefix="/!"), AiogramCommand("search", prefix="/!")),
    (Command(re.compile(r"pl\w+")), AiogramCommand(re.compile(r"pl\w+"))),
    (CommandStart(), AiogramCommandStart()),
    (CommandStart(deep_link=True), AiogramCommandStart(deep_link=True)),
]


async def _same(text: str, bot: Bot) -> None:
    message = message_update(text or None, tg_user()).message
    assert message is not None
    for ours, theirs in FILTERS:
        expected = await theirs(message, bot)
        got = await ours(message, bot)
        assert bool(got) == bool(expected), (text, ours)
        if isinstance(expected, dict) and isinstance(got, dict):
            a, b = got["command"], expected["command"]
            assert (a.prefix, a.command, a.mention, a.args) == (
                b.prefix,
                b.command,
                b.mention,
                b.args,
            )


async def test_known_texts_get_the_same_verdict() -> None:
    bot = Bot("42:TEST", session=RecordingSession())
    for text in TEXTS:
        await _same(text, bot)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("/!@ \nsearchplantSTART_1xy"), max_size=24),
)
async def test_random_texts_get_the_same_verdict(text: str) -> None:
    await _same(text, Bot("42:TEST", session=RecordingSession()))
