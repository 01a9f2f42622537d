"""Random callback data and texts thrown at the real Dispatcher: nothing escapes."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import build_app
from bot.config import Settings
from bot.db import create_engine
from bot.models import User
from tests.support.recording import RecordingSession
from tests.support.updates import Harness, settle, tg_user

prefixes = st.sampled_from(["c", "p", "l", "i", "m", "sim", "b", "zz", ""])
callback_data = st.one_of(
    st.text(max_size=100),
    st.builds(
        lambda p, xs: ":".join([p, *xs]), prefixes, st.lists(st.text(max_size=30), max_size=4)
    ),
)
texts = st.one_of(st.text(max_size=300), st.builds(lambda t: "/" + t, st.text(max_size=40)))
actions = st.lists(
    st.tuples(st.sampled_from(["cb", "text"]), st.one_of(callback_data, texts)),
    min_size=1,
    max_size=8,
)


async def _run(settings: Settings, items: list[tuple[str, str]]) -> None:
    engine = create_engine(settings.database_url)
    app = build_app(settings, session=RecordingSession(), engine=engine)
    harness = Harness(app)
    failures: list[BaseException] = []

    async def capture(event: Any) -> bool:
        failures.append(event.exception)
        return True

    # Swap the apologising error handler for one that records, so that an exception
    # inside any handler fails this test instead of being swallowed politely.
    app.dp.errors.handlers.clear()
    app.dp.errors.register(capture)
    user = tg_user(5005)
    try:
        for kind, payload in items:
            if kind == "cb":
                await harness.press(payload, user)
            else:
                await harness.send(payload or " ", user)
        async with app.sessionmaker() as s:
            assert await s.scalar(select(User.id).where(User.id == 5005)) == 5005
    finally:
        await settle(app)
        await engine.dispose()
    assert not failures, failures


def test_random_callbacks_and_texts_never_raise(settings: Settings) -> None:
    @hypothesis_settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(actions)
    def inner(items: list[tuple[str, str]]) -> None:
        asyncio.run(_run(settings, items))

    inner()
