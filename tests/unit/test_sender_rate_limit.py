"""The rate-limited sender with a fake clock: global cap, per-chat spacing, 429, network."""

from __future__ import annotations

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
