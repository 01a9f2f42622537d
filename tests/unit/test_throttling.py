from __future__ import annotations

from bot.middlewares.throttling import ThrottlingMiddleware


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = Clock()
    mw = ThrottlingMiddleware(rate=0.5, burst=3, clock=clock)
    assert [mw.allow(1) for _ in range(4)] == [True, True, True, False]
    assert mw.allow(2)  # other users are not affected
    clock.now += 0.5
    assert mw.allow(1)
    assert not mw.allow(1)


def test_disabled() -> None:
    mw = ThrottlingMiddleware(rate=0, burst=1)
    assert all(mw.allow(1) for _ in range(100))
