"""Rate limits on chosen views, counted in the storage RATELIMIT_STORAGE_URI names.

Built on `limits`, the library under Flask-Limiter, with the same storage URIs
(`memory://` in one process, `redis://host:port/db` shared by every instance) and the
same fixed-window strategy. Only the decorated views pay for it: one counter increment
per request, keyed by view and client address. Why not Flask-Limiter's own hooks: see
docs/decisions.md.

If the storage fails (Redis down), the request is let through and the failure logged:
the signed link and the step-up's attempt counter still protect the bill, and a customer
should not see an error page because a counter could not be written.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache, wraps

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger(__name__)
EXTENSION = "rate_limiter"


@lru_cache(maxsize=64)
def _parse(limit: str) -> RateLimitItem:
    return parse(limit)


class RateLimiter:
    """Created unbound in app.extensions; `init_app` connects it to the configured storage."""

    def init_app(self, app: Flask) -> None:
        enabled = app.config.get("RATELIMIT_ENABLED", True)
        strategy = None
        if enabled:
            storage = storage_from_string(app.config.get("RATELIMIT_STORAGE_URI", "memory://"))
            strategy = FixedWindowRateLimiter(storage)
        app.extensions[EXTENSION] = strategy

    @staticmethod
    def _strategy() -> FixedWindowRateLimiter | None:
        return current_app.extensions.get(EXTENSION)

    def limit(self, limit: str | Callable[[], str], methods: tuple[str, ...] | list[str] | None = None):
        """Decorate a view: at most `limit` (e.g. "60 per minute", or a callable returning it)
        requests per client address, counted for the methods given (all when None)."""
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
        """Count one request of this client against `limit`; raise 429 when it is over."""
        strategy = self._strategy()
        if strategy is None:
            return
        item = _parse(limit)
        client = request.remote_addr or "unknown"
        try:
            allowed = strategy.hit(item, scope, client)
        except Exception:  # storage unreachable: let the request through, say so in the log
            log.exception("rate limit storage failed; request allowed")
            return
        if not allowed:
            reset_at = strategy.get_window_stats(item, scope, client).reset_time
            raise TooManyRequests(retry_after=max(1, math.ceil(reset_at - time.time())))

    def reset(self, app: Flask | None = None) -> None:
        """Forget every count (tests)."""
        strategy = (app or current_app).extensions.get(EXTENSION)
        if strategy is not None:
            strategy.storage.reset()
