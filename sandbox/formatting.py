"""Telegram's formatting options: HTML (and a lenient MarkdownV2/Markdown) to plain text plus
MessageEntity objects, with offsets in UTF-16 code units as Telegram counts them."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "span": "spoiler",
}


class EntityParseError(ValueError):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.length = 0
        self.stack: list[tuple[str, int, dict[str, str | None]]] = []
        self.entities: list[dict[str, Any]] = []
        self._pre_language: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.handle_data("\n")
            return
        if tag not in _TAGS:
            raise EntityParseError(f'Unsupported start tag "{tag}"')
        self.stack.append((tag, self.length, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise EntityParseError(f'Unmatched end tag "{tag}"')
        _, start, attrs = self.stack.pop()
        length = self.length - start
        if length == 0:
            return
        entity: dict[str, Any] = {"type": _TAGS[tag], "offset": start, "length": length}
        if tag == "a":
            href = attrs.get("href") or ""
            if href.startswith("tg://user?id="):
                entity["type"] = "text_mention"
                entity["user"] = {"id": int(href.split("=", 1)[1]), "is_bot": False,
                                  "first_name": "User"}  # fmt: skip
            else:
                entity["url"] = href
        elif tag == "tg-emoji":
            entity["custom_emoji_id"] = attrs.get("emoji-id") or "0"
        elif tag == "code" and self.stack and self.stack[-1][0] == "pre":
            # <pre><code class="language-x"> sets the language of the pre entity.
            cls = attrs.get("class") or ""
            if cls.startswith("language-"):
                self._pre_language = cls[len("language-") :]
            return
        if tag == "pre" and self._pre_language:
            entity["language"] = self._pre_language
            self._pre_language = None
        self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        self.length += utf16_len(data)


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    parser = _Parser()
    try:
        parser.feed(source)
        parser.close()
    except EntityParseError as exc:
        raise EntityParseError(f"can't parse entities: {exc}") from exc
    if parser.stack:
        raise EntityParseError(f"can't parse entities: Can't find end tag corresponding to start "
                               f"tag \"{parser.stack[-1][0]}\"")  # fmt: skip
    parser.entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.text), parser.entities


_MD_MARKERS = re.compile(r"(\*|__|_|~|\|\||`)")


def parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    """A lenient MarkdownV2 reading: markers dropped, escapes resolved, no entities kept."""
    text = _MD_MARKERS.sub("", source)
    text = re.sub(r"\\(.)", r"\1", text)
    return text, []


def format_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    if entities:
        return text, entities
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode in ("markdown", "markdownv2"):
        return parse_markdown(text)
    return text, []


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entity Telegram adds to a message that starts with /command."""
    m = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
    if not m:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))}]
