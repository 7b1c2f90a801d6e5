"""The portal as production runs it, in Chromium over HTTPS: `PORTAL_ENV=production` under gunicorn
with a certificate from a test CA (trustme) that the browser trusts (an NSS database of its own),
PostgreSQL, Redis for the rate limits, Stripe's SDK against localstripe (production refuses the
payment simulator). A customer opens a link, pays by card and writes to support; an agent signs in
with a password and a TOTP code and answers; the customer reads the answer. Every form post passes
Flask-WTF's token and our origin check, with the Origin and Referer the browser sends under our
referrer policy (see docs/decisions.md, "Referrer policy and the CSRF origin check").

PostgreSQL: PRODUCTION_TEST_DATABASE_URL, else TEST_DATABASE_URL (`make test` passes the CI
database to the SQLite pass as PRODUCTION_TEST_DATABASE_URL); the test works in a schema of its own
(`e2e_production`), made and dropped here. Without either variable it is skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
import trustme
from playwright.sync_api import Browser, expect
from sqlalchemy import make_url, select, text

from app import create_app
from app.backoffice.services import create_agent
from app.billing.models import Invoice, InvoiceStatus
from app.config import normalise_database_url
from app.extensions import db
from app.links.services import get_signer, issue_link
from app.payments.models import CreditorGateway
from app.support.models import SupportRequest
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, CSP_LISTENER
from tests.e2e.flows import checked
from tests.e2e.test_payments import STRIPE, fill_card
from tests.factories import make_creditor, make_invoice
from tests.support import keys
from tests.support.gunicorn import Gunicorn
from tests.support.localstripe_server import LocalStripe

HOST = "portal.test"  # Chromium maps it to 127.0.0.1 (--host-resolver-rules); the certificate names it
SCHEMA = "e2e_production"
REDIS = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery staple"
AGENT = "agent@portal.test"
QUESTION = "Is the payment I just made enough?"
ANSWER = "Yes: the bill is paid in full. Thank you!"


def database_url() -> str:
    url = os.environ.get("PRODUCTION_TEST_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("the production-shape HTTPS test needs PostgreSQL: set TEST_DATABASE_URL (or "
                    "PRODUCTION_TEST_DATABASE_URL), e.g. postgresql://postgres@127.0.0.1:5432/test; `make test` does")
    if not url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        pytest.fail(f"the production-shape HTTPS test needs a PostgreSQL URL, not {make_url(url).drivername}")
    # every connection (this test's, gunicorn's workers') works in the schema of its own
    url = make_url(normalise_database_url(url)).update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    return url.render_as_string(hide_password=False)


def redis_up() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"the production-shape HTTPS test needs Redis on 127.0.0.1:6379 ({error}); start it with "
                    "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no")


@dataclass
class Tls:
    ca_file: str
    cert_file: str
    key_file: str
    home: str  # HOME for Chromium: its NSS database trusts the test CA


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> Tls:
    """A test CA, a certificate for portal.test, and an NSS database (Chromium's on Linux, under
    $HOME/.pki/nssdb) in which the CA is a trusted root: the browser verifies the chain and the name
    as it would a real certificate (nothing ignored)."""
    if shutil.which("certutil") is None:
        pytest.fail("certutil is missing (Debian package libnss3-tools; `make test` installs it)")
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA(organization_name="Payment portal test CA")
    leaf = ca.issue_cert(HOST)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
    nss = folder / "home" / ".pki" / "nssdb"
    nss.mkdir(parents=True)
    for command in (["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"],
                    ["certutil", "-A", "-d", f"sql:{nss}", "-n", "portal test CA", "-t", "C,,", "-i",
                     str(folder / "ca.pem")]):
        subprocess.run(command, check=True, capture_output=True)
    return Tls(str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem"), str(folder / "home"))


@pytest.fixture(scope="module")
def tls_browser(browser: Browser, tls: Tls) -> Iterator[Browser]:
    """Chromium of the same Playwright as the other e2e tests, with the test CA trusted and
    portal.test resolving to 127.0.0.1."""
    chromium = browser.browser_type.launch(
        executable_path=str(CHROMIUM), headless=True, env={**os.environ, "HOME": tls.home},
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {HOST} 127.0.0.1"],
    )
    yield chromium
    chromium.close()


@dataclass
class Seeded:
    link: str
    invoice_id: int
    totp_secret: str


def seed_app(url: str, base_url: str, instance: Path):
    """An app on the same database and keys as the server, to migrate and seed it and read it back."""
    previous = os.environ.get("PORTAL_INSTANCE_PATH")
    os.environ["PORTAL_INSTANCE_PATH"] = str(instance)
    try:
        return create_app({
            "TESTING": True, "PORTAL_ENV": "testing", "SQLALCHEMY_DATABASE_URI": url, "PORTAL_BASE_URL": base_url,
            "SECRET_KEY": keys.SECRET_KEY, "LINK_SIGNING_KEYS": [keys.LINK_SIGNING_KEY],
            "DATA_ENCRYPTION_KEYS": [keys.DATA_ENCRYPTION_KEY], "RATELIMIT_STORAGE_URI": "memory://",
            "SERVER_NAME": None,
        })
    finally:
        if previous is None:
            os.environ.pop("PORTAL_INSTANCE_PATH", None)
        else:
            os.environ["PORTAL_INSTANCE_PATH"] = previous


def seed(app, base_url: str) -> tuple[Seeded, str]:
    """A fresh schema, migrated; a creditor that takes cards through Stripe, its bill with a link,
    and an agent with a second factor set up."""
    from flask_migrate import upgrade

    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        upgrade()
    with app.test_request_context():
        creditor = make_creditor("NO", default_locale="en")
        db.session.add(CreditorGateway(creditor_id=creditor.id, provider="stripe", methods=["card"]))
        invoice = make_invoice(creditor, lines=2)
        link = issue_link(invoice, signer=get_signer(), base_url=base_url, actor="test", channel="sms", ttl_days=30)
        agent = create_agent(AGENT, "Ola Nordmann", PASSWORD, creditor, "agent")
        agent.totp_secret = pyotp.random_base32()
        db.session.commit()
        seeded = Seeded(link.url, invoice.id, agent.totp_secret), creditor.slug
        db.session.remove()
    return seeded


def drop_schema(app) -> None:
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        db.engine.dispose()


@dataclass
class Production:
    url: str
    server: Gunicorn
    app: object  # the seeding app: reads the database back
    seeded: Seeded
    access_log: Path


@pytest.fixture(scope="module")
def production(tls, tmp_path_factory) -> Iterator[Production]:
    url = database_url()
    redis_up()
    folder = tmp_path_factory.mktemp("production")
    env: dict[str, str] = {
        "PORTAL_ENV": "production",
        "SECRET_KEY": keys.SECRET_KEY, "LINK_SIGNING_KEYS": keys.LINK_SIGNING_KEY,
        "DATA_ENCRYPTION_KEYS": keys.DATA_ENCRYPTION_KEY,
        "DATABASE_URL": url, "RATELIMIT_STORAGE_URI": REDIS,
        "PORTAL_INSTANCE_PATH": str(folder), "ATTACHMENT_DIR": str(folder / "attachments"),
        # real limits, counted in Redis; raised above what this test does, so that other runs on this
        # machine counting 127.0.0.1 at the same time cannot push it over
        "LINK_RATE_LIMIT": "600 per minute", "PAY_RATE_LIMIT": "600 per minute",
        "SELF_SERVICE_RATE_LIMIT": "600 per minute", "BACKOFFICE_SIGN_IN_RATE_LIMIT": "600 per minute",
        "LOG_LEVEL": "INFO",
    }
    access_log = folder / "access.log"
    server = Gunicorn(env, access_log=access_log, tls=(tls.cert_file, tls.key_file), server_name=HOST,
                      ca_file=tls.ca_file)
    env["PORTAL_BASE_URL"] = server.url
    app = seed_app(url, server.url, folder)
    try:
        seeded, slug = seed(app, server.url)
        with LocalStripe() as stripe:
            gateways = folder / "payment_gateways.json"
            gateways.write_text(json.dumps({slug: {"stripe": {**STRIPE, "api_base": stripe.api_base}}}))
            gateways.chmod(0o600)
            env["PAYMENT_GATEWAYS_FILE"] = str(gateways)
            with server:
                yield Production(server.url, server, app, seeded, access_log)
    finally:
        drop_schema(app)


def invoice_state(production: Production) -> tuple[str, int]:
    with production.app.app_context():
        invoice = db.session.get(Invoice, production.seeded.invoice_id)
        state = invoice.status, invoice.balance
        db.session.remove()
    return state


def rate_limit_counters() -> list[str]:
    import redis

    return [key.decode() for key in redis.Redis.from_url(REDIS).scan_iter(match="*open_link*127.0.0.1*")]


def test_a_customer_pays_and_asks_and_an_agent_answers_over_https(production, tls_browser):
    origin = production.url
    context = tls_browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    context.add_init_script(CSP_LISTENER)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        posts, link_policies, errors = [], [], []
        page.on("request", lambda r: posts.append((r.url, r.all_headers())) if r.method == "POST" else None)
        page.on("response", lambda r: link_policies.append(r.headers.get("referrer-policy"))
                if "/l/" in r.url else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # the customer opens the link: a 303 without a referrer to the bill page, over HTTPS
        response = page.goto(production.seeded.link)
        assert response.status == 200 and page.url.startswith(f"{origin}/b/")
        assert link_policies == ["no-referrer"]
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["strict-transport-security"].startswith("max-age=")
        cookie = next(c for c in context.cookies() if c["name"] == "portal_session")
        assert cookie["secure"] and cookie["httpOnly"]
        bill_url = page.url
        checked(page, "the bill page in production over HTTPS")

        # pays by card: our pay form (CSRF), then Stripe's Payment Element on our pay step
        page.get_by_role("button", name=re.compile(r"^Pay ")).click()
        expect(page.locator("#payment-element input")).to_have_count(5)
        assert "/checkout/" in page.url
        fill_card(page, "4242424242424242")
        page.locator("#checkout-submit").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("received your payment")
        assert invoice_state(production) == (InvoiceStatus.PAID, 0)

        # writes to support
        page.goto(f"{bill_url}/contact")
        page.locator("#topic-1").check()
        page.fill("#message", QUESTION)
        page.get_by_role("button", name="Send").click()
        expect(page.locator("h1")).to_have_text("Thank you, we have your message")
        checked(page, "the contact confirmation in production over HTTPS")
        with production.app.app_context():
            reference = db.session.scalar(select(SupportRequest.reference)
                                          .where(SupportRequest.invoice_id == production.seeded.invoice_id))
            db.session.remove()

        # the agent: password, then the code from the authenticator app, then the answer
        agent = context.browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
        try:
            desk = agent.new_page()
            desk.set_default_timeout(15_000)
            desk.on("request", lambda r: posts.append((r.url, r.all_headers())) if r.method == "POST" else None)
            desk.goto(f"{origin}/backoffice/")
            expect(desk.locator("h1")).to_have_text("Sign in")
            desk.fill("#email", AGENT)
            desk.fill("#password", PASSWORD)
            desk.get_by_role("button", name="Continue").click()
            expect(desk.locator("h1")).to_have_text("Enter the code from your authenticator app")
            desk.fill("#code", pyotp.TOTP(production.seeded.totp_secret).now())
            desk.get_by_role("button", name="Sign in").click()
            expect(desk.locator("h1")).to_have_text("Inbox")
            desk.get_by_role("link", name=reference).click()
            desk.fill("#message", ANSWER)
            desk.get_by_role("button", name="Send the answer").click()
            expect(desk.get_by_text("Your answer is sent.")).to_be_visible()
            checked(desk, "an answered message in the back office, production over HTTPS")
        finally:
            agent.close()

        # the customer reads the answer on the bill page
        page.goto(bill_url)
        expect(page.get_by_text(ANSWER)).to_be_visible()
        assert not errors and not page.evaluate("window.__cspViolations"), errors
    finally:
        context.close()

    # every form was posted with our Origin and a same-origin Referer, and none was refused
    ours = [(url, headers) for url, headers in posts if url.startswith(origin)]
    assert len(ours) >= 5, [url for url, _ in posts]  # pay, contact, password, code, answer
    for url, headers in ours:
        assert headers.get("origin") == origin, (url, headers.get("origin"))
        assert headers.get("referer", "").startswith(f"{origin}/"), (url, headers.get("referer"))
    log = production.access_log.read_text()
    assert not re.search(r'"POST [^"]*" 400 ', log), log
    # the link's token is in no log line, and the rate limits were counted in Redis
    token = production.seeded.link.rsplit("/l/", 1)[1]
    assert "/l/[redacted]" in log and token not in log and token not in production.server.output()
    assert rate_limit_counters()
