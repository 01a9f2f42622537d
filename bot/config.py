"""Typed settings, read once from the environment (and an optional .env file).

Every setting is documented in .env.example. Secrets are SecretStr so that they never
show up in a repr, a log line or a traceback.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DB_PATH = Path("data") / "lyceum.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- Telegram -------------------------------------------------------------------------
    bot_token: SecretStr | None = None
    telegram_api_url: str = ""
    webhook_url: str = ""
    webhook_secret: SecretStr | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8080

    # --- Storage --------------------------------------------------------------------------
    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DB_PATH}"
    database_echo: bool = False
    # Where conversation steps (a course being created, a promo code asked for) are kept:
    # empty = this process's memory; with several workers, a Redis they share.
    redis_url: SecretStr | None = None
    fsm_ttl_days: int = Field(default=7, ge=1)

    # --- People and locale ----------------------------------------------------------------
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    default_language: Literal["en", "zh"] = "en"
    timezone: str = "UTC"

    # --- Flood control --------------------------------------------------------------------
    throttle_rate: float = Field(default=0.3, ge=0.0)
    throttle_burst: int = Field(default=5, ge=1)

    # --- Catalog --------------------------------------------------------------------------
    catalog_page_size: int = Field(default=6, ge=1, le=20)

    # --- Payments -------------------------------------------------------------------------
    payments_stars_enabled: bool = True
    payments_provider_token: SecretStr | None = None
    platform_fee_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    order_ttl_minutes: int = Field(default=24 * 60, ge=1)
    stripe_secret_key: SecretStr | None = None
    stripe_api_base: str = ""
    stripe_webhook_secret: SecretStr | None = None
    stripe_webhook_path: str = "/stripe/webhook"
    stripe_checkout_success_url: str = ""
    stripe_checkout_cancel_url: str = ""

    # --- Scheduler: drip lessons, broadcasts and other timed jobs --------------------------
    scheduler_enabled: bool = True
    # Messages per second for the whole deployment: with REDIS_URL every process shares
    # this one cap (and the per-chat spacing, and 429 pauses); without, one process has it.
    scheduler_rate: float = Field(default=30.0, gt=0.0)
    scheduler_chat_interval: float = Field(default=1.0, ge=0.0)
    # Seconds between two messages to one group (Telegram: 20 per minute); shared limits.
    scheduler_group_interval: float = Field(default=3.0, ge=0.0)
    scheduler_batch: int = Field(default=50, ge=1, le=1000)
    # Paid broadcasts (allow_paid_broadcast): their own cap, up to Telegram's 1000/s, for
    # the whole deployment with REDIS_URL (else per process); they use the free rate's
    # idle slots first (bot.scheduler.sender.paid_slot). 3% below Telegram's cap: a
    # sender at exactly the cap drifts into Telegram's bucket sooner or later (clocks
    # and network never agree to the millisecond), and one 429 pauses every send for a
    # second; bench/broadcast.py: 1000 gave 198 × 429 in 100,000, 970 none.
    paid_broadcast_rate: float = Field(default=970.0, gt=0.0, le=1000.0)
    scheduler_poll_interval: float = Field(default=1.0, gt=0.0)
    scheduler_lease: float = Field(default=60.0, ge=5.0)

    # --- Growth: abandoned-checkout reminders ---------------------------------------------
    # Hours after an unpaid invoice was opened before its one reminder goes out.
    abandoned_reminder_hours: int = Field(default=6, ge=1, le=24 * 7)

    # --- Paid groups ----------------------------------------------------------------------
    grace_period_hours: int = Field(default=24, ge=0, le=24 * 30)

    # --- Operations -----------------------------------------------------------------------
    # text: human-readable lines; json: one JSON object per line (update_id, user_id).
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # /healthz and /metrics on their own port (polling mode has no other HTTP server; in
    # webhook mode this keeps them off the public webhook port). None: polling serves
    # none, webhook mode serves them on the webhook server.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"
    # /healthz answers 503 when the scheduler is this many seconds behind.
    health_max_lag: float = Field(default=300.0, gt=0.0)
    # Raw funnel events older than this many days are deleted by a daily job; the
    # analytics rollups built from them stay. 0 keeps them for ever.
    events_keep_days: int = Field(default=0, ge=0, le=36_500)

    # --- Testing only -----------------------------------------------------------------------
    # A file holding seconds to add to the bot's clock (bot.scheduler.clock.OffsetFileClock).
    clock_offset_file: str = ""

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        # Operators write ADMIN_IDS=1,2,3; accept that as well as a JSON list.
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            return frozenset(int(p) for p in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_port(cls, value: object) -> object:
        # .env.example leaves METRICS_PORT= empty: that means "not set", not port "".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("telegram_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _test_clock_off_telegram(self) -> Settings:
        # A moved clock sends real learners lessons days early: only on a local Bot API
        # server (the sandbox), never on Telegram's own.
        if self.clock_offset_file and not self.telegram_api_url:
            raise ValueError(
                "CLOCK_OFFSET_FILE is for tests and demos and is refused on Telegram's own "
                "servers: set TELEGRAM_API_URL to a local Bot API server, or remove it"
            )
        return self

    @property
    def token(self) -> str | None:
        return self.bot_token.get_secret_value() if self.bot_token else None

    @property
    def provider_token(self) -> str:
        """The Stripe provider token from @BotFather; empty means no card invoices."""
        return (
            self.payments_provider_token.get_secret_value() if self.payments_provider_token else ""
        )

    @property
    def stripe_key(self) -> str:
        return self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
