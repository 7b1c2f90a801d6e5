"""Dates as customers and creditors read them: today where the creditor is, dates typed into
forms, and moments written for machines (ISO 8601 in UTC)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from app.i18n import country_zone


def local_today(country: str, now: datetime) -> date:
    """Today's date where the creditor is: due dates are local dates."""
    return now.astimezone(country_zone(country)).date()


def parse_date(value: str | None) -> date | None:
    """A date typed as 2026-12-31, 31.12.2026 or 31/12/2026; None when it is none of these or no date."""
    value = (value or "").strip()
    for pattern in (r"(\d{4})-(\d{2})-(\d{2})", r"(\d{2})[./](\d{2})[./](\d{4})"):
        m = re.fullmatch(pattern, value)
        if m:
            parts = m.groups()
            y, mo, d = (parts if len(parts[0]) == 4 else (parts[2], parts[1], parts[0]))
            try:
                return date(int(y), int(mo), int(d))
            except ValueError:
                return None
    return None


def utc_iso(value: datetime) -> str:
    """'2026-10-01T08:30:00Z'."""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
