"""Scaling out, end to end: two webhook workers (`python -m bot run --webhook`, each its
own process and memory) behind a round-robin proxy, sharing the database and a Redis.
Every update of a creator's /newcourse conversation reaches the other worker than the one
before, and the conversation goes through as with one process."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.db import create_engine, create_sessionmaker
from bot.models import Course
from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.e2e.chat import build_course, say
from tests.e2e.conftest import start_bot
from tests.support.servers import free_port

CREATOR_ID = 7000001  # ADMIN_IDS of the e2e bot
FORWARDED = ("Content-Type", "X-Telegram-Bot-Api-Secret-Token")


class RoundRobin:
    """The load balancer in front of the workers: each request goes to the next one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/telegram/webhook"
        self.workers: list[str] = []
        self.hits: Counter[str] = Counter()
        self._turn = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/telegram/webhook", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        if not self.workers or self._client is None:
            return web.Response(status=503)
        worker = self.workers[self._turn % len(self.workers)]
        self._turn += 1
        self.hits[worker] += 1
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        async with self._client.post(worker, data=await request.read(), headers=headers) as got:
            return web.Response(status=got.status, body=await got.read(), headers=got.headers)


@pytest.fixture
async def balancer() -> AsyncIterator[RoundRobin]:
    proxy = RoundRobin()
    await proxy.start()
    yield proxy
    await proxy.stop()


async def test_a_conversation_spread_over_two_workers(
    sandbox_server: SandboxServer,
    learner_client: SandboxClient,
    database_url: str,
    tmp_path: Path,
    redis_url: str,
    balancer: RoundRobin,
) -> None:
    workers = []
    try:
        for n in range(2):
            bot = await start_bot(
                sandbox_server,
                database_url,
                tmp_path,
                webhook=True,
                public_url=balancer.url,
                extra_env={"REDIS_URL": redis_url},
                log_name=f"worker{n}.log",
            )
            workers.append(bot)
            balancer.workers.append(f"http://127.0.0.1:{bot.env['WEBHOOK_PORT']}/telegram/webhook")

        olga = await learner_client.create_user("Olga", "en", id=CREATOR_ID)
        await say(olga, "/start", "Welcome", timeout=15)
        # /newcourse, eight steps, each answered by the other worker than the one before.
        course_id = await build_course(olga, "Scaled Out SQL", stars=120, lessons=())
    finally:
        for bot in workers:
            await bot.stop()

    # Both workers took their turns (nine updates, alternating), and the course is whole.
    assert len(balancer.hits) == 2 and min(balancer.hits.values()) >= 4
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            course = await session.get(Course, course_id)
    finally:
        await engine.dispose()
    assert course is not None
    assert (course.title, course.tags, course.language, course.stars_price) == (
        "Scaled Out SQL",
        ["test", "drip"],
        "en",
        120,
    )
    assert not course.published  # Publish on a course without lessons keeps a draft
