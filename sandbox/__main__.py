"""python -m sandbox [--host H] [--port P] [--token T] [--limits] [--latency S]"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from sandbox.limits import RateLimits, SandboxConfig
from sandbox.server import SandboxServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="Local Telegram Bot API")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--token", default=SandboxConfig.token, help="the bot token it accepts")
    p.add_argument("--limits", action="store_true", help="enforce Telegram's flood limits")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    p.add_argument(
        "--pre-checkout-timeout", type=float, default=10.0, help="seconds to answer checkout"
    )
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    config = SandboxConfig(
        token=args.token,
        limits=RateLimits() if args.limits else None,
        latency=args.latency,
        pre_checkout_timeout=args.pre_checkout_timeout,
    )
    server = SandboxServer(config)
    url = await server.start(args.host, args.port)
    print(f"TELEGRAM_API_URL={url}", flush=True)
    print(f"BOT_TOKEN={config.token}", flush=True)
    print(f"Web chat: {server.chat_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
