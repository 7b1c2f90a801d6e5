"""When a customer may be messaged: quiet hours in their time zone, Sundays and public holidays.

SMS and e-mail wait between `quiet_from` and `quiet_until` o'clock (21:00–08:00 by default) in the
customer's time zone (their own where we know it, else their creditor's country's), and all day on
Sundays and the public holidays of the creditor's country, from the `holidays` package (pinned in
requirements.txt; a new release brings new years' holidays). Letters are not held: they are
printed and posted in batches anyway.

Pure functions of a moment: the run passes its clock (`--date D` is D at 10:00 local, or now).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from app.i18n import country_zone


@lru_cache(maxsize=256)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country.upper(), years=year))
    except NotImplementedError:  # a country the package does not know: Sundays only
        return frozenset()


def is_holiday(day: date, country: str) -> bool:
    """A public holiday of `country` (ISO 3166 alpha-2) on `day`."""
    return day in _holidays(country, day.year)


def is_rest_day(day: date, country: str) -> bool:
    """A Sunday or a public holiday of `country`: no SMS or e-mail all day."""
    return day.weekday() == 6 or is_holiday(day, country)


def next_working_day(day: date, country: str) -> date:
    """`day` if it is no rest day, else the first day after it that is none."""
    while is_rest_day(day, country):
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=512)
def zone(time_zone: str | None, country: str) -> tzinfo:
    """The customer's zone: their own (an IANA name) when it is valid, else their creditor's country's
    (a `ZoneInfo` either way: `datetime.replace(tzinfo=...)` is right with it across DST, not with pytz)."""
    for name in (time_zone, str(country_zone(country))):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_quiet(moment: datetime, zone_: tzinfo, *, quiet_from: int = 21, quiet_until: int = 8) -> bool:
    """Whether `moment` (aware) falls in the quiet hours where the customer is. The hours are read on
    the local wall clock, so they hold across a change of daylight saving time."""
    hour = moment.astimezone(zone_).hour
    if quiet_from > quiet_until:  # over midnight: 21–08
        return hour >= quiet_from or hour < quiet_until
    return quiet_from <= hour < quiet_until


def may_message(moment: datetime, zone_: tzinfo, country: str, *, quiet_from: int = 21,
                quiet_until: int = 8) -> str | None:
    """None when an SMS or e-mail may go at `moment`; else why not: "quiet_hours" or "rest_day"."""
    local = moment.astimezone(zone_)
    if is_rest_day(local.date(), country):
        return "rest_day"
    if is_quiet(moment, zone_, quiet_from=quiet_from, quiet_until=quiet_until):
        return "quiet_hours"
    return None
