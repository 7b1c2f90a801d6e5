"""Rate limits on chosen views, counted in the storage RATELIMIT_STORAGE_URI names.

Built on `limits`, the library under Flask-Limiter, with the same storage URIs
(`memory://` in one process, `redis://host:port/db` shared by every instance) and the
same fixed-window strategy. Only the decorated views pay for it: one counter increment
per request, keyed by view and client address. Why not Flask-Limiter's own hooks: see
docs/decisions.md.

`memory://` is counted by `ProcessMemory` below rather than `limits`' MemoryStorage,
which starts a new timer thread every 10 ms under load to expire its counters.

If the storage fails (Redis down), the request is let through and the failure logged:
the signed link and the step-up's attempt counter still protect the bill, and a customer
should not see an error page because a counter could not be written.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, wraps

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger(__name__)
EXTENSION = "rate_limiter"


@lru_cache(maxsize=64)
def _parse(limit: str) -> tuple[RateLimitItem, ...]:
    """Every window of `limit` ("10 per minute; 60 per hour"), the shortest first."""
    return tuple(sorted(parse_many(limit), key=lambda item: item.get_expiry()))


class ProcessMemory(Storage):
    """Fixed-window counters in this process's memory, for `memory://` (one process, tests).

    A counter past its window counts as absent and is replaced on the next hit; expired
    counters are swept when there are more than `sweep_above` of them, so memory stays
    bounded without a background thread."""

    STORAGE_SCHEME = None  # not registered with limits: RateLimiter picks it for memory://

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, sweep_above: int = 10_000, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.sweep_above = sweep_above
        self._counters: dict[str, list] = {}  # key -> [count, window end (epoch seconds)]
        self._lock = threading.Lock()

    @property
    def base_exceptions(self):
        return ValueError

    def _live(self, key: str, now: float) -> list | None:
        counter = self._counters.get(key)
        return counter if counter is not None and counter[1] > now else None

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            counter = self._live(key, now)
            if counter is None:
                if len(self._counters) >= self.sweep_above:
                    self._counters = {k: c for k, c in self._counters.items() if c[1] > now}
                counter = self._counters[key] = [0, now + expiry]
            counter[0] += amount
            return counter[0]

    def get(self, key: str) -> int:
        counter = self._live(key, time.time())
        return counter[0] if counter else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        counter = self._live(key, now)
        return counter[1] if counter else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            count, self._counters = len(self._counters), {}
        return count

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)


@dataclass(frozen=True)
class Backoff:
    """Failures let through (`free`) within `window` seconds before each costs a wait that doubles
    from `base` seconds up to `cap`."""

    free: int
    base: int
    cap: int
    window: int


def _count(strategy: FixedWindowRateLimiter, limit: str, scope: str, client: str) -> RateLimitItem | None:
    """Count one request in every window of `limit`, shortest first; the window that refuses it (the
    longer ones do not count it), or None."""
    for item in _parse(limit):
        if not strategy.hit(item, scope, client):
            return item
    return None


class RateLimiter:
    """Created unbound in app.extensions; `init_app` connects it to the configured storage."""

    def init_app(self, app: Flask) -> None:
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        strategy = None
        if enabled:
            uri = app.config.get("RATELIMIT_STORAGE_URI", "memory://")
            # RATELIMIT_STORAGE_OPTIONS: the storage's own options (Redis: key_prefix), not an environment variable
            options = app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}
            storage = ProcessMemory() if uri.startswith("memory://") else storage_from_string(uri, **options)
            strategy = FixedWindowRateLimiter(storage)
        app.extensions[EXTENSION] = strategy

    @staticmethod
    def _strategy() -> FixedWindowRateLimiter | None:
        return current_app.extensions.get(EXTENSION)

    def limit(self, limit: str | Callable[[], str], methods: tuple[str, ...] | list[str] | None = None):
        """Decorate a view: at most `limit` (e.g. "60 per minute", "10 per minute; 60 per hour", or a
        callable returning it) requests per client address, counted for the methods given (all when None)."""
        counted = {m.upper() for m in methods} if methods else None

        def decorate(view):
            scope = view.__qualname__

            @wraps(view)
            def limited(*args, **kwargs):
                if counted is None or request.method in counted:
                    self.hit(limit() if callable(limit) else limit, scope)
                return view(*args, **kwargs)

            return limited

        return decorate

    def hit(self, limit: str, scope: str) -> None:
        """Count one request of this client against every window of `limit`; raise 429 when one is over.

        The windows are counted shortest first, and a request one refuses is not counted in the
        longer ones: a burst stopped by "10 per minute" does not use up "60 per hour"."""
        strategy = self._strategy()
        if strategy is None:
            return
        client = request.remote_addr or "unknown"
        try:
            refused = _count(strategy, limit, scope, client)
            if refused is None:
                return
            reset_at = strategy.get_window_stats(refused, scope, client).reset_time
        except Exception:  # storage unreachable: let the request through, say so in the log
            log.exception("rate limit storage failed; request allowed")
            return
        raise TooManyRequests(retry_after=max(1, math.ceil(reset_at - time.time())))

    def allows(self, app: Flask, limit: str, scope: str, client: str) -> bool:
        """`hit` outside a request (a WSGI middleware): count one request of `client` against `limit` in
        `scope`, the name `limit` counts a view under (its `__qualname__`); False when a window is over
        (nothing raised: the caller lets the view answer the 429). A failing storage allows it."""
        strategy = app.extensions.get(EXTENSION)
        if strategy is None:
            return True
        try:
            return _count(strategy, limit, scope, client) is None
        except Exception:
            log.exception("rate limit storage failed; request allowed")
            return True

    # --- growing delays after failures (the back office's sign-in) ---------------------------------

    def backoff_wait(self, key: str) -> int:
        """Seconds left before `key` may try again (0: now). A failing storage answers 0."""
        strategy = self._strategy()
        if strategy is None:
            return 0
        try:
            if strategy.storage.get(f"backoff/{key}/wait") <= 0:
                return 0
            return max(1, math.ceil(strategy.storage.get_expiry(f"backoff/{key}/wait") - time.time()))
        except Exception:
            log.exception("rate limit storage failed; attempt allowed")
            return 0

    def backoff_failed(self, key: str, backoff: Backoff) -> None:
        """Count a failure of `key`. Beyond `backoff.free` failures within `backoff.window` seconds
        (counted from the first), each failure makes `key` wait, twice as long each time (from
        `backoff.base` up to `backoff.cap` seconds)."""
        strategy = self._strategy()
        if strategy is None:
            return
        try:
            failures = strategy.storage.incr(f"backoff/{key}/failures", backoff.window)
            if failures >= backoff.free:
                delay = min(backoff.base * 2 ** (failures - backoff.free), backoff.cap)
                strategy.storage.incr(f"backoff/{key}/wait", delay)
        except Exception:
            log.exception("rate limit storage failed; failure not counted")

    def backoff_clear(self, key: str) -> None:
        """Forget `key`'s failures (it succeeded)."""
        strategy = self._strategy()
        if strategy is None:
            return
        try:
            strategy.storage.clear(f"backoff/{key}/failures")
            strategy.storage.clear(f"backoff/{key}/wait")
        except Exception:
            log.exception("rate limit storage failed; failures not cleared")

    def reset(self, app: Flask | None = None) -> None:
        """Forget every count (tests)."""
        strategy = (app or current_app).extensions.get(EXTENSION)
        if strategy is not None:
            strategy.storage.reset()
