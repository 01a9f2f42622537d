"""Observability: /healthz and /metrics on the bot's HTTP server, JSON log lines with the
update and the user, and no secret in any log line or metric.

A whole flow runs with known secrets configured (bot token, webhook secret, Stripe's
keys, the provider token, a DATABASE_URL password): a purchase in Stars, a refund, a
lesson sent by the scheduler after a 429, a handler that fails. Every captured log line
and the /metrics body are then searched for each secret.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.methods import SendMessage
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.app import App, build_app
from bot.config import Settings
from bot.keyboards.callbacks import CourseCB
from bot.models import Job
from bot.ops import logs
from bot.ops.web import add_routes
from bot.scheduler.clock import ManualClock
from tests.integration.test_payments_admin import ANN, MAYA, paid_stars_order
from tests.support.payments import (
    PayRecordingSession,
    make_course,
    pay_settings,
)
from tests.support.updates import Harness, settle

TOKEN_SECRET = "AAHsecretTOKENpart123"
SECRETS = {
    "bot token": f"4242:{TOKEN_SECRET}",
    "webhook secret": "whsecretWEBHOOK987",
    "stripe key": "sk_test_SECRETstripeKEY",
    "stripe webhook secret": "whsec_SECRETsigningKEY",
    "provider token": "284685063:TEST:SECRETprovider",
    "database password": "DBpassWORDsecret42",
}


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The engine is the test database's; DATABASE_URL is only read to find its password.
    return pay_settings(
        "postgresql+asyncpg://lyceum:" + SECRETS["database password"] + "@db.internal/lyceum",
        bot_token=SECRETS["bot token"],
        webhook_secret=SECRETS["webhook secret"],
        stripe_secret_key=SECRETS["stripe key"],
        stripe_webhook_secret=SECRETS["stripe webhook secret"],
        payments_provider_token=SECRETS["provider token"],
        log_format="json",
        log_level="DEBUG",
    )


@pytest.fixture
async def app(settings: Settings, engine: AsyncEngine) -> AsyncIterator[App]:
    app = build_app(settings, session=PayRecordingSession(), engine=engine, clock=ManualClock())
    yield app
    await settle(app)


@pytest.fixture
def captured(settings: Settings) -> Iterator[io.StringIO]:
    """Everything logged, through the process's own handler and JSON formatter."""
    root = logging.getLogger()
    kept, level = list(root.handlers), root.level
    out = io.StringIO()
    logs.install(settings, logging.StreamHandler(out))
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in kept:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    web_app = web.Application()
    add_routes(web_app, app.health_probe())
    async with TestClient(TestServer(web_app)) as client:
        yield client


def _sample(body: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text format, 0 when absent."""
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in body.splitlines():
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric == name and set(filter(None, rest.rstrip("}").split(","))) == want:
            return float(value)
    return 0.0


async def test_a_flow_with_secrets_leaks_none_and_is_measured(
    app: App,
    db: AsyncSession,
    captured: io.StringIO,
    client: TestClient[web.Request, web.Application],
) -> None:
    h = Harness(app)
    before = await (await client.get("/metrics")).text()
    _, course_id = await make_course(db, stars=500)

    await h.send("/start", ANN)
    await h.press(CourseCB(id=course_id).pack(), ANN)
    ref = await paid_stars_order(h, course_id)
    await h.send(f"/refund {ref}", MAYA)
    # A handler that fails: the error handler logs it (with its traceback).
    h.session.add_result(
        TelegramServerError(
            SendMessage(chat_id=ANN.id, text="x"), f"boom at /bot{SECRETS['bot token']}/send"
        )
    )
    await h.send("/help", ANN)
    # A scheduled message meets a 429 first, then goes.
    db.add(
        Job(kind="notice", payload={"chat": ANN.id, "text": "hi"}, run_at=app.scheduler.clock.now())
    )
    await db.commit()
    h.session.clear()
    h.session.add_result(
        TelegramRetryAfter(SendMessage(chat_id=1, text="x"), "Too Many Requests", retry_after=1)
    )
    await app.scheduler.drain()
    # Something careless in the code: the whole settings object in a log line.
    logging.getLogger("careless").warning("settings are %r, url %s", app.settings, app.settings)
    logging.getLogger("careless").warning("db at %s", app.settings.database_url)

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    body = await response.text()
    health = await client.get("/healthz")
    health_body = await health.text()
    assert health.status == 200, health_body
    report = json.loads(health_body)
    assert report["database"] == "ok" and report["redis"] == "not configured"
    assert report["scheduler"]["status"] == "ok"

    # Nothing secret anywhere: not whole, not the token's secret half.
    text = captured.getvalue()
    assert text, "nothing was logged"
    for what, secret in {**SECRETS, "token part": TOKEN_SECRET}.items():
        assert secret not in text, f"the {what} is in a log line"
        assert secret not in body, f"the {what} is in /metrics"
        assert secret not in health_body, f"the {what} is in /healthz"
    assert "***" in text  # the careless lines were masked, not dropped

    # Every line is JSON; lines logged while handling an update name it and its user.
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    failed = [r for r in lines if r["msg"].startswith("update ") and "failed" in r["msg"]]
    assert failed and failed[0]["user_id"] == ANN.id and failed[0]["update_id"] is not None
    assert "exc" in failed[0]

    def grew(name: str, **labels: str) -> float:
        return _sample(body, name, **labels) - _sample(before, name, **labels)

    assert grew("lyceum_updates_total", type="message") >= 4
    assert grew("lyceum_updates_total", type="pre_checkout_query") == 1
    assert grew("lyceum_updates_total", type="callback_query") >= 1
    assert grew("lyceum_handler_seconds_count", type="message") >= 4
    assert grew("lyceum_bot_api_calls_total", method="sendInvoice") == 1
    assert grew("lyceum_bot_api_calls_total", method="refundStarPayment") == 1
    assert grew("lyceum_bot_api_errors_total", method="sendMessage", code="429") == 1
    assert grew("lyceum_telegram_429_pauses_total") == 1
    assert grew("lyceum_payments_booked_total", currency="XTR") == 1
    assert grew("lyceum_payments_booked_minor_total", currency="XTR") == 500
    assert grew("lyceum_payments_refunded_total", currency="XTR") == 1
    assert grew("lyceum_scheduler_claimed_total", queue="jobs") >= 1
    assert "lyceum_scheduler_lag_seconds" in body
    assert "lyceum_scheduler_due" in body


async def test_healthz_says_503_when_the_scheduler_is_behind(
    app: App, db: AsyncSession, client: TestClient[web.Request, web.Application]
) -> None:
    clock = app.scheduler.clock
    db.add(Job(kind="notice", payload={"chat": 1, "text": "hi"}, run_at=clock.now()))
    await db.commit()
    assert isinstance(clock, ManualClock)
    clock.advance(app.settings.health_max_lag + 60)
    response = await client.get("/healthz")
    assert response.status == 503
    report = json.loads(await response.text())
    assert report["scheduler"]["status"] == "behind" and report["scheduler"]["due_jobs"] == 1
    assert report["scheduler"]["lag_seconds"] >= app.settings.health_max_lag
    metrics_body = await (await client.get("/metrics")).text()
    assert _sample(metrics_body, "lyceum_scheduler_due", queue="jobs") == 1


async def test_healthz_says_503_when_the_database_is_unreachable(
    settings: Settings, engine: AsyncEngine
) -> None:
    from bot.db import create_engine

    broken = create_engine("sqlite+aiosqlite:////nonexistent/dir/x.sqlite3")
    app = build_app(settings, session=PayRecordingSession(), engine=broken)
    web_app = web.Application()
    add_routes(web_app, app.health_probe())
    async with TestClient(TestServer(web_app)) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        report = json.loads(await response.text())
        assert report["database"].startswith("error")
        assert "nonexistent" not in json.dumps(report)  # the type of error, not its text
    await broken.dispose()


async def test_healthz_pings_redis(settings: Settings, engine: AsyncEngine, redis_url: str) -> None:
    with_redis = settings.model_copy(update={"redis_url": redis_url})
    from pydantic import SecretStr

    with_redis.redis_url = SecretStr(redis_url)
    app = build_app(with_redis, session=PayRecordingSession(), engine=engine)
    web_app = web.Application()
    add_routes(web_app, app.health_probe())
    try:
        async with TestClient(TestServer(web_app)) as client:
            report = json.loads(await (await client.get("/healthz")).text())
            assert report["redis"] == "ok"
    finally:
        await app.dp.storage.close()


def test_text_log_lines_carry_the_update_and_mask_secrets(settings: Settings) -> None:
    text_settings = settings.model_copy(update={"log_format": "text"})
    formatter = logs.formatter_for(text_settings)
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "token %s", (SECRETS["bot token"],), None
    )
    record.update_id, record.user_id = 5, 1001
    line = formatter.format(record)
    assert SECRETS["bot token"] not in line and "***" in line
    assert "[update=5 user=1001]" in line


async def test_polling_mode_listener_on_metrics_port(
    settings: Settings, engine: AsyncEngine
) -> None:
    import aiohttp

    from bot.app import start_ops_server
    from tests.support.servers import free_port

    port = free_port()
    with_port = settings.model_copy(update={"metrics_port": port})
    app = build_app(with_port, session=PayRecordingSession(), engine=engine)
    runner = await start_ops_server(app)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert (await response.json())["database"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert "lyceum_updates_total" in await response.text()
    finally:
        await runner.cleanup()
    no_port = build_app(settings, session=PayRecordingSession(), engine=engine)
    assert await start_ops_server(no_port) is None


async def test_the_webhook_server_serves_health_and_metrics(
    settings: Settings, engine: AsyncEngine
) -> None:
    from bot.app import webhook_web_app

    hooked = settings.model_copy(update={"webhook_url": "https://bot.example.com/tg"})
    app = build_app(hooked, session=PayRecordingSession(), engine=engine)
    web_app = webhook_web_app(app, SECRETS["webhook secret"])
    async with TestClient(TestServer(web_app)) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        assert json.loads(await response.text())["database"] == "ok"
        assert "lyceum_bot_api_calls_total" in await (await client.get("/metrics")).text()
        # Telegram's route is there, and still wants the secret.
        assert (await client.post("/tg", json={"update_id": 1})).status == 401
    # With a port of their own, the public webhook server does not serve them.
    apart = build_app(
        hooked.model_copy(update={"metrics_port": 9}), session=PayRecordingSession(), engine=engine
    )
    async with TestClient(TestServer(webhook_web_app(apart, "s3cretvalue"))) as client:
        assert (await client.get("/metrics")).status == 404
