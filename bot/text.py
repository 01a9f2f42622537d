"""Text helpers shared by services, keyboards and handlers (no aiogram here): Telegram's
lengths of HTML text, cutting HTML without breaking it, and shortening titles.

Telegram counts a message's length after it has parsed the entities (tags gone, `&amp;`
one character) and in UTF-16 code units (an emoji outside the BMP counts 2). A text over
4096 (a caption over 1024) is refused with a 400, and so is HTML cut inside a tag: both
are measured and cut here, never with `len()` and slicing. No aiogram inside.
"""

from __future__ import annotations

import unicodedata
from html import escape
from html.parser import HTMLParser

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """What the reader sees of Telegram HTML: tags dropped, entities resolved."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def visible_length(html: str) -> int:
    """The length Telegram checks against its limits, in UTF-16 code units."""
    return utf16_len(visible_text(html))


def _utf16_prefix(text: str, limit: int) -> str:
    """The longest prefix of `text` of at most `limit` UTF-16 code units."""
    count = 0
    for index, char in enumerate(text):
        count += 2 if ord(char) > 0xFFFF else 1
        if count > limit:
            return text[:index]
    return text


def clip_html(html: str, limit: int = TEXT_LIMIT) -> str:
    """`html` if it fits `limit`; otherwise cut at a line break and marked with "…".

    The bot's own texts are lists whose lines are each whole HTML, so a line break is a
    safe place to cut. Without one in reach, the text loses its formatting rather than
    being cut inside a tag. The source's UTF-16 length bounds the visible one, so a cut
    source always fits."""
    if utf16_len(html) <= limit or visible_length(html) <= limit:
        return html
    head = _utf16_prefix(html, limit - len(ELLIPSIS))
    cut = head.rfind("\n")
    if cut > 0:
        return head[:cut] + "\n" + ELLIPSIS
    plain = _utf16_prefix(visible_text(html), limit - len(ELLIPSIS))
    return escape(plain, quote=False) + ELLIPSIS


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
