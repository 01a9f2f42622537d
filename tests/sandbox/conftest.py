"""A sandbox per test (flood limits off, a short pre-checkout timeout) and the two
independent Bot API clients that drive it: aiogram's Bot and python-telegram-bot's Bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Update

from sandbox import SandboxConfig, SandboxServer
from sandbox.client import SandboxClient


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(pre_checkout_timeout=0.5, webhook_retry_delay=0.05)


@pytest.fixture
async def server(config: SandboxConfig) -> AsyncIterator[SandboxServer]:
    server = SandboxServer(config)
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest.fixture
async def client(server: SandboxServer) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(server.base_url) as client:
        yield client


@pytest.fixture
async def abot(server: SandboxServer) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.base_url))
    bot = Bot(server.token, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
async def pbot(server: SandboxServer) -> AsyncIterator[telegram.Bot]:
    bot = telegram.Bot(
        server.token,
        base_url=f"{server.base_url}/bot",
        base_file_url=f"{server.base_url}/file/bot",
    )
    await bot.initialize()
    yield bot
    await bot.shutdown()


async def next_update(bot: Bot, kind: str, timeout: float = 5.0) -> Update:
    """Long-poll (confirming as it goes) until an update of this kind arrives."""
    import asyncio

    offset: int | None = None
    async with asyncio.timeout(timeout):
        while True:
            updates = await bot.get_updates(offset=offset, timeout=1)
            for u in updates:
                offset = u.update_id + 1
                if u.event_type == kind:
                    await bot.get_updates(offset=offset)  # confirm it
                    return u
