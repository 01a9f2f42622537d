"""The test clock a running bot can be told about (CLOCK_OFFSET_FILE)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import create_clock
from bot.config import Settings
from bot.scheduler.clock import OffsetFileClock, SystemClock


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def close_to(when: datetime, expected: datetime) -> bool:
    return abs((when - expected).total_seconds()) < 5


def test_the_offset_file_moves_the_wall_clock_at_once(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    clock = OffsetFileClock(path)
    assert close_to(clock.now(), datetime.now(UTC))  # no file: no offset
    write(path, "+86400\n")
    assert close_to(clock.now(), datetime.now(UTC) + timedelta(days=1))
    write(path, "-3600.5")
    assert close_to(clock.now(), datetime.now(UTC) - timedelta(hours=1))
    assert clock.now().tzinfo is not None


def test_a_bad_or_half_written_file_keeps_the_last_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "offset"
    clock = OffsetFileClock(path)
    write(path, "7200")
    assert clock.offset() == 7200
    write(path, "")  # caught between truncate and write
    assert clock.offset() == 7200
    write(path, "tomorrow")
    assert clock.offset() == 7200
    assert clock.offset() == 7200
    assert sum("not seconds" in r.getMessage() for r in caplog.records) == 1
    write(path, "0")
    assert clock.offset() == 0


def test_only_the_wall_clock_moves(tmp_path: Path) -> None:
    # Rate limiting and leases run on the steady clock: a jump must not let the sender burst.
    path = tmp_path / "offset"
    clock = OffsetFileClock(path)
    before = clock.monotonic()
    write(path, "+864000")
    assert clock.monotonic() - before < 5


def test_the_setting_is_refused_on_telegrams_own_servers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CLOCK_OFFSET_FILE"):
        Settings(_env_file=None, clock_offset_file=str(tmp_path / "offset"))  # type: ignore[call-arg]


def test_the_setting_picks_the_clock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(create_clock(Settings(_env_file=None)), SystemClock)  # type: ignore[call-arg]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_api_url="http://127.0.0.1:8081",
        clock_offset_file=str(tmp_path / "offset"),
    )
    clock = create_clock(settings)
    assert isinstance(clock, OffsetFileClock) and clock.path == tmp_path / "offset"
    assert any("TESTING ONLY" in r.getMessage() for r in caplog.records)
