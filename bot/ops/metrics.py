"""The Prometheus metrics of one process, served at /metrics (bot.ops.web).

Labels are only ever closed sets chosen by the code (update types, Bot API method
names, error codes, job kinds, currencies): never ids, names, texts or URLs, so that no
secret and no learner can end up in a metric, and the series stay few.

Money is counted once its transaction committed (`after_commit`): a booking that rolls
back is not in the metrics, as it is not in the books.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

# No *_created series: they double the output and no dashboard of ours reads them.
disable_created_metrics()
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UPDATES = Counter("lyceum_updates", "Updates received, by type", ["type"], registry=REGISTRY)
HANDLER_SECONDS = Histogram(
    "lyceum_handler_seconds",
    "Time to handle one update (middlewares and handler), by update type",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
HANDLER_ERRORS = Counter(
    "lyceum_handler_errors", "Updates whose handler raised", ["type"], registry=REGISTRY
)
API_CALLS = Counter(
    "lyceum_bot_api_calls", "Bot API requests, by method", ["method"], registry=REGISTRY
)
API_ERRORS = Counter(
    "lyceum_bot_api_errors",
    "Bot API requests that failed, by method and code (HTTP code, or 'network')",
    ["method", "code"],
    registry=REGISTRY,
)
PAUSES_429 = Counter(
    "lyceum_telegram_429_pauses", "Times the scheduler's sender paused on a 429", registry=REGISTRY
)
PAUSED_429_SECONDS = Counter(
    "lyceum_telegram_429_pause_seconds",
    "Seconds of 429 pauses the scheduler's sender waited out",
    registry=REGISTRY,
)
SCHEDULER_DUE = Gauge(
    "lyceum_scheduler_due",
    "Deliveries and jobs due now and not yet claimed, whole deployment (read at scrape)",
    ["queue"],
    registry=REGISTRY,
)
SCHEDULER_CLAIMED = Counter(
    "lyceum_scheduler_claimed", "Deliveries and jobs claimed", ["queue"], registry=REGISTRY
)
SCHEDULER_SENT = Counter(
    "lyceum_scheduler_sent", "Lessons sent, and jobs finished", ["queue"], registry=REGISTRY
)
SCHEDULER_FAILED = Counter(
    "lyceum_scheduler_failed",
    "Deliveries and jobs that failed for good",
    ["queue"],
    registry=REGISTRY,
)
SCHEDULER_LAG = Gauge(
    "lyceum_scheduler_lag_seconds",
    "How late the oldest due, unclaimed row is, whole deployment (read at scrape)",
    registry=REGISTRY,
)
SCHEDULER_LAST_ROUND = Gauge(
    "lyceum_scheduler_last_round_timestamp",
    "Unix time of the scheduler's last round in this process",
    registry=REGISTRY,
)
PAYMENTS_BOOKED = Counter(
    "lyceum_payments_booked",
    "Payments booked in the ledger (committed), by currency",
    ["currency"],
    registry=REGISTRY,
)
PAYMENTS_BOOKED_MINOR = Counter(
    "lyceum_payments_booked_minor",
    "Gross amount booked, in minor units of the currency (Stars for XTR)",
    ["currency"],
    registry=REGISTRY,
)
PAYMENTS_REFUNDED = Counter(
    "lyceum_payments_refunded",
    "Refunds booked in the ledger (committed), by currency",
    ["currency"],
    registry=REGISTRY,
)
PAYMENTS_REFUNDED_MINOR = Counter(
    "lyceum_payments_refunded_minor",
    "Gross amount refunded, in minor units of the currency",
    ["currency"],
    registry=REGISTRY,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def render() -> bytes:
    return generate_latest(REGISTRY)


# --- counted when the transaction commits ------------------------------------------------

_PENDING = "lyceum.metrics"


def after_commit(session: Session, step: Callable[[], None]) -> None:
    """Run `step` once `session`'s transaction commits; drop it on a rollback."""
    session.info.setdefault(_PENDING, []).append(step)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for step in session.info.pop(_PENDING, ()):
        step()


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: SessionTransaction) -> None:
    # A savepoint rolled back (a duplicate caught and skipped) undoes only its own part:
    # what the outer transaction booked still commits.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def money_booked(session: Session, kind: str, currency: str, gross_minor: int) -> None:
    """A ledger row was written: count it when it is committed."""

    def count() -> None:
        if kind == "refund":
            PAYMENTS_REFUNDED.labels(currency).inc()
            PAYMENTS_REFUNDED_MINOR.labels(currency).inc(abs(gross_minor))
        else:
            PAYMENTS_BOOKED.labels(currency).inc()
            PAYMENTS_BOOKED_MINOR.labels(currency).inc(abs(gross_minor))

    after_commit(session, count)
