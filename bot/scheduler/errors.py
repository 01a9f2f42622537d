"""What a send can end in, independent of the Telegram library underneath."""

from __future__ import annotations


class SendError(Exception):
    """Base of every failure a Sender reports."""


class RetryAfter(SendError):
    """429: Telegram asks the whole bot to wait."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"retry after {retry_after}s")
        self.retry_after = float(retry_after)


class Unreachable(SendError):
    """403: the user blocked the bot (or deleted their account)."""


class ChatNotFound(SendError):
    """400 chat not found: the chat never existed for this bot. Retrying will not help."""


class Rejected(SendError):
    """Any other 4xx: the message itself is wrong (bad file_id, too long). Permanent."""


class Transient(SendError):
    """Network trouble or a 5xx: try again later, nothing is wrong with the message."""
