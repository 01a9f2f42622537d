"""Paid broadcast throughput against the sandbox Bot API server.

Seeds N learners of one course (default 100,000; `--recipients` smaller) and one paid
broadcast to all of them (`bot.scheduler.broadcast.queue_to(paid=True)`), starts the
sandbox in-process with Telegram's limits on (30/s free, paid up to 1000/s at 0.1 Star
above the free rate) and a latency per call, gives the bot enough Stars, then runs the
real scheduler worker(s) (Scheduler + aiogram TelegramSender, PAID_BROADCAST_RATE) as
subprocesses until every message has run. Prints one JSON line per worker count:
messages/s (first to last message the sandbox accepted) and its ratio to 1000, 429s,
lost, duplicates, Stars billed by the sandbox vs recorded by the bot, and the CPU
seconds of each process (the bench/sandbox process and each worker) to show what
bounds it.

    python bench/broadcast.py [--recipients 100000] [--latency 0.02] [--workers 1 4]
        [--db postgresql+asyncpg://user@host/db]   (several workers need PostgreSQL)
        [--redis redis://host/0]   (shared limits: the workers keep one 1000/s together)
        [--profile /tmp/prof]      (each worker's cProfile stats, PROFILE.<pid>)

Without --redis each worker gets its share of the caps by hand (1000/N paid, 30/N
free), as an operator without shared limits would set them. The JSON also gives the CPU
seconds of the PostgreSQL and Redis server processes on this machine and how busy all
cores were (cpu_busy, 1.0 = every core all the time), to show what bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.db import create_engine, create_sessionmaker  # noqa: E402
from bot.migrate import upgrade  # noqa: E402
from bot.models import (  # noqa: E402
    Job,
    JobStatus,
    ProductKind,
)

FIRST_UID = 10_000_000
SCRIPT = str(Path(__file__).resolve())
TICK = os.sysconf("SC_CLK_TCK")


def servers_cpu() -> dict[str, float]:
    """CPU seconds so far of every PostgreSQL and Redis server process on this machine,
    with their children that have ended (a backend's CPU passes to the postmaster when
    its connection closes)."""
    total = {"postgres": 0.0, "redis": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        key = "postgres" if name.startswith("postgres") else "redis" if "redis" in name else ""
        if key:
            fields = rest.split()
            total[key] += sum(int(f) for f in fields[11:15]) / TICK
    return total


def busy_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the machine, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


# --- the worker process -----------------------------------------------------------------


async def worker_main(args: argparse.Namespace) -> None:
    from scheduler_workers import close_sender, make_sender, run_until_done

    from bot.app import tune_gc
    from bot.scheduler import broadcast
    from bot.scheduler.jobs import JobRegistry
    from bot.scheduler.worker import Scheduler, WorkerConfig

    tune_gc()  # as `python -m bot run` sets up its process
    engine = create_engine(args.db)
    sender = make_sender(
        args.api,
        args.token,
        per_second=args.free,
        paid_per_second=args.paid,
        redis_url=args.redis,
    )
    registry = JobRegistry()
    broadcast.register(registry)
    sessionmaker = create_sessionmaker(engine)
    worker = Scheduler(
        sessionmaker,
        sender,
        registry=registry,
        config=WorkerConfig(batch_size=args.batch, poll_interval=0.2),
    )
    await worker.recover()
    try:
        await run_until_done(worker, lambda: unfinished(sessionmaker))
    finally:
        await close_sender(sender)
        await engine.dispose()


async def unfinished(sessionmaker: Any) -> int:
    async with sessionmaker() as s:
        return int(
            await s.scalar(
                select(func.count(Job.id)).where(
                    Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING))
                )
            )
            or 0
        )


# --- the bench process ------------------------------------------------------------------


async def seed(url: str, n: int) -> None:
    from scheduler_workers import course_with_learners

    from bot.scheduler import broadcast
    from bot.scheduler.sender import Outgoing

    await upgrade(url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        async with create_sessionmaker(engine)() as s:
            course, uids = await course_with_learners(s, FIRST_UID, n, now)
            await broadcast.queue_to(
                s,
                recipients=uids,
                message=Outgoing(text="Launch day"),
                access_check={"kind": ProductKind.COURSE, "ids": [course.id]},
                creator_chat_id=1,
                locale="en",
                protect_content=False,
                per_second=1000.0,
                now=now,
                paid=True,
            )
            await s.commit()
    finally:
        await engine.dispose()


async def recorded_tenths(url: str) -> int:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as s:
            return int(await s.scalar(select(func.sum(Job.stars_tenths))) or 0)
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    from scheduler_workers import lost_and_duplicates, start_sandbox

    if workers > 1 and not args.db:
        raise SystemExit("--workers above 1 needs PostgreSQL: --db postgresql+asyncpg://...")
    if args.db:
        from drip import postgres_database

        pg_name = f"lyceum_bench_bc_{os.getpid()}"
        url = await postgres_database(args.db, pg_name)
    else:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='lyceum-bc-')) / 'b.sqlite3'}"
    await seed(url, args.recipients)
    server, api, tally = await start_sandbox(FIRST_UID, args.recipients, args.latency)
    server.set_bot_balance_tenths(args.recipients * 10)
    # The sandbox stands in for Telegram's servers, which do not stop the world to walk a
    # heap: no cycle collection in this process while the workers send (it keeps every
    # message, so a pass walked ever more objects: a 0.44 s pause released the requests
    # it held at once, a burst over the paid bucket and 429s Telegram would not send).
    # Reference counting still frees almost everything; the rest waits for the end.
    gc.freeze()
    gc.disable()

    # With shared limits the caps are the deployment's; without, split by hand.
    split = 1 if args.redis else workers
    share, free = str(args.paid / split), str(30.0 / split)
    if args.redis:
        from drip import forget_limits

        await forget_limits(args.redis)
    token = server.config.token
    cmd = [sys.executable, SCRIPT, "--worker", "--db", url, "--api", api, "--token", token,
           "--batch", str(args.batch), "--paid", share, "--free", free]  # fmt: skip
    if args.profile:
        cmd += ["--profile", args.profile]
    if args.redis:
        cmd += ["--redis", args.redis]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    me = os.getpid()
    cpu0, servers0, busy0 = cpu_seconds(me), servers_cpu(), busy_ticks()
    procs = [
        await asyncio.create_subprocess_exec(*cmd, env=env, preexec_fn=lambda: os.nice(args.nice))
        for _ in range(workers)
    ]
    worker_cpu = {p.pid: 0.0 for p in procs}
    try:
        while any(p.returncode is None for p in procs):
            for p in procs:
                if p.returncode is None:
                    worker_cpu[p.pid] = max(worker_cpu[p.pid], cpu_seconds(p.pid))
            await asyncio.sleep(0.2)
        if any(p.returncode for p in procs):
            raise RuntimeError("a worker failed")
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        await server.stop()
        gc.enable()
    sandbox_cpu = cpu_seconds(me) - cpu0
    servers1, busy1 = servers_cpu(), busy_ticks()
    servers = {k: round(servers1[k] - servers0[k], 1) for k in servers1}
    busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    rate, span = tally.rate()
    recorded = await recorded_tenths(url)
    if args.db:
        await postgres_database(args.db, pg_name, drop=True)
    return {
        "workers": workers,
        "database": "postgresql" if args.db else "sqlite",
        "recipients": args.recipients,
        "latency_s": args.latency,
        "paid_rate_cap": args.paid,
        "msgs_per_s": round(rate, 1),
        "ratio_to_1000": round(rate / 1000, 4),
        "seconds": round(span, 1),
        "http_429": tally.too_many,
        **lost_and_duplicates(tally.per_learner(FIRST_UID, args.recipients)),
        "stars_billed_by_sandbox": server.paid_broadcast_billed / 10,
        "stars_recorded_by_bot": recorded / 10,
        "shared_limits": bool(args.redis),
        "cpu_s": {
            "bench+sandbox": round(sandbox_cpu, 1),
            **{f"worker{i}": round(c, 1) for i, c in enumerate(worker_cpu.values())},
            **servers,
        },
        "cpu_busy": round(busy, 2),
        "cores": os.cpu_count(),
        "wall_s": round(span, 1),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--recipients", type=int, default=100_000)
    p.add_argument("--latency", type=float, default=0.02)
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    # The workers run as deployed: SCHEDULER_BATCH and PAID_BROADCAST_RATE's defaults.
    p.add_argument("--batch", type=int, default=Settings.model_fields["scheduler_batch"].default)
    default_rate = Settings.model_fields["paid_broadcast_rate"].default
    p.add_argument("--paid", type=float, default=default_rate, help="PAID_BROADCAST_RATE")
    p.add_argument("--free", type=float, default=30.0, help=argparse.SUPPRESS)
    p.add_argument("--db", help="PostgreSQL server URL (a fresh database per run)")
    p.add_argument("--redis", help="Redis URL: the workers share the limits there")
    p.add_argument(
        "--nice",
        type=int,
        default=5,
        help="the workers' niceness: the sandbox stands in for Telegram's own machines, so "
        "it must not be starved by the workers on a small machine (0: compete equally)",
    )
    p.add_argument("--profile", help="write each worker's cProfile stats to PROFILE.<pid>")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> None:
    args = parse()
    if args.worker:
        if args.profile:
            import cProfile

            cProfile.runctx(
                "asyncio.run(worker_main(args))",
                globals(),
                {"args": args},
                f"{args.profile}.{os.getpid()}",
            )
        else:
            asyncio.run(worker_main(args))
        return
    for workers in args.workers:
        print(json.dumps(asyncio.run(run(args, workers))), flush=True)


if __name__ == "__main__":
    main()
