"""When a customer may get an SMS or e-mail: quiet hours on the local clock across a change of
daylight saving time, Sundays and public holidays from the `holidays` package, the customer's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from app.dunning import calendar
from app.dunning.engine import Clock

OSLO = calendar.zone(None, "NO")


def at(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_quiet_hours_follow_the_local_clock_across_the_spring_change():
    # 06:30 UTC is 07:30 in Oslo on Saturday 28 March 2026 (CET, quiet) and 08:30 on Monday 30 March (CEST)
    assert calendar.is_quiet(at(2026, 3, 28, 6, 30), OSLO)
    assert not calendar.is_quiet(at(2026, 3, 30, 6, 30), OSLO)
    # 20:30 UTC: 21:30 CET (quiet) before, 22:30 CEST after; 19:30 UTC after the change is 21:30: quiet too
    assert calendar.is_quiet(at(2026, 3, 27, 20, 30), OSLO) and calendar.is_quiet(at(2026, 3, 30, 19, 30), OSLO)
    assert not calendar.is_quiet(at(2026, 3, 27, 19, 30), OSLO)  # 20:30 CET


def test_quiet_hours_follow_the_local_clock_across_the_autumn_change():
    # 25 October 2026, 03:00 CEST -> 02:00 CET. 07:30 UTC: 09:30 CEST on the 24th, 08:30 CET on the 26th
    assert not calendar.is_quiet(at(2026, 10, 24, 7, 30), OSLO)
    assert not calendar.is_quiet(at(2026, 10, 26, 7, 30), OSLO)
    assert calendar.is_quiet(at(2026, 10, 26, 6, 30), OSLO)  # 07:30 CET
    assert not calendar.is_quiet(at(2026, 10, 23, 6, 30), OSLO)  # 08:30 CEST


def test_the_runs_clock_is_the_local_time_on_both_sides_of_the_change():
    before = Clock.of("NO", date(2026, 3, 27), time(7, 30))
    after = Clock.of("NO", date(2026, 3, 30), time(7, 30))
    assert (before.now.hour, after.now.hour) == (6, 5)  # UTC+1, then UTC+2
    assert calendar.is_quiet(before.now, OSLO) and calendar.is_quiet(after.now, OSLO)
    assert not calendar.is_quiet(Clock.of("NO", date(2026, 3, 30), time(8, 0)).now, OSLO)


def test_sundays_and_public_holidays_are_rest_days():
    assert calendar.is_rest_day(date(2026, 12, 6), "NO")  # a Sunday
    assert calendar.is_rest_day(date(2026, 5, 17), "NO")  # Constitution Day (a Sunday too)
    assert calendar.is_rest_day(date(2026, 5, 14), "NO")  # Ascension Day, a Thursday
    assert not calendar.is_rest_day(date(2026, 5, 14), "IE")
    assert calendar.is_rest_day(date(2026, 10, 3), "DE") and not calendar.is_rest_day(date(2026, 10, 3), "NO")
    assert calendar.is_rest_day(date(2026, 3, 17), "IE")  # Saint Patrick's Day
    assert calendar.next_working_day(date(2026, 12, 24), "NO") == date(2026, 12, 24)
    assert calendar.next_working_day(date(2026, 12, 25), "NO") == date(2026, 12, 28)  # 25, 26 and a Sunday
    assert calendar.may_message(at(2026, 12, 25, 10), OSLO, "NO") == "rest_day"
    assert calendar.may_message(at(2026, 12, 8, 22), OSLO, "NO") == "quiet_hours"
    assert calendar.may_message(at(2026, 12, 8, 10), OSLO, "NO") is None


def test_a_country_the_package_does_not_know_has_sundays_only():
    assert not calendar.is_holiday(date(2026, 12, 25), "XX")
    assert calendar.is_rest_day(date(2026, 12, 6), "XX")


def test_the_customers_own_zone_wins_over_the_creditors_country():
    zone = calendar.zone("America/New_York", "NO")
    assert calendar.is_quiet(at(2026, 12, 8, 23), OSLO)  # 00:00 in Oslo
    assert not calendar.is_quiet(at(2026, 12, 8, 23), zone)  # 18:00 in New York
    assert calendar.zone("Not/A_Zone", "NO") == OSLO and str(calendar.zone(None, "DE")) == "Europe/Berlin"
