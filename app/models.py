"""Column helpers shared by the feature models."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


#: How finely a key's last use is kept (`note_use`).
LAST_USE_RESOLUTION = timedelta(minutes=1)


def note_use(key, now: datetime | None = None) -> None:
    """Record that an API key (anything with `last_used_at`) was used now, to the minute. Written on
    every request, the UPDATE would lock the key's row until the request commits: every call an
    integration makes with one key at once would wait for the one before it. Once a minute, only the
    calls of that moment do."""
    now = now or utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USE_RESOLUTION:
        key.last_used_at = now


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
