"""The rate-limited sender with a fake clock: global cap, per-chat spacing, 429, network."""

from __future__ import annotations

import itertools

import pytest

from bot.scheduler.clock import ManualClock
from bot.scheduler.errors import RetryAfter, Transient
from bot.scheduler.memory import MemorySender
from bot.scheduler.sender import Outgoing, RateLimitedSender, RateLimiter

MSG = Outgoing(text="hi")


def make(per_second: float = 30.0, chat_interval: float = 1.0):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    inner = MemorySender(clock)
    return (
        clock,
        inner,
        RateLimitedSender(
            inner, per_second=per_second, chat_interval=chat_interval, clock=clock, backoff=0.5
        ),
    )


async def test_global_cap_is_never_exceeded_over_any_second() -> None:
    _clock, inner, sender = make(per_second=30)
    for chat in range(300):
        await sender.send(chat, MSG)
    stamps = [s.at for s in inner.sent]
    # A little catch-up slack at the start, then exactly one per 1/30 s: any one-second
    # window holds at most the cap plus that slack (Telegram allows short bursts).
    slack = sender.limiter.slack
    for i in range(len(stamps)):
        window = [t for t in stamps[i:] if t < stamps[i] + 1.0 - 1e-9]
        assert len(window) <= 30 + slack
    elapsed = stamps[-1] - stamps[0]
    assert elapsed == pytest.approx((300 - 1 - slack) / 30, abs=1e-6)


async def test_a_group_gets_at_most_20_messages_a_minute() -> None:
    _clock, inner, sender = make(per_second=30, chat_interval=1.0)
    for _ in range(21):
        await sender.send(-1001, MSG)
    stamps = [s.at for s in inner.sent]
    assert all(b - a == pytest.approx(3.0) for a, b in itertools.pairwise(stamps))
    assert stamps[20] - stamps[0] == pytest.approx(60.0)  # the 21st, a minute after the first


async def test_per_chat_spacing() -> None:
    _clock, inner, sender = make(per_second=30, chat_interval=1.0)
    for _ in range(3):
        await sender.send(7, MSG)
    stamps = [s.at for s in inner.sent]
    assert stamps[1] - stamps[0] == pytest.approx(1.0)
    assert stamps[2] - stamps[1] == pytest.approx(1.0)
    assert sender.chat_wait(7) == pytest.approx(1.0)
    assert sender.chat_wait(8) == 0


async def test_429_pauses_every_send_then_retries_the_same_message() -> None:
    clock, inner, sender = make()
    inner.fail[1].append(RetryAfter(5))
    start = clock.monotonic()
    await sender.send(1, MSG)
    assert inner.sent[0].chat_id == 1
    assert inner.sent[0].at - start >= 5.0
    # Another chat is held back by the same pause window.
    before = clock.monotonic()
    limiter_wait = sender.limiter.reserve(2)
    assert clock.monotonic() == before and limiter_wait >= 0
    assert sender.stats.retry_after == 1


async def test_network_errors_back_off_then_give_up() -> None:
    clock, inner, sender = make()
    inner.fail[1].extend([Transient("reset"), Transient("reset")])
    await sender.send(1, MSG)
    assert len(inner.sent) == 1
    assert 0.5 in clock.slept and 1.0 in clock.slept
    inner.fail[2].extend([Transient("down")] * 10)
    with pytest.raises(Transient):
        await sender.send(2, MSG)


def test_limiter_slots_do_not_drift() -> None:
    clock = ManualClock()
    limiter = RateLimiter(10, 0.0, clock, slack=0)
    waits = []
    for chat in range(5):
        wait = limiter.reserve(chat)
        waits.append(wait)
        # The caller oversleeps by 10 ms every time; the next slot does not move.
        clock.advance(wait + 0.01)
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([0.09, 0.09, 0.09, 0.09])


async def test_calls_that_are_not_messages_share_the_global_cap() -> None:
    clock, inner, sender = make(per_second=10, chat_interval=1.0)
    stamps: list[float] = []

    async def ban() -> None:
        stamps.append(clock.monotonic())

    for chat in range(40):
        await sender.call(ban)  # no chat: spaced by the cap only, never per chat
        await sender.call(ban)
        await sender.send(chat, MSG)
    every = sorted(stamps + [s.at for s in inner.sent])
    slack = sender.limiter.slack
    assert every[-1] - every[0] == pytest.approx((120 - 1 - slack) / 10, abs=1e-6)


async def test_group_removals_wait_out_a_429_with_every_send() -> None:
    from aiogram import Bot
    from aiogram.exceptions import TelegramRetryAfter
    from aiogram.methods import BanChatMember, UnbanChatMember

    from bot.handlers.groups import BotChatAdmin
    from tests.support.recording import RecordingSession

    clock, inner, sender = make()
    session = RecordingSession()
    bot = Bot("42:TEST", session=session)
    admin = BotChatAdmin(bot, sender)
    session.add_result(TelegramRetryAfter(BanChatMember(chat_id=-100, user_id=5), "slow", 7))
    start = clock.monotonic()
    await admin.remove(-100, 5)
    # The ban was tried again after the pause, then the unban; nothing was lost.
    assert [type(r) for r in session.requests] == [BanChatMember, BanChatMember, UnbanChatMember]
    assert clock.monotonic() - start >= 7.0
    assert sender.stats.retry_after == 1
    # A message queued behind it waits for the same pause window, not less.
    await sender.send(2, MSG)
    assert inner.sent[0].at - start >= 7.0
