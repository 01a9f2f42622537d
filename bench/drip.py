"""Drip delivery throughput and crash safety against the sandbox Bot API server.

Seeds N learners (default 10,000) each with one lesson due now, starts the sandbox
in-process with Telegram's flood limits on and a network latency per call, then runs
the real scheduler worker (`bot.scheduler.worker.Scheduler` with the aiogram-backed
TelegramSender) as a subprocess until every delivery is sent. Prints JSON per mode:

- steady: one worker, start to finish;
- kill:   the worker is killed with SIGKILL at three random moments and restarted, by a
          warm standby process waiting on the worker lock (`--restart standby`, default)
          or by starting a fresh process after the kill (`--restart cold`).

Figures: sends/s (first to last message the sandbox accepted, restarts included) and
its ratio to the configured cap, the same without the silences around the kills
("while up"), 429s the sandbox answered, duplicates (messages beyond the first per
learner), lost (learners who got nothing), kills. One message in flight per worker: at
most one duplicate per kill (see bot/scheduler/worker.py), so the rate is bounded by
1 / (latency + our work per message); 20 ms latency leaves room for 30/s.

Several workers (`--workers 1 4`: a JSON line for each count) need PostgreSQL (`--db`, a
server URL: each run gets a fresh database there) and share the limits through Redis
(`--redis`, bot.scheduler.shared_limits): together they must keep to the one `--rate`
cap. Without `--redis` each worker counts the cap alone (the old way), which shows as
429s. With several workers a killed one is replaced by a fresh process (its claimed rows
wait for the lease, `--lease`, to run out).

    python bench/drip.py [--mode steady|kill|both] [--restart standby|cold] [--n 10000]
        [--rate 30] [--latency 0.02] [--seed S]
        [--workers 1 4 --db postgresql+asyncpg://user@host/db --redis redis://host/0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from bot.db import create_engine, create_sessionmaker  # noqa: E402
from bot.migrate import upgrade  # noqa: E402
from bot.models import (  # noqa: E402
    Delivery,
    DeliveryStatus,
    Enrollment,
    Lesson,
)

FIRST_UID = 10_000_000
SCRIPT = str(Path(__file__).resolve())


# --- the worker process -----------------------------------------------------------------


async def worker_main(args: argparse.Namespace) -> None:
    from scheduler_workers import close_sender, make_sender, run_until_done

    from bot.scheduler.worker import Scheduler, WorkerConfig

    engine = create_engine(args.db)
    sender = make_sender(
        args.api,
        args.token,
        per_second=args.rate,
        chat_interval=args.chat_interval,
        redis_url=args.redis,
    )
    sessionmaker = create_sessionmaker(engine)
    worker = Scheduler(
        sessionmaker,
        sender,
        config=WorkerConfig(batch_size=args.batch, poll_interval=0.2, lease_seconds=args.lease),
    )
    await worker.acquire_worker_lock()  # a warm standby waits here for the worker to die
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
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
            )
            or 0
        )


# --- the driver ---------------------------------------------------------------------------


async def seed(url: str, n: int) -> None:
    from scheduler_workers import course_with_learners

    await upgrade(url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    try:
        async with create_sessionmaker(engine)() as s:
            course, uids = await course_with_learners(s, FIRST_UID, n, now)
            lesson = Lesson(course_id=course.id, position=1, title="One", text="Lesson one")
            s.add(lesson)
            await s.flush()
            await s.execute(
                insert(Enrollment),
                [{"user_id": uid, "course_id": course.id, "started_at": now} for uid in uids],
            )
            rows = await s.execute(select(Enrollment.id, Enrollment.user_id))
            await s.execute(
                insert(Delivery),
                [
                    {
                        "enrollment_id": eid,
                        "lesson_id": lesson.id,
                        "user_id": uid,
                        "due_at": now,
                        "status": DeliveryStatus.PENDING,
                    }
                    for eid, uid in rows
                ],
            )
            await s.commit()
    finally:
        await engine.dispose()


async def db_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as s:
            rows = await s.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
            return {status: int(count) for status, count in rows}
    finally:
        await engine.dispose()


async def postgres_database(base: str, name: str, *, drop: bool = False) -> str:
    """A fresh database `name` on the server of `base` (or drop it); returns its URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    url = make_url(base)
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as c:
            await c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop:
                await c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


async def forget_limits(redis_url: str) -> None:
    """A run starts with no slots taken and no pause left from the one before."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        for key in await redis.keys("lyceum:limits:*"):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def run_mode(mode: str, args: argparse.Namespace, workers: int = 1) -> dict[str, Any]:
    from scheduler_workers import lost_and_duplicates, start_sandbox

    if args.db:
        pg_name = f"lyceum_bench_drip_{os.getpid()}"
        url = await postgres_database(args.db, pg_name)
    elif workers > 1:
        raise SystemExit("--workers above 1 needs PostgreSQL: --db postgresql+asyncpg://...")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="lyceum-bench-drip-"))
        url = f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    if args.redis:
        await forget_limits(args.redis)
    await seed(url, args.n)

    server, api, tally = await start_sandbox(FIRST_UID, args.n, args.latency)

    cmd = [
        sys.executable,
        SCRIPT,
        "--worker",
        "--db",
        url,
        "--api",
        api,
        "--token",
        server.config.token,
        "--rate",
        str(args.rate),
        "--batch",
        str(args.batch),
        "--lease",
        str(args.lease),
        *(["--redis", args.redis] if args.redis else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected = args.n / args.rate
    kills_at = sorted(random.uniform(2.0, max(3.0, expected - 5.0)) for _ in range(args.kills))
    if mode != "kill":
        kills_at = []
    started = time.monotonic()
    kills = 0
    killed_at: list[float] = []
    procs = [await asyncio.create_subprocess_exec(*cmd, env=env) for _ in range(workers)]
    # Restarting means starting a fresh process; with --restart standby (one worker,
    # SQLite) it is started ahead of time and waits on the worker lock, as a supervisor's
    # warm standby would.
    standby = None
    if kills_at and args.restart == "standby" and workers == 1 and not args.db:
        standby = await asyncio.create_subprocess_exec(*cmd, env=env)
    try:
        while procs:
            await asyncio.sleep(0.1)
            for p in [p for p in procs if p.returncode is not None]:
                if p.returncode != 0:
                    raise RuntimeError(f"worker exited with {p.returncode}")
                procs.remove(p)
            if procs and kills < len(kills_at) and time.monotonic() - started >= kills_at[kills]:
                victim = procs.pop(kills % len(procs))
                os.kill(victim.pid, signal.SIGKILL)
                killed_at.append(time.monotonic())
                await victim.wait()
                kills += 1
                if standby is not None:
                    procs.append(standby)
                    standby = None
                    if kills < len(kills_at):
                        standby = await asyncio.create_subprocess_exec(*cmd, env=env)
                else:
                    procs.append(await asyncio.create_subprocess_exec(*cmd, env=env))
    finally:
        for p in [*procs, standby]:
            if p is not None and p.returncode is None:
                p.kill()
                await p.wait()
        await server.stop()

    accepted = tally.accepted
    rate, span = tally.rate()
    # The longest silence around each kill: the new process starting (cold: mostly
    # importing aiogram) and recovering. The cost of the crash, not of the sender.
    gaps = [
        max(
            (b - a for a, b in itertools.pairwise(accepted) if k - 1 <= a <= k + 60),
            default=0.0,
        )
        for k in killed_at
    ]
    up = span - sum(gaps)
    up_rate = (len(accepted) - 1) / up if up > 0 else 0.0
    counts = await db_counts(url)
    if args.db:
        await postgres_database(args.db, pg_name, drop=True)
    return {
        "mode": mode,
        "workers": workers,
        "database": "postgresql" if args.db else "sqlite",
        "shared_limits": bool(args.redis),
        "deliveries": args.n,
        "cap_per_s": args.rate,
        "latency_s": args.latency,
        "sends_per_s": round(rate, 2),
        "ratio_to_cap": round(rate / args.rate, 4),
        "seconds": round(span, 1),
        "restart_gaps_s": [round(g, 2) for g in gaps],
        "sends_per_s_while_up": round(up_rate, 2),
        "ratio_to_cap_while_up": round(up_rate / args.rate, 4),
        "http_429": tally.too_many,
        **lost_and_duplicates(tally.per_learner(FIRST_UID, args.n)),
        "kills": kills,
        # A warm standby only with one worker on SQLite (the worker lock); else cold.
        "restart": (
            (args.restart if workers == 1 and not args.db else "cold") if kills_at else None
        ),
        "db": counts,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--mode", choices=["steady", "kill", "both"], default="both")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--chat-interval", type=float, default=1.0)
    p.add_argument("--latency", type=float, default=0.02)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--restart", choices=["cold", "standby"], default="standby")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workers", type=int, nargs="+", default=[1], help="a run per count")
    p.add_argument("--db", help="PostgreSQL server URL (a fresh database per run)")
    p.add_argument("--redis", help="Redis URL: the workers share the limits there")
    p.add_argument("--lease", type=float, default=60.0, help="SCHEDULER_LEASE, seconds")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--api", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main() -> None:
    args = parse()
    if args.worker:
        asyncio.run(worker_main(args))
        return
    if args.seed is not None:
        random.seed(args.seed)
    modes = ["steady", "kill"] if args.mode == "both" else [args.mode]
    for workers in args.workers:
        for mode in modes:
            print(json.dumps(asyncio.run(run_mode(mode, args, workers))), flush=True)


if __name__ == "__main__":
    main()
