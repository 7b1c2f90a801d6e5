"""Call-back hours as data (issue 16, customers 5): parsed and written back, cut into windows, closed
on Sundays and public holidays unless listed, and only windows not begun yet are open."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from app.core.hours import day_windows, hours_text, open_windows, parse_hours

LINDENAU = parse_hours("Mon-Fri 7-19, Sat 09:00-13:00")


def spans(windows):
    return [(w.name, f"{w.start:%H:%M}-{w.end:%H:%M}") for w in windows]


def test_hours_are_read_and_written_back():
    assert hours_text(LINDENAU) == "mon-fri 07:00-19:00, sat 09:00-13:00"
    both = parse_hours("mon 8-12; tue 8-12, holidays 10:00-14:00")
    assert hours_text(both) == "mon-tue 08:00-12:00, holidays 10:00-14:00"


@pytest.mark.parametrize("text", ["", "mon", "mon 12-8", "fri-mon 8-12", "mon 8-12, mon 9-10", "xyz 8-12",
                                  "mon 25-26"])
def test_bad_hours_are_refused_with_a_reason(text):
    with pytest.raises(ValueError):
        parse_hours(text)


def test_a_day_is_cut_at_noon_and_four():
    assert spans(day_windows(LINDENAU, date(2026, 12, 7), "DE")) == [
        ("morning", "07:00-12:00"), ("afternoon", "12:00-16:00"), ("evening", "16:00-19:00")]
    assert spans(day_windows(LINDENAU, date(2026, 12, 12), "DE")) == [
        ("morning", "09:00-12:00"), ("afternoon", "12:00-13:00")]


def test_sundays_and_public_holidays_are_closed_unless_listed():
    assert day_windows(LINDENAU, date(2026, 12, 6), "DE") == []  # a Sunday
    assert day_windows(LINDENAU, date(2026, 12, 25), "DE") == []  # Christmas Day, a Friday
    open_on_holidays = parse_hours("mon-fri 7-19, holidays 10-14")
    assert spans(day_windows(open_on_holidays, date(2026, 12, 25), "DE")) == [
        ("morning", "10:00-12:00"), ("afternoon", "12:00-14:00")]


def test_on_a_sunday_afternoon_the_first_window_is_monday_morning_and_none_is_on_sunday():
    sunday_afternoon = datetime(2026, 12, 6, 14, 30, tzinfo=UTC)  # 15:30 in Leipzig
    windows = open_windows(LINDENAU, "DE", sunday_afternoon)
    assert windows[0].day == date(2026, 12, 7) and windows[0].start == time(7)
    assert all(w.day.weekday() != 6 for w in windows)
    assert windows[-1].day == date(2026, 12, 19)  # 14 days ahead is a Sunday: the Saturday is the last


def test_a_window_that_has_begun_is_not_offered_and_its_moments_are_in_utc():
    monday_noon = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)  # 12:00 in Leipzig: the afternoon begins now
    windows = open_windows(LINDENAU, "DE", monday_noon)
    assert (windows[0].day, windows[0].name) == (date(2026, 12, 7), "evening")
    from app.i18n import country_zone

    start, end = windows[0].moments(country_zone("DE"))
    assert (start, end) == (datetime(2026, 12, 7, 15, 0, tzinfo=UTC), datetime(2026, 12, 7, 18, 0, tzinfo=UTC))
