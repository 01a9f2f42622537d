"""Telegram's flood limits as token buckets, and the sandbox's configuration."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


@dataclass
class RateLimits:
    """About 30 messages/s per bot, about 1/s per private chat (a short burst tolerated),
    20/min per group. The numbers are Telegram's documented guidance."""

    global_per_second: float = 30.0
    global_burst: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    # allow_paid_broadcast: up to 1000 messages/s; those above the free global rate are
    # billed PAID_BROADCAST_TENTHS tenths of a Star each from the bot's balance.
    paid_per_second: float = 1000.0
    paid_burst: int = 100


@dataclass
class SandboxConfig:
    token: str = "123456:SANDBOX-TOKEN"
    bot_username: str = "lyceum_sandbox_bot"
    bot_first_name: str = "Lyceum Sandbox"
    # None turns the flood limits off (fast tests); RateLimits() turns Telegram's on.
    limits: RateLimits | None = None
    # Added to every Bot API call, in seconds (benchmarks: a network round trip).
    latency: float = 0.0
    # How long the bot has to answer a pre_checkout_query (Telegram: 10 s).
    pre_checkout_timeout: float = 10.0
    # Webhook delivery: request timeout, first retry delay (doubling), and the cap.
    webhook_timeout: float = 10.0
    webhook_retry_delay: float = 1.0
    webhook_max_retry_delay: float = 30.0
    # Check every emitted result and update against the spec (violations log).
    validate_output: bool = True
    # Stars a new user starts with.
    default_stars: int = 10_000
    # Privacy mode (Telegram's default): a bot that is a plain member of a group sees only
    # commands and replies to it; an administrator bot sees everything.
    privacy_mode: bool = True
    # Longest getUpdates wait honoured.
    max_poll_timeout: float = 50.0
    extra: dict[str, object] = field(default_factory=dict)


# Telegram: "a fee of 0.1 Telegram Stars per message" (allow_paid_broadcast), in tenths.
PAID_BROADCAST_TENTHS = 1


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(max(burst, 1))
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        """Seconds until one token is available (0 when one is now)."""
        self._refill()
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1


def retry_after(seconds: float) -> int:
    """Telegram answers whole seconds, at least 1."""
    return max(1, math.ceil(seconds))
