"""The webhook channel's rules, without a network: where a partner's endpoint may be, the
Standard Webhooks headers (a stable id, every live secret signing), and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.debt_collection.partners import MIN_SECRET_BYTES, check_secret, new_signing_secret
from app.errors import InvalidData
from app.outbox.webhooks import (
    EndpointRefused,
    EndpointRules,
    WebhookRequest,
    check_endpoint,
    retry_after,
    sign,
    webhook_id,
)

PRODUCTION = EndpointRules(allowed_hosts=("api.inkasso.example", "*.collect.example"), allow_private=False)
DEVELOPMENT = EndpointRules(allowed_hosts=(), allow_private=True)


@pytest.mark.parametrize("url", [
    "https://api.inkasso.example/cases", "https://eu.collect.example/hooks", "https://a.b.collect.example/x",
])
def test_production_allows_https_to_listed_hosts(url):
    check_endpoint(url, PRODUCTION, resolve=False)


@pytest.mark.parametrize(("url", "why"), [
    ("http://api.inkasso.example/cases", "https"),
    ("https://evil.example/cases", "COLLECTION_ENDPOINT_HOSTS"),
    ("https://collect.example/cases", "COLLECTION_ENDPOINT_HOSTS"),  # "*.x" is a subdomain, not x itself
    ("https://user:pw@api.inkasso.example/", "user name"),
    ("ftp://api.inkasso.example/", "http"),
    ("https:///nohost", "host"),
])
def test_production_refuses_the_rest(url, why):
    with pytest.raises(EndpointRefused, match=why):
        check_endpoint(url, PRODUCTION, resolve=False)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "192.168.1.1", "169.254.169.254", "::1", "fd00::1"])
def test_production_refuses_a_host_that_resolves_to_a_private_address(address):
    rules = EndpointRules(allowed_hosts=(address,), allow_private=False)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(EndpointRefused, match="not a public address"):
        check_endpoint(f"https://{host}/cases", rules)


def test_a_public_address_passes_and_development_allows_loopback():
    check_endpoint("https://8.8.8.8/cases", EndpointRules(allowed_hosts=("8.8.8.8",), allow_private=False))
    check_endpoint("http://127.0.0.1:5055/cases", DEVELOPMENT)


def test_the_headers_verify_with_either_live_secret_and_the_id_is_stable():
    old, new = new_signing_secret(), new_signing_secret()
    request = WebhookRequest(url="https://x", body=b'{"type":"case.created"}', secrets=[new, old], idempotency_key="k")
    at = datetime.now(UTC)
    headers = sign(request, webhook_id("collection.case_created:case_1"), at)
    assert headers["webhook-id"] == webhook_id("collection.case_created:case_1") != webhook_id("other")
    assert "case_1" not in headers["webhook-id"] and headers["Idempotency-Key"] == "k"
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, headers) == {"type": "case.created"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(request.body, headers)


def test_a_partners_own_secret_must_be_long_enough():
    check_secret(new_signing_secret())
    with pytest.raises(InvalidData):
        check_secret("whsec_" + "A" * (MIN_SECRET_BYTES // 2))
    with pytest.raises(InvalidData):
        check_secret("whsec_not*base64")


def test_retry_after_reads_seconds_and_dates_within_a_cap():
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert retry_after("120", now) == timedelta(seconds=120)
    assert retry_after("Tue, 01 Dec 2026 12:30:00 GMT", now) == timedelta(minutes=30)
    assert retry_after("999999", now) == timedelta(hours=6)
    assert retry_after("soon", now) is None and retry_after(None, now) is None
