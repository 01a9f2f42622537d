"""The one place that wires engine, Bot, Dispatcher, routers, middlewares and services."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, ErrorEvent
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db import create_engine, create_sessionmaker
from bot.i18n import PoI18n, create_i18n, pick_locale
from bot.marketplace import sponsored
from bot.marketplace.card_extras import card_extras
from bot.middlewares.db import DbSessionMiddleware
from bot.middlewares.i18n import LocaleMiddleware
from bot.middlewares.isolation import KeyedLocks
from bot.middlewares.observe import ObserveMiddleware
from bot.middlewares.throttling import ThrottlingMiddleware
from bot.middlewares.user import UserMiddleware
from bot.ops.health import HealthProbe
from bot.polling import PaymentSafeDispatcher, books_money
from bot.scheduler.clock import Clock, OffsetFileClock, SystemClock
from bot.scheduler.sender import Limiter
from bot.scheduler.worker import Scheduler
from bot.services.events import EventBuffer
from bot.services.recommendations import recommendations
from bot.services.search import CatalogSearch
from bot.telegram.observe import ApiMetricsMiddleware

log = logging.getLogger(__name__)


def feature_routers() -> list[Router]:
    """Every feature's router, in matching order. The fallback router stays last."""
    from bot.handlers import (
        authoring,
        bundles,
        catalog,
        challenges,
        exports,
        fallback,
        group_admin,
        groups,
        growth,
        info,
        inline,
        learning,
        library,
        market,
        partners,
        payments,
        privacy,
        promote,
        qa,
        quizzes,
        recommend,
        reminders,
        sales_admin,
        search,
        start,
        stats,
    )

    routers = [
        # First, because most updates are theirs and their filters cannot take anything
        # from a later router: catalog buttons carry their own callback prefixes, and
        # plain text in no conversation state is a search.
        catalog.router,
        search.router,
        start.router,
        # Creators' guided steps (/newcourse, /addlesson): their input comes in a state.
        authoring.router,
        # /addquiz's steps are in a state too; the learner's quiz buttons and poll answers.
        quizzes.router,
        learning.router,
        library.router,
        info.router,
        privacy.router,
        # A promo code typed after "I have a promo code" is in a state: not a query.
        payments.router,
        # Q&A: a question or an answer typed after /ask or Reply comes in a state.
        qa.router,
        # A check-in typed after /checkin comes in a state too.
        challenges.router,
        partners.router,
        sales_admin.router,
        growth.router,
        stats.router,
        exports.router,
        # Paid groups: chat events (join requests, chat_member) and creators' commands.
        groups.router,
        group_admin.router,
        reminders.router,
        recommend.router,
        market.router,
        bundles.router,
        promote.router,
        inline.router,
        fallback.router,
    ]
    return [_detached(r) for r in routers]


def _detached(router: Router) -> Router:
    # Routers are module-level singletons and aiogram lets a router have one parent.
    # A process that builds a second App (tests, benchmarks) re-attaches them here.
    parent = router.parent_router
    if parent is not None:
        parent.sub_routers.remove(router)
        router._parent_router = None
    return router


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    bot: Bot
    dp: Dispatcher
    i18n: PoI18n
    events: EventBuffer
    search: CatalogSearch
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed_updates(self) -> list[str]:
        return self.dp.resolve_used_update_types()

    @property
    def scheduler(self) -> Scheduler:
        return self.extras["scheduler"]  # type: ignore[no-any-return]

    def health_probe(self) -> HealthProbe:
        """What /healthz checks: the database, Redis when configured, the scheduler lag."""
        redis = getattr(self.dp.storage, "redis", None)  # RedisStorage's client
        return HealthProbe(
            self.sessionmaker,
            now=self.scheduler.clock.now,
            job_kinds=self.scheduler.registry.kinds(),
            max_lag=self.settings.health_max_lag,
            redis_ping=redis.ping if redis is not None else None,
        )

    async def close(self) -> None:
        # First: the worker finishes the message in flight and records it.
        await self.scheduler.stop()
        limiter = getattr(self.scheduler.sender, "limiter", None)
        limiter_redis = getattr(limiter, "redis", None)  # the shared limits' connection
        if limiter_redis is not None:
            await limiter_redis.aclose()
        await self.events.stop(self.sessionmaker)
        await recommendations(self.search).close()
        await card_extras(self.search).close()
        await sponsored.campaigns(self.search, self.sessionmaker).close()
        await self.search.close()
        await self.dp.storage.close()
        await self.dp.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()


def create_bot(settings: Settings, session: BaseSession | None = None) -> Bot:
    token = settings.token
    if not token:
        raise RuntimeError("BOT_TOKEN is not set")
    if session is None:
        if settings.telegram_api_url:
            api = TelegramAPIServer.from_base(settings.telegram_api_url)
            session = AiohttpSession(api=api)
        else:
            session = AiohttpSession()
    # Every Bot API call counted by method, its failures by code (/metrics).
    session.middleware(ApiMetricsMiddleware())
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def create_fsm_storage(settings: Settings) -> BaseStorage:
    """Conversation steps: in memory for one process; in Redis when several share the work
    (the next message of a conversation may reach another worker)."""
    url = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
    if not url:
        return MemoryStorage()
    from aiogram.fsm.storage.redis import RedisStorage  # imports redis: only when used

    ttl = timedelta(days=settings.fsm_ttl_days)
    return RedisStorage.from_url(
        url,
        # One Redis may serve several bots: keys carry the bot's id.
        key_builder=DefaultKeyBuilder(prefix="lyceum", with_bot_id=True),
        state_ttl=ttl,
        data_ttl=ttl,
    )


def create_limiter(settings: Settings, bot: Bot, clock: Clock) -> Limiter | None:
    """Telegram's limits in Redis, shared by every process, when REDIS_URL is set; None
    leaves the sender its in-memory limiter (one process)."""
    url = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
    if not url:
        return None
    from redis.asyncio import Redis

    from bot.scheduler.shared_limits import RedisLimiter

    return RedisLimiter(
        Redis.from_url(url),
        per_second=settings.scheduler_rate,
        chat_interval=settings.scheduler_chat_interval,
        group_interval=settings.scheduler_group_interval,
        bot_id=bot.id,
        clock=clock,
    )


def create_events_isolation(storage: BaseStorage) -> BaseEventIsolation:
    """Updates of one chat and user run one at a time (see bot.middlewares.isolation): in
    Redis when the conversation steps are there, since several workers share them."""
    create_isolation = getattr(storage, "create_isolation", None)  # RedisStorage's
    if create_isolation is not None:
        isolation: BaseEventIsolation = create_isolation()
        return isolation
    return KeyedLocks()


def create_dispatcher(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    i18n: PoI18n,
    events: EventBuffer,
    search: CatalogSearch,
) -> Dispatcher:
    storage = create_fsm_storage(settings)
    # Polling confirms a payment update to Telegram only once it is booked (bot.polling).
    dp = PaymentSafeDispatcher(
        storage=storage,
        events_isolation=create_events_isolation(storage),
        settings=settings,
        events=events,
        search=search,
        sessionmaker=sessionmaker,
        i18n=i18n,
    )
    # Order matters: first the update id and user id for every log line and the timing
    # of all that follows; drop floods before touching the database; the user row feeds
    # i18n.
    dp.update.outer_middleware(ObserveMiddleware())
    dp.update.outer_middleware(
        ThrottlingMiddleware(settings.throttle_rate, settings.throttle_burst)
    )
    dp.update.outer_middleware(DbSessionMiddleware(sessionmaker))
    dp.update.outer_middleware(UserMiddleware())
    dp.update.outer_middleware(LocaleMiddleware(i18n))
    dp.include_routers(*feature_routers())
    dp.errors.register(error_handler(i18n))
    return dp


def error_handler(i18n: PoI18n) -> Callable[..., Awaitable[bool]]:
    async def on_error(event: ErrorEvent, **data: Any) -> bool:
        log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
        if books_money(event.update):
            # Not handled here: the error goes on, so the update is not confirmed and comes
            # again (a webhook answers 500; polling, bot.polling, tries it again). No
            # apology either: its "try again" would invite paying twice.
            raise SkipHandler
        # Errors are handled outside the i18n middleware: pick the language here.
        # The transaction was rolled back and the user row expired with it: read only
        # what is still loaded instead of lazily loading outside the session.
        loaded = getattr(data.get("user"), "__dict__", {})
        locale = pick_locale(loaded.get("language"), None, i18n.default_locale)
        text = i18n.gettext(
            "Sorry, something went wrong on our side. Please try again in a moment.",
            locale=locale,
        )
        update = event.update
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            elif update.message is not None and update.message.chat.type == "private":
                await update.message.answer(text)
        except Exception:  # the apology itself may fail (user blocked the bot); log only
            log.warning("could not tell the user about the failure", exc_info=True)
        return True

    return on_error


def create_scheduler(
    settings: Settings,
    bot: Bot,
    sessionmaker: async_sessionmaker[AsyncSession],
    i18n: PoI18n,
    clock: Clock,
) -> Scheduler:
    """The one scheduler: drip lessons and every registered job kind, one rate-limited sender."""
    from bot.analytics import nudges
    from bot.growth import payable, reminders, winback
    from bot.handlers import challenges, groups, market, qa, quizzes
    from bot.keyboards.growth import I18nGrowthTexts
    from bot.keyboards.learning import I18nRenderer
    from bot.payments import housekeeping
    from bot.scheduler import broadcast, notices
    from bot.scheduler.jobs import JobRegistry
    from bot.scheduler.sender import RateLimitedSender
    from bot.scheduler.worker import WorkerConfig
    from bot.services import drip, privacy
    from bot.telegram.sender import TelegramSender

    drip.install(settings.timezone)
    registry = JobRegistry()
    broadcast.register(registry)
    housekeeping.register(registry)
    notices.register(registry)
    from bot.handlers.stats import nudge_texts

    nudges.register(registry, nudge_texts(i18n, settings.default_language))
    growth_texts = I18nGrowthTexts(i18n)
    reminders.register(registry, growth_texts, settings.abandoned_reminder_hours)
    winback.register(registry, growth_texts)
    payable.register(registry, growth_texts)
    market.install(registry, i18n, settings)
    privacy.register_pruning(registry, settings.events_keep_days)
    quizzes.install(registry, bot, i18n)
    qa.install(registry, bot, i18n, settings)
    challenges.install(registry, i18n, settings)
    sender = RateLimitedSender(
        TelegramSender(bot),
        per_second=settings.scheduler_rate,
        chat_interval=settings.scheduler_chat_interval,
        group_interval=settings.scheduler_group_interval,
        clock=clock,
        limiter=create_limiter(settings, bot, clock),
        paid_per_second=settings.paid_broadcast_rate,
    )
    # The groups jobs' bans and invite links share the sender's budget and 429 pauses.
    groups.install(registry, bot, i18n, settings, limiter=sender)
    config = WorkerConfig(
        batch_size=settings.scheduler_batch,
        lease_seconds=settings.scheduler_lease,
        poll_interval=settings.scheduler_poll_interval,
    )
    return Scheduler(
        sessionmaker,
        sender,
        clock=clock,
        renderer=I18nRenderer(i18n),
        registry=registry,
        config=config,
    )


def create_clock(settings: Settings) -> Clock:
    """The system clock; or, for tests and demos, one a file can move (CLOCK_OFFSET_FILE)."""
    if not settings.clock_offset_file:
        return SystemClock()
    log.warning(
        "TESTING ONLY: the clock is moved by the offset in %s (CLOCK_OFFSET_FILE)",
        settings.clock_offset_file,
    )
    return OffsetFileClock(Path(settings.clock_offset_file))


def build_app(
    settings: Settings,
    *,
    session: BaseSession | None = None,
    engine: AsyncEngine | None = None,
    clock: Clock | None = None,
) -> App:
    engine = engine or create_engine(settings.database_url, echo=settings.database_echo)
    sessionmaker = create_sessionmaker(engine)
    i18n = create_i18n(settings.default_language)
    events = EventBuffer()
    search = CatalogSearch(sessionmaker)
    bot = create_bot(settings, session)
    dp = create_dispatcher(settings, sessionmaker, i18n, events, search)
    clock = clock or create_clock(settings)
    scheduler = create_scheduler(settings, bot, sessionmaker, i18n, clock)
    # Handlers read the time from here, so tests can move it.
    dp["clock"] = clock
    dp["scheduler"] = scheduler
    app = App(settings, engine, sessionmaker, bot, dp, i18n, events, search)
    app.extras["scheduler"] = scheduler
    return app


def bot_commands(i18n: PoI18n, locale: str) -> list[BotCommand]:
    from bot.handlers import commands

    with i18n.context(), i18n.use_locale(locale):
        return commands.menu()


async def setup_commands(app: App) -> None:
    scope = BotCommandScopeAllPrivateChats()
    await app.bot.set_my_commands(
        bot_commands(app.i18n, app.settings.default_language), scope=scope
    )
    for locale in ("en", "zh"):
        await app.bot.set_my_commands(
            bot_commands(app.i18n, locale), scope=scope, language_code=locale
        )


async def sync_owners(app: App) -> None:
    """Platform owners are ADMIN_IDS as configured now: whoever left it loses the role."""
    from bot.services.users import sync_owners as sync

    async with app.sessionmaker() as session:
        demoted = await sync(session, app.settings.admin_ids)
        await session.commit()
    if demoted:
        log.warning("not in ADMIN_IDS any more, owner role removed: %s", demoted)


async def on_startup(app: App) -> None:
    await sync_owners(app)
    await setup_commands(app)
    app.events.start(app.sessionmaker)
    if app.settings.scheduler_enabled:
        from bot.analytics import nudges
        from bot.growth import reminders
        from bot.payments import housekeeping

        async with app.sessionmaker() as session:
            await housekeeping.ensure_scheduled(session, app.scheduler.clock.now())
            await reminders.ensure_scheduled(session, app.scheduler.clock.now())
            if app.settings.events_keep_days:
                from bot.services import privacy

                await privacy.ensure_pruning(session, app.scheduler.clock.now())
            await nudges.ensure_scheduled(session, app.scheduler.clock.now())
            await session.commit()
        app.scheduler.start()
    # Fit the recommender now, in the background, so the first learner does not wait.
    app.extras["warmup"] = asyncio.create_task(recommendations(app.search).fitted())


def add_stripe_webhook(app: App, web_app: Any) -> None:
    """Serve Stripe's checkout webhook (web checkout) on the bot's HTTP server."""
    from bot.handlers.payments import gateways, web_notifier
    from bot.payments.web_checkout import stripe_webhook_handler

    notifier = web_notifier(app.bot, app.sessionmaker, app.i18n, app.settings, app.scheduler)
    handler = stripe_webhook_handler(
        app.sessionmaker,
        app.settings,
        gateways(app.bot, app.settings),
        notifier,
        clock=app.scheduler.clock.now,
    )
    web_app.router.add_post(app.settings.stripe_webhook_path, handler)


async def start_stripe_webhook_server(app: App) -> Any:
    """In polling mode there is no HTTP server; run one just for Stripe's webhook."""
    from aiohttp import web

    web_app = web.Application()
    add_stripe_webhook(app, web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, app.settings.webhook_host, app.settings.webhook_port).start()
    return runner


def tune_gc() -> None:
    """Collect garbage in fewer, larger passes.

    aiogram and pydantic allocate thousands of short-lived objects per update, so with
    CPython's default young generation (700 objects) the collector runs every update or
    two, and each pass of the older generations walks the long-lived catalog snapshot and
    caches. A larger young generation frees the same garbage for a fraction of the work
    (bench/handlers.py: about a tenth more updates per second) and holds at most a few
    megabytes more.
    """
    gc.set_threshold(50_000, 20, 100)


async def start_ops_server(app: App) -> Any:
    """/healthz and /metrics on METRICS_HOST:METRICS_PORT, when that is set."""
    if app.settings.metrics_port is None:
        return None
    from bot.ops.web import start_server

    runner = await start_server(
        app.health_probe(), app.settings.metrics_host, app.settings.metrics_port
    )
    log.info("health and metrics on %s:%s", app.settings.metrics_host, app.settings.metrics_port)
    return runner


async def run_polling(app: App) -> None:
    tune_gc()
    await on_startup(app)
    stripe_runner = (
        await start_stripe_webhook_server(app) if app.settings.stripe_webhook_secret else None
    )
    ops_runner = await start_ops_server(app)
    try:
        await app.bot.delete_webhook(drop_pending_updates=False)
        await app.dp.start_polling(
            app.bot,
            allowed_updates=app.allowed_updates,
            handle_signals=True,
            close_bot_session=False,
        )
    finally:
        if stripe_runner is not None:
            await stripe_runner.cleanup()
        if ops_runner is not None:
            await ops_runner.cleanup()
        await app.close()


def webhook_web_app(app: App, secret: str) -> Any:
    """The webhook server's routes: Telegram's updates, Stripe's webhook, and /healthz
    and /metrics unless they have a port of their own (METRICS_PORT)."""
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    settings = app.settings
    web_app = web.Application()
    # Handle before answering: if the process dies mid-update, Telegram redelivers it.
    SimpleRequestHandler(
        dispatcher=app.dp, bot=app.bot, secret_token=secret, handle_in_background=False
    ).register(web_app, path=urlsplit(settings.webhook_url).path or "/")
    setup_application(web_app, app.dp, bot=app.bot)
    add_stripe_webhook(app, web_app)
    if settings.metrics_port is None:
        # Keep /metrics private at the load balancer (it shows sales), or set METRICS_PORT.
        from bot.ops.web import add_routes

        add_routes(web_app, app.health_probe())
    return web_app


async def run_webhook(app: App) -> None:
    from aiohttp import web

    settings = app.settings
    if not settings.webhook_url:
        raise RuntimeError("WEBHOOK_URL is not set")
    if settings.webhook_secret is None:
        # Without a secret anyone who finds the URL could post forged updates.
        raise RuntimeError("WEBHOOK_SECRET is required in webhook mode")
    secret = settings.webhook_secret.get_secret_value()
    web_app = webhook_web_app(app, secret)
    tune_gc()
    await on_startup(app)
    ops_runner = await start_ops_server(app)
    await app.bot.set_webhook(
        settings.webhook_url,
        secret_token=secret,
        allowed_updates=app.allowed_updates,
    )
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    log.info("webhook listening on %s:%s", settings.webhook_host, settings.webhook_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        if ops_runner is not None:
            await ops_runner.cleanup()
        await app.close()
