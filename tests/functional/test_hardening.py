"""Production hardening: HSTS, secure cookies, shared rate limits across instances (Redis)."""

import os
import socket
import subprocess
import sys
import uuid

import pytest

from app import create_app
from tests.support.keys import PRODUCTION_ENV


def production_app(tmp_path, monkeypatch, **extra):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    for key, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/prod.db")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return create_app()


def test_production_refuses_to_start_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    from app.config import ConfigError

    with pytest.raises(ConfigError):
        create_app()


def test_production_headers_and_cookie_flags(tmp_path, monkeypatch):
    app = production_app(tmp_path, monkeypatch)
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    client = app.test_client()
    response = client.get("/l/forged", base_url="https://pay.example.com")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert response.status_code == 404


def redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


INSTANCE = """
import sys
from app import create_app
from tests.support.keys import PRODUCTION_ENV
app = create_app()
client = app.test_client()
codes = [client.get("/l/forged", base_url="https://pay.example.com",
                    environ_base={"REMOTE_ADDR": sys.argv[1]}).status_code for _ in range(3)]
print(",".join(map(str, codes)))
"""


@pytest.mark.skipif(not redis_up(), reason="Redis is not running on 127.0.0.1:6379")
def test_rate_limits_are_shared_between_instances_through_redis(tmp_path):
    """Two app processes (as behind a load balancer) count the same client together in Redis."""
    env = dict(os.environ, PORTAL_INSTANCE_PATH=str(tmp_path), **PRODUCTION_ENV,
               DATABASE_URL=f"sqlite:///{tmp_path}/prod.db", RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
               LINK_RATE_LIMIT="4 per minute")
    client_ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def run_instance():
        out = subprocess.run([sys.executable, "-c", INSTANCE, client_ip], env=env, cwd=root,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().splitlines()[-1]

    try:
        assert run_instance() == "404,404,404"
        assert run_instance() == "404,429,429"
    finally:
        import redis

        r = redis.Redis(host="127.0.0.1", port=6379)
        for key in r.scan_iter(f"*{client_ip}*"):
            r.delete(key)
