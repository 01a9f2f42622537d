"""Log lines: plain text or JSON lines (LOG_FORMAT=json), each with the update and user
it belongs to, and never a secret.

The update id and user id live in context variables that the outermost update
middleware sets (bot.middlewares.observe); asyncio copies the context into every task
an update starts, so each line logged while handling it carries both.

Secrets are scrubbed from the finished line, whatever logged it (aiogram, aiohttp,
SQLAlchemy, a traceback): the bot token, the webhook secret, Stripe's keys, the provider
token and the passwords inside DATABASE_URL and REDIS_URL are replaced by `***`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from bot.config import Settings

UPDATE_ID: ContextVar[int | None] = ContextVar("lyceum_update_id", default=None)
USER_ID: ContextVar[int | None] = ContextVar("lyceum_user_id", default=None)

MASK = "***"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def secrets_of(settings: Settings) -> list[str]:
    """Every secret value in the settings, longest first (a token contains its bot id)."""
    found = [
        settings.token or "",
        _plain(settings.webhook_secret),
        _plain(settings.stripe_secret_key),
        _plain(settings.stripe_webhook_secret),
        settings.provider_token,
        _password(settings.database_url),
        _password(_plain(settings.redis_url)),
    ]
    # A bot token is "<bot id>:<secret>": the part after the colon is the secret one.
    if settings.token and ":" in settings.token:
        found.append(settings.token.split(":", 1)[1])
    # Very short values would mask ordinary words; no real secret is that short.
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)


def _plain(value: Any) -> str:
    return value.get_secret_value() if value is not None else ""


def _password(url: str) -> str:
    if not url:
        return ""
    try:
        return make_url(url).password or ""
    except Exception:
        return ""


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class ContextFilter(logging.Filter):
    """Puts the current update id and user id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.update_id = UPDATE_ID.get()
        record.user_id = USER_ID.get()
        return True


class ScrubbingFormatter(logging.Formatter):
    """Plain text; the update and user appended when there are any; secrets masked."""

    def __init__(self, secrets: list[str], fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        update_id = getattr(record, "update_id", None)
        user_id = getattr(record, "user_id", None)
        if update_id is not None or user_id is not None:
            line += f" [update={update_id} user={user_id}]"
        return scrub(line, self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, update_id, user_id and,
    for an exception, its traceback; secrets masked in every field."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "update_id": getattr(record, "update_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return scrub(json.dumps(entry, ensure_ascii=False, default=str), self.secrets)


def formatter_for(settings: Settings) -> logging.Formatter:
    secrets = secrets_of(settings)
    if settings.log_format == "json":
        return JsonFormatter(secrets)
    return ScrubbingFormatter(secrets)


def install(settings: Settings, handler: logging.Handler | None = None) -> logging.Handler:
    """Root logging for the process: one handler (stderr unless given), our format."""
    root = logging.getLogger()
    handler = handler or logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    handler.addFilter(ContextFilter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    # aiohttp access logs would print request paths, which carry the bot token.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
