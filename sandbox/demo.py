"""Try the storefront with no token and no network: the sandbox plus the real bot.

    python -m sandbox.demo [--port 8081] [--db PATH] [--log PATH] [--limits]

starts the sandbox, migrates and seeds a SQLite database with the demo catalog, runs
``python -m bot run`` against the sandbox (as a child process, exactly as in production),
and prints the web chat URL. Ctrl-C stops both. The bot's log is appended to
``data/demo-bot.log`` (or --log), which outlives the demo: its path is printed at start
and at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from sandbox.limits import RateLimits, SandboxConfig
from sandbox.server import SandboxServer

DEMO_TOKEN = "123456:DEMO-SANDBOX-TOKEN"
CREATOR_ID = 7_000_001
LEARNER_ID = 100_001
# Relative to the working directory, like the bot's own default database (data/).
DEFAULT_LOG = Path("data/demo-bot.log")


class BotProcess:
    """``python -m bot <args>`` as a child process, pointed at a sandbox."""

    def __init__(
        self,
        server: SandboxServer,
        database_url: str,
        *,
        extra_env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.server = server
        self.env = dict(os.environ)
        self.env.update(
            BOT_TOKEN=server.token,
            TELEGRAM_API_URL=server.base_url,
            DATABASE_URL=database_url,
            PYTHONUNBUFFERED="1",
        )
        self.env.update(extra_env or {})
        self.cwd = str(cwd) if cwd else None
        self.log_path = Path(log_path) if log_path else None
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.webhook = False

    async def run_command(self, *args: str, timeout: float = 120.0) -> str:
        """Run ``python -m bot <args>`` to completion; returns its output."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args,
            env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        text = out.decode(errors="replace")
        if self.log_path is not None:
            # migrate and seed belong to the story the log tells (a failed migration first).
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(text)
        if proc.returncode != 0:
            raise RuntimeError(f"python -m bot {' '.join(args)} failed:\n{text}")
        return text

    async def prepare(self) -> None:
        await self.run_command("migrate")
        await self.run_command("seed", "--demo")

    async def start(self, *, webhook: bool = False, ready_timeout: float = 30.0) -> None:
        self.webhook = webhook
        args = ["run", "--webhook"] if webhook else ["run"]
        stdout: Any = asyncio.subprocess.DEVNULL
        if self.log_path is not None:
            stdout = self._log = self._open_log(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args,
            env=self.env, cwd=self.cwd, stdout=stdout, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        await self.wait_ready(webhook, ready_timeout)

    @staticmethod
    def _open_log(path: Path) -> IO[bytes]:
        return path.open("ab")  # closed in stop()

    async def wait_ready(self, webhook: bool, timeout: float) -> None:
        """Polling: the bot has asked for updates. Webhook: it set the webhook and its HTTP
        server answers."""
        deadline = time.monotonic() + timeout
        want = "setWebhook" if webhook else "getUpdates"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(
                    f"the bot exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            called = any(name == want for name, _ in self.server.calls)
            if called and (not webhook or await self._webhook_listening()):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the bot did not call {want} within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log; pass log_path= to keep the bot's output)"
        return self.log_path.read_text(errors="replace")[-chars:]

    async def _webhook_listening(self) -> bool:
        host = self.env.get("WEBHOOK_HOST", "127.0.0.1")
        port = int(self.env.get("WEBHOOK_PORT", "8080"))
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.sleep(0.2)
            await self.server.interrupt_polling()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


async def run_demo(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    db_path: str | Path | None = None,
    limits: bool = False,
    log_path: str | Path = DEFAULT_LOG,
    stop: asyncio.Event | None = None,
) -> None:
    """Sandbox + bot until ``stop`` is set (or SIGINT/SIGTERM)."""
    log_path = open_demo_log(Path(log_path))
    print(f"Bot log: {log_path}", flush=True)
    server = SandboxServer(SandboxConfig(token=DEMO_TOKEN, limits=RateLimits() if limits else None))
    try:
        url = await server.start(host, port)
    except OSError:
        # The usual port is taken (another demo?): any free one will do, and we say which.
        print(f"port {port} is busy; using a free one", file=sys.stderr)
        url = await server.start(host, 0)
    tmp = None
    if db_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="lyceum-demo-")
        db_path = Path(tmp.name) / "demo.sqlite3"
    from sandbox.control import create_user

    create_user(server, {"id": LEARNER_ID, "first_name": "Learner", "language_code": "en"})
    create_user(server, {"id": CREATOR_ID, "first_name": "Creator", "language_code": "en"})
    bot = BotProcess(
        server,
        f"sqlite+aiosqlite:///{db_path}",
        extra_env={"ADMIN_IDS": str(CREATOR_ID)},
        log_path=log_path,
    )
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
    try:
        print("Preparing the demo catalog…", flush=True)
        await bot.prepare()
        await bot.start()
        print(f"\nLyceum demo is running.\n  Web chat:         {server.chat_url}", flush=True)
        print(f"  TELEGRAM_API_URL: {url}\n  Bot log:          {log_path}", flush=True)
        print(f"  Users: Learner ({LEARNER_ID}), Creator ({CREATOR_ID}, an admin)", flush=True)
        print("Ctrl-C to stop.", flush=True)
        await stop.wait()
    finally:
        await bot.stop()
        await server.stop()
        if tmp is not None:
            tmp.cleanup()
        # The database was temporary; the log is what is left to read after a surprise.
        print(f"\nThe bot's log is kept in {log_path}", flush=True)


def open_demo_log(path: Path) -> Path:
    """Create the log's folder and mark where this run starts (earlier runs stay above)."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(f"\n=== demo started {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    p.add_argument("--log", default=str(DEFAULT_LOG), help="the bot's log (appended to)")
    p.add_argument("--limits", action="store_true", help="enforce Telegram's flood limits")
    # Called as a function (python -m bot demo) it takes no options from bot's command line.
    args = p.parse_args([] if argv is None else argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_demo(args.host, args.port, db_path=args.db, limits=args.limits, log_path=args.log)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
