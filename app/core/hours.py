"""When a creditor's support desk calls customers back, and the windows a customer may choose.

The hours are data, one short text per creditor (`creditors.callback_hours`; `flask creditors update
SLUG --callback-hours "mon-fri 07:00-19:00, sat 09:00-13:00"`): days `mon`..`sun` (a day or a range
`mon-fri`) with their hours, and optionally `holidays 10:00-14:00`. A day not listed is closed, and so
are the public holidays of the creditor's country (the `holidays` package) unless `holidays` is
listed. A creditor without hours of its own calls back on working days 08:00-20:00 (DEFAULT_HOURS).

Each open day is cut at 12:00 and 16:00 into at most three windows, named as before (morning,
afternoon, evening): Mo-Fr 07-19 gives 07:00-12:00, 12:00-16:00 and 16:00-19:00; Sa 09-13 gives
09:00-12:00 and 12:00-13:00. A customer may choose a window that has not begun yet, from today to
CALLBACK_DAYS ahead, all in the creditor's time zone. The form offers exactly these; the service
checks the choice against the same list (`find_window`).

Pure: no database and no Flask; the words are in `support.emails` (`window_words`). In `core` because
the creditor's settings check the text and the contact form offers the windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise

import holidays

from app.i18n import country_zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAYS = "holidays"
DEFAULT_HOURS = "mon-fri 08:00-20:00"
CALLBACK_DAYS = 14  # how far ahead a call back may be asked for
CUTS = (time(12), time(16))  # where a day's hours are cut into windows
WINDOW_NAMES = ("morning", "afternoon", "evening")
MIN_WINDOW = timedelta(minutes=30)  # a shorter remainder of a day is no window

_PART = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?|holidays)\s+(?P<start>\d{1,2}(?::\d{2})?)\s*-\s*"
                   r"(?P<end>\d{1,2}(?::\d{2})?)$")


@dataclass(frozen=True)
class Hours:
    """Opening hours for call backs: weekday (0 = Monday) -> (from, until); `holidays`: on public holidays."""

    days: dict[int, tuple[time, time]]
    holidays: tuple[time, time] | None = None


def _time(text: str) -> time:
    hour, _sep, minute = text.partition(":")
    h, m = int(hour), int(minute or 0)
    if h == 24 and m == 0:
        return time(23, 59)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"{text} is not a time of day")
    return time(h, m)


def parse_hours(text: str | None) -> Hours:
    """The hours of a text such as "mon-fri 07:00-19:00, sat 09:00-13:00"; ValueError with the reason."""
    days: dict[int, tuple[time, time]] = {}
    on_holidays = None
    parts = [part.strip() for part in (text or "").lower().replace(";", ",").split(",") if part.strip()]
    if not parts:
        raise ValueError("no hours given")
    for part in parts:
        m = _PART.match(part)
        if not m:
            raise ValueError(f"'{part}': write a day or days and the hours, e.g. 'mon-fri 08:00-16:00'")
        start, end = _time(m["start"]), _time(m["end"])
        if start >= end:
            raise ValueError(f"'{part}': the hours end before they begin")
        if m["days"] == HOLIDAYS:
            on_holidays = (start, end)
            continue
        first, _dash, last = m["days"].partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"'{part}': days are mon, tue, wed, thu, fri, sat, sun")
        a, b = DAYS.index(first), DAYS.index(last or first)
        if b < a:
            raise ValueError(f"'{part}': the days run backwards")
        for weekday in range(a, b + 1):
            if weekday in days:
                raise ValueError(f"'{part}': {DAYS[weekday]} is given twice")
            days[weekday] = (start, end)
    return Hours(days, on_holidays)


def hours_text(hours: Hours) -> str:
    """The hours written back as the text `parse_hours` reads (days with the same hours joined)."""
    parts: list[str] = []
    weekday = 0
    while weekday < 7:
        if weekday not in hours.days:
            weekday += 1
            continue
        span = hours.days[weekday]
        last = weekday
        while last + 1 < 7 and hours.days.get(last + 1) == span:
            last += 1
        days = DAYS[weekday] if last == weekday else f"{DAYS[weekday]}-{DAYS[last]}"
        parts.append(f"{days} {span[0]:%H:%M}-{span[1]:%H:%M}")
        weekday = last + 1
    if hours.holidays:
        parts.append(f"{HOLIDAYS} {hours.holidays[0]:%H:%M}-{hours.holidays[1]:%H:%M}")
    return ", ".join(parts)


def hours_of(text: str | None) -> Hours:
    """A creditor's stored hours; its default when it has none (the CLI checks what it stores)."""
    try:
        return parse_hours(text or DEFAULT_HOURS)
    except ValueError:
        return parse_hours(DEFAULT_HOURS)


def local_moment(day: date, at: time, zone: tzinfo) -> datetime:
    """`day` at `at` o'clock in `zone` (pytz zones, as Babel gives them, need `localize`)."""
    localize = getattr(zone, "localize", None)
    return localize(datetime.combine(day, at)) if localize else datetime.combine(day, at, zone)


@lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country.upper(), years=year))
    except NotImplementedError:  # a country the package does not know: no public holidays
        return frozenset()


@dataclass(frozen=True)
class Window:
    """A call-back window on a day, in the creditor's local time."""

    day: date
    name: str  # morning | afternoon | evening
    start: time
    end: time

    @property
    def value(self) -> str:
        """How the form names it: 2026-12-07/morning."""
        return f"{self.day.isoformat()}/{self.name}"

    def moments(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """Its start and end as moments in UTC (stored with the request, for agents' call lists)."""
        return (local_moment(self.day, self.start, zone).astimezone(UTC),
                local_moment(self.day, self.end, zone).astimezone(UTC))


def day_windows(hours: Hours, day: date, country: str) -> list[Window]:
    """The windows of one day: its hours (none on a closed day or holiday) cut at 12:00 and 16:00."""
    span = hours.holidays if day in _holidays(country, day.year) else hours.days.get(day.weekday())
    if span is None:
        return []
    bounds = [span[0], *(cut for cut in CUTS if span[0] < cut < span[1]), span[1]]
    windows = []
    for start, end in pairwise(bounds):
        name = WINDOW_NAMES[sum(1 for cut in CUTS if start >= cut)]
        length = datetime.combine(day, end) - datetime.combine(day, start)
        if length >= MIN_WINDOW:
            windows.append(Window(day, name, start, end))
    return windows


def open_windows(hours: Hours, country: str, now: datetime, days: int = CALLBACK_DAYS) -> list[Window]:
    """The windows a customer may choose at `now`: not begun yet, from today to `days` ahead (the
    creditor's dates and clock)."""
    zone = country_zone(country)
    local_now = now.astimezone(zone)
    today = local_now.date()
    found = []
    for offset in range(days + 1):
        for window in day_windows(hours, today + timedelta(days=offset), country):
            if local_moment(window.day, window.start, zone) > local_now:
                found.append(window)
    return found


def find_window(windows: list[Window], day: date | None, name: str | None) -> Window | None:
    return next((w for w in windows if w.day == day and w.name == name), None)
