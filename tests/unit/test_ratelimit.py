"""Rate limits: per view and client address, 429 with Retry-After, and a failing storage lets requests through."""

import secrets

import pytest
from flask import Flask
from limits import parse, parse_many

from app.ratelimit import EXTENSION, RateLimiter


def make_app(limit="2 per minute", **config) -> tuple[Flask, RateLimiter]:
    app = Flask(__name__)
    app.config.update({"RATELIMIT_STORAGE_URI": "memory://", **config})
    limiter = RateLimiter()
    limiter.init_app(app)

    @app.route("/a", methods=["GET", "POST"])
    @limiter.limit(limit)
    def a():
        return "a"

    @app.post("/b")
    @limiter.limit(lambda: limit, methods=["POST"])
    def b():
        return "b"

    return app, limiter


def test_limit_per_view_and_address_with_retry_after():
    app, _ = make_app()
    client = app.test_client()
    codes = [client.get("/a").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.get("/a")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.post("/b").status_code == 200  # another view has its own count
    other = client.get("/a", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200  # another address too


def test_only_the_listed_methods_count():
    app, _ = make_app(limit="1 per minute")
    client = app.test_client()
    assert client.get("/b").status_code == 405
    assert [client.post("/b").status_code for _ in range(2)] == [200, 429]


def test_disabled_limits_count_nothing():
    app, _ = make_app(limit="1 per minute", RATELIMIT_ENABLED=False)
    client = app.test_client()
    assert [client.get("/a").status_code for _ in range(3)] == [200, 200, 200]


def test_failing_storage_lets_the_request_through(caplog):
    app, _ = make_app(limit="1 per minute")

    class Broken:
        def hit(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    app.extensions[EXTENSION] = Broken()
    client = app.test_client()
    assert [client.get("/a").status_code for _ in range(2)] == [200, 200]
    assert "rate limit storage failed" in caplog.text


def test_reset_forgets_counts():
    app, limiter = make_app(limit="1 per minute")
    client = app.test_client()
    assert [client.get("/a").status_code for _ in range(2)] == [200, 429]
    limiter.reset(app)
    assert client.get("/a").status_code == 200


def test_process_memory_windows_expire_and_sweep(monkeypatch):
    import app.ratelimit as rl

    clock = [1000.0]
    monkeypatch.setattr(rl.time, "time", lambda: clock[0])
    storage = rl.ProcessMemory(sweep_above=3)
    assert [storage.incr("a", 60) for _ in range(3)] == [1, 2, 3]
    assert storage.get("a") == 3 and storage.get_expiry("a") == 1060.0
    clock[0] = 1061.0  # the window is over: the counter starts again
    assert storage.get("a") == 0 and storage.incr("a", 60) == 1
    storage.incr("b", 10)
    storage.incr("c", 10)
    clock[0] = 1080.0  # b and c expired; the next new key sweeps them
    storage.incr("d", 10)
    assert set(storage._counters) == {"a", "d"}
    assert storage.reset() == 2 and storage.get("a") == 0


# --- several windows ("10 per minute; 60 per hour"), in process memory and in Redis ----------------

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
def storage(request):
    """The two storages a deployment uses; Redis with a key prefix of this test's own, emptied after."""
    if request.param == "memory":
        yield {"RATELIMIT_STORAGE_URI": "memory://"}
        return
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    prefix = f"portal-test-ratelimit-{secrets.token_hex(6)}"
    yield {"RATELIMIT_STORAGE_URI": REDIS, "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix}}
    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


def test_every_window_counts(storage):
    app, limiter = make_app(limit="5 per minute; 3 per hour", **storage)
    client = app.test_client()
    codes = [client.get("/a").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # the hourly cap, though the minute would allow two more
    refused = client.get("/a")
    assert 60 < int(refused.headers["Retry-After"]) <= 3600  # until the hour's window ends
    assert [client.post("/b").status_code for _ in range(4)] == [200, 200, 200, 429]  # a callable's limit too
    limiter.reset(app)


def test_windows_in_any_order_and_a_burst_does_not_use_up_the_longer_window(storage):
    app, limiter = make_app(limit="4 per hour; 2 per minute", **storage)
    client = app.test_client()
    assert [client.get("/a").status_code for _ in range(5)] == [200, 200, 429, 429, 429]
    refused = client.get("/a")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60  # the minute's window refused it
    strategy = app.extensions[EXTENSION]
    hourly = strategy.get_window_stats(parse("4 per hour"), "make_app.<locals>.a", "127.0.0.1")
    assert hourly.remaining == 2  # only the two requests let through count toward the hour
    limiter.reset(app)


def test_the_self_service_default_has_both_windows():
    from app.config import load_config

    config = load_config("/tmp", {"PORTAL_ENV": "testing", "SECRET_KEY": "x" * 40})
    assert [str(item) for item in parse_many(config["SELF_SERVICE_RATE_LIMIT"])] == ["10 per 1 minute", "60 per 1 hour"]
