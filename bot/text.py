"""Plain-text helpers shared by services, keyboards and handlers (no aiogram here)."""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
# Cutting at a space further back than this share of the limit would lose too much of
# the title: a long single word is cut inside instead.
_MIN_KEPT = 0.5
_TRAILING = " \t\n,;:-–—/·|([{"


def _wide(char: str) -> bool:
    # Chinese and Japanese are written without spaces: any two wide characters are a
    # place where a line (and so a title) may break.
    return unicodedata.east_asian_width(char) in ("W", "F")


def _breaks_between(before: str, after: str) -> bool:
    return before.isspace() or after.isspace() or _wide(before) or _wide(after)


def shorten(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, cut at a word boundary with an ellipsis.

    Between CJK characters every position is a boundary; a single word longer than
    half the limit is cut inside, since cutting before it would leave almost nothing.
    """
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[:limit]
    room = limit - len(ELLIPSIS)
    cut = room
    while cut > 0 and not _breaks_between(text[cut - 1], text[cut]):
        cut -= 1
    if cut < room * _MIN_KEPT:
        cut = room
    head = text[:cut].rstrip(_TRAILING) or text[:room]
    return head + ELLIPSIS
