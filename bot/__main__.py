"""Command line: python -m bot {run,migrate,seed,demo,reconcile-stars,audit,stats-rebuild,
backup,restore}."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from bot.config import Settings, get_settings


def _setup_logging(settings: Settings) -> None:
    """Text or JSON lines (LOG_FORMAT), with secrets masked (bot.ops.logs)."""
    from bot.ops import logs

    logs.install(settings)


async def _migrate(settings: Settings) -> None:
    from bot.migrate import upgrade

    await upgrade(settings.database_url)


async def _seed(settings: Settings) -> int:
    from bot.db import create_engine, create_sessionmaker
    from bot.services.seed import seed_demo

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            added = await seed_demo(session)
            await session.commit()
    finally:
        await engine.dispose()
    return added


async def _run(settings: Settings, webhook: bool) -> None:
    from bot.app import build_app, run_polling, run_webhook

    app = build_app(settings)
    await (run_webhook(app) if webhook else run_polling(app))


async def _reconcile_stars(settings: Settings) -> int:
    """Compare our Stars payments with getStarTransactions; exit 1 on any gap."""
    from bot.app import create_bot
    from bot.db import create_engine, create_sessionmaker
    from bot.payments.reconcile import reconcile_stars
    from bot.telegram.stars import TelegramStars

    engine = create_engine(settings.database_url)
    bot = create_bot(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            report = await reconcile_stars(session, TelegramStars(bot))
    finally:
        await bot.session.close()
        await engine.dispose()
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


async def _audit(settings: Settings, chat_id: int | None, confirm: bool) -> int:
    """Paid chats: members the bot has seen without an entitlement. A dry run unless
    --confirm, which queues their removal for the running bot's scheduler."""
    from bot.db import create_engine, create_sessionmaker
    from bot.services.memberships import audit_all

    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            lines = await audit_all(session, chat_id, confirm=confirm)
            await session.commit()
    finally:
        await engine.dispose()
    print("\n".join(lines))
    return 0


async def _stats_rebuild(settings: Settings) -> int:
    """Backfill: the analytics rollups from the ledger, orders, events and deliveries.
    Safe to run again (it replaces the rollups); run it with the bot stopped."""
    from bot.analytics.rollups import rebuild
    from bot.db import create_engine, create_sessionmaker

    await _migrate(settings)
    engine = create_engine(settings.database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            report = await rebuild(session)
            await session.commit()
    finally:
        await engine.dispose()
    print(
        f"stats rebuilt: {report.orders_attributed} orders attributed, "
        f"{report.money_rows} money rows, {report.view_rows} view rows, "
        f"{report.plan_rows} plan rows, {report.funnel_rows} funnel rows"
    )
    return 0


# Where `make demo` keeps the bot's log (the sandbox demo writes the same file).
DEMO_LOG = Path("data/demo-bot.log")


def cmd_demo(settings: Settings) -> int:
    """Try it: real Telegram when BOT_TOKEN is set, else the local sandbox."""
    if settings.token:
        log_path = _log_to_file(DEMO_LOG)
        print(f"Bot log: {log_path}")
        try:
            asyncio.run(_migrate(settings))
            asyncio.run(_seed(settings))
            print("Running on Telegram with your BOT_TOKEN. Open your bot and send /start.")
            asyncio.run(_run(settings, webhook=False))
        finally:
            print(f"The bot's log is kept in {log_path}")
        return 0
    try:
        from sandbox.demo import main as sandbox_demo  # type: ignore[import-not-found]
    except ImportError:
        print(
            "BOT_TOKEN is not set, and the local sandbox is not installed.\n"
            "Get a token from @BotFather, then: BOT_TOKEN=123:abc make demo",
            file=sys.stderr,
        )
        return 2
    return int(sandbox_demo(["--log", str(DEMO_LOG)]) or 0)


def _log_to_file(path: Path) -> Path:
    """Also append the log to a file, so it outlives the terminal the demo ran in."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
        for log_filter in root.handlers[0].filters:
            handler.addFilter(log_filter)
    root.addHandler(handler)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Lyceum bot")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (long polling by default)")
    run.add_argument("--webhook", action="store_true", help="receive updates by webhook")
    sub.add_parser("migrate", help="upgrade the database to the latest schema")
    seed = sub.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", help="the demo catalog")
    sub.add_parser("demo", help="try the storefront (sandbox, or Telegram with BOT_TOKEN)")
    sub.add_parser(
        "reconcile-stars", help="compare local Stars payments with Telegram's transactions"
    )
    sub.add_parser(
        "stats-rebuild", help="recompute the /stats rollups from the whole history (backfill)"
    )
    audit = sub.add_parser("audit", help="paid chats: who would be removed (dry run)")
    audit.add_argument("--chat", type=int, default=None, help="one chat id (default: all)")
    audit.add_argument(
        "--confirm", action="store_true", help="queue the removals for the running bot"
    )
    backup = sub.add_parser("backup", help="copy the SQLite database, also while the bot runs")
    backup.add_argument("file", type=Path, help="where to write the copy")
    restore = sub.add_parser("restore", help="put a backup back (stop the bot first)")
    restore.add_argument("file", type=Path, help="a file made by `backup`")
    restore.add_argument(
        "--force", action="store_true", help="overwrite a database that already holds data"
    )
    args = parser.parse_args(argv)

    settings = get_settings()
    _setup_logging(settings)
    if args.command == "backup":
        from bot.ops.backup import cmd_backup

        return cmd_backup(settings.database_url, args.file)
    if args.command == "restore":
        from bot.ops.backup import cmd_restore

        return cmd_restore(settings.database_url, args.file, force=args.force)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is at the latest revision")
        return 0
    if args.command == "seed":
        if not args.demo:
            parser.error("say what to seed: --demo")
        asyncio.run(_migrate(settings))
        added = asyncio.run(_seed(settings))
        print(f"demo catalog ready ({added} courses added)")
        return 0
    if args.command == "demo":
        return cmd_demo(settings)
    if args.command == "reconcile-stars":
        if not settings.token:
            print("BOT_TOKEN is not set. Put it in the environment or in .env.", file=sys.stderr)
            return 2
        return asyncio.run(_reconcile_stars(settings))
    if args.command == "audit":
        return asyncio.run(_audit(settings, args.chat, args.confirm))
    if args.command == "stats-rebuild":
        return asyncio.run(_stats_rebuild(settings))
    if not settings.token:
        print("BOT_TOKEN is not set. Put it in the environment or in .env.", file=sys.stderr)
        return 2
    asyncio.run(_run(settings, webhook=args.webhook))
    return 0


if __name__ == "__main__":
    sys.exit(main())
