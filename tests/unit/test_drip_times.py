"""When lessons fall due: quiet hours (also across midnight), timezones, DST, fixed dates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.models import Lesson, ReleaseRule
from bot.services.authoring import parse_price, parse_release, parse_tags
from bot.services.drip import Prefs, in_quiet_hours, nominal_release, out_of_quiet_hours

BERLIN = Prefs(ZoneInfo("Europe/Berlin"), 22 * 60, 8 * 60)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_quiet_hours_across_midnight_in_local_time() -> None:
    # 21:30 UTC in January is 22:30 in Berlin: quiet, until 08:00 local = 07:00 UTC.
    assert in_quiet_hours(utc(2026, 1, 10, 21, 30), BERLIN)
    assert out_of_quiet_hours(utc(2026, 1, 10, 21, 30), BERLIN) == utc(2026, 1, 11, 7, 0)
    # 03:00 local is quiet too and ends the same morning.
    assert out_of_quiet_hours(utc(2026, 1, 11, 2, 0), BERLIN) == utc(2026, 1, 11, 7, 0)
    # 12:00 local is not quiet: unchanged.
    noon = utc(2026, 1, 11, 11, 0)
    assert not in_quiet_hours(noon, BERLIN) and out_of_quiet_hours(noon, BERLIN) == noon


def test_daytime_quiet_window_and_off() -> None:
    lunch = Prefs(ZoneInfo("UTC"), 12 * 60, 13 * 60)
    assert out_of_quiet_hours(utc(2026, 1, 1, 12, 30), lunch) == utc(2026, 1, 1, 13, 0)
    off = Prefs(ZoneInfo("UTC"), 0, 0)
    assert not in_quiet_hours(utc(2026, 1, 1, 3, 0), off)


def test_days_after_enrollment_keep_local_time_across_dst() -> None:
    lesson = Lesson(release_rule=ReleaseRule.AFTER_DAYS, release_days=2)
    # Enrolled Friday 10:00 Berlin (CET); DST starts Sunday 29 March 2026.
    start = utc(2026, 3, 27, 9, 0)
    due = nominal_release(lesson, start, BERLIN, first=False, previous_done_at=None)
    assert due == utc(2026, 3, 29, 8, 0)  # 10:00 CEST


def test_fixed_date_is_each_learners_wall_clock() -> None:
    lesson = Lesson(release_rule=ReleaseRule.AT_DATE, release_at=utc(2026, 12, 1, 9, 30))
    shanghai = Prefs(ZoneInfo("Asia/Shanghai"), 0, 0)
    start = utc(2026, 11, 1)
    assert nominal_release(lesson, start, shanghai, first=False, previous_done_at=None) == utc(
        2026, 12, 1, 1, 30
    )
    assert nominal_release(lesson, start, BERLIN, first=False, previous_done_at=None) == utc(
        2026, 12, 1, 8, 30
    )


def test_after_previous_waits_for_done() -> None:
    lesson = Lesson(release_rule=ReleaseRule.AFTER_PREVIOUS)
    start = utc(2026, 1, 1)
    assert nominal_release(lesson, start, BERLIN, first=True, previous_done_at=None) == start
    assert nominal_release(lesson, start, BERLIN, first=False, previous_done_at=None) is None
    done = utc(2026, 1, 3, 15)
    assert nominal_release(lesson, start, BERLIN, first=False, previous_done_at=done) == done


def test_creator_input_parsing() -> None:
    assert parse_price("19.99 usd") == (1999, "USD")
    assert parse_price("1500 JPY") == (1500, "JPY")
    assert parse_price("0") == (0, "USD")
    assert parse_price("1.234 USD") is None and parse_price("-1") is None
    assert parse_price("5 XTR") is None
    assert parse_tags("#SQL, data,  sql,-") == ["sql", "data"]
    assert parse_release("days 3") is not None and parse_release("days x") is None
    at = parse_release("at 2026-12-01 09:30")
    assert at is not None and at.at == utc(2026, 12, 1, 9, 30)
    after = parse_release("after")
    assert after is not None and after.rule == ReleaseRule.AFTER_PREVIOUS
