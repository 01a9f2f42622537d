"""Streak arithmetic on local dates, the weekly freeze, and the reminder's next moment
across Berlin's DST changes (pure functions of bot.services.challenges)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.services.challenges import after_check_in, current, in_quiet, next_remind, week_of

MON = date(2026, 3, 30)


def test_consecutive_days_grow_a_gap_resets() -> None:
    assert after_check_in(None, 0, None, MON).streak == 1
    assert after_check_in(MON, 4, None, date(2026, 3, 31)).streak == 5
    assert after_check_in(MON, 4, week_of(MON), date(2026, 4, 1)).streak == 1  # freeze used
    assert after_check_in(MON, 4, None, date(2026, 4, 2)).streak == 1  # two days missed


def test_one_freeze_per_week_bridges_one_missed_day() -> None:
    step = after_check_in(MON, 4, None, date(2026, 4, 1))
    assert (step.streak, step.freeze_week) == (5, MON)
    # The next week has its own freeze.
    step = after_check_in(date(2026, 4, 5), 9, MON, date(2026, 4, 7))
    assert (step.streak, step.freeze_week) == (10, date(2026, 4, 6))


def test_the_streak_as_it_stands_today() -> None:
    assert current(MON, 3, None, MON) == 3
    assert current(MON, 3, None, date(2026, 3, 31)) == 3
    assert current(MON, 3, None, date(2026, 4, 1)) == 3  # the freeze can still save it
    assert current(MON, 3, MON, date(2026, 4, 1)) == 0
    assert current(MON, 3, None, date(2026, 4, 2)) == 0
    assert current(None, 0, None, MON) == 0


def test_next_reminder_keeps_local_time_across_dst() -> None:
    berlin = "Europe/Berlin"
    # Saturday 28 March, 21:00 CET → Sunday's 20:00 is CEST (18:00 UTC).
    saturday = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
    assert next_remind(saturday, berlin, 20 * 60) == datetime(2026, 3, 29, 18, 0, tzinfo=UTC)
    before = datetime(2026, 3, 28, 18, 59, tzinfo=UTC)  # 19:59 CET
    assert next_remind(before, berlin, 20 * 60) == datetime(2026, 3, 28, 19, 0, tzinfo=UTC)
    # Autumn: Sunday 25 October 2026 back to CET.
    october = datetime(2026, 10, 24, 19, 0, tzinfo=UTC)  # 21:00 CEST
    assert next_remind(october, berlin, 20 * 60) == datetime(2026, 10, 25, 19, 0, tzinfo=UTC)


def test_quiet_minutes() -> None:
    assert in_quiet(23 * 60, 22 * 60, 8 * 60) and in_quiet(7 * 60, 22 * 60, 8 * 60)
    assert not in_quiet(21 * 60, 22 * 60, 8 * 60)
    assert in_quiet(13 * 60, 12 * 60, 14 * 60) and not in_quiet(14 * 60, 12 * 60, 14 * 60)
    assert not in_quiet(0, 0, 0)
