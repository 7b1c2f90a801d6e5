"""End-to-end fixtures: a live server on 127.0.0.1 with the demo data committed to its own
SQLite file, and Debian's Chromium driven by Playwright.

These fixtures do not use the `app`/`session` fixtures of tests/conftest.py: those roll every
test back, while a server in another thread must see committed data."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from flask_migrate import upgrade
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from app import create_app
from app.billing.models import Invoice
from app.billing.transfer import transfer_details
from app.creditors.models import Creditor
from app.demo import load_demo
from app.extensions import db
from app.i18n import FORMAT_LOCALES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"

VIEWPORTS = {
    "mobile": {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}

# Collects Content-Security-Policy violations as the browser reports them to the page.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
});
"""


@dataclass(frozen=True)
class Transfer:
    account: str
    reference: str


@dataclass(frozen=True)
class DemoBill:
    """One demo link and what its bill page must show, read from the database after seeding."""

    url: str
    locale: str
    creditor_slug: str
    creditor_name: str
    number: str
    balance: int
    currency: str
    due_date: date
    lines: tuple[str, ...] = field(repr=False)  # every line's description, in order
    fee_lines: tuple[str, ...] = field(repr=False)  # the fees and interest among them
    transfer: Transfer | None

    @property
    def name(self) -> str:
        return f"{self.creditor_slug}-{self.number}".replace("/", "-")


@dataclass
class LiveServer:
    url: str
    bills: list[DemoBill]
    app: Flask | None = None  # for tests that add data of their own (committed, in the server's database)

    def bill_for(self, locale: str) -> DemoBill:
        """The first demo bill shown in `locale` (en: Irish, nb: Norwegian, de: German creditor)."""
        for bill in self.bills:
            if bill.locale == locale:
                return bill
        raise LookupError(f"the demo data has no link in {locale!r}")


@pytest.fixture(scope="session", autouse=True)
def _chromium_installed() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM} "
                    "(Debian package 'chromium'; `make test` installs it)")


def _create_live_app(tmp: Path) -> Flask:
    """An app of its own: a fresh SQLite file and instance folder, a link rate limit tests never reach."""
    previous = os.environ.get("PORTAL_INSTANCE_PATH")
    os.environ["PORTAL_INSTANCE_PATH"] = str(tmp / "instance")
    try:
        return create_app(
            {
                "TESTING": True,
                "PORTAL_ENV": "testing",
                "SECRET_KEY": "e2e-secret-" + "s" * 40,
                "LINK_SIGNING_KEYS": ["e2e-link-key-" + "k" * 40],
                "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp / "e2e.db"),
                # The limiter is one shared object: raise the limit rather than disable it,
                # which would flip it off for every other app in this process.
                "LINK_RATE_LIMIT": "10000 per minute",
                "SELF_SERVICE_RATE_LIMIT": "10000 per minute",
                "RATELIMIT_STORAGE_URI": "memory://",
                "SERVER_NAME": None,
            }
        )
    finally:
        if previous is None:
            os.environ.pop("PORTAL_INSTANCE_PATH", None)
        else:
            os.environ["PORTAL_INSTANCE_PATH"] = previous


def _demo_bill(link) -> DemoBill:
    invoice = db.session.scalar(
        select(Invoice)
        .join(Creditor, Invoice.creditor_id == Creditor.id)
        .where(Creditor.slug == link.creditor_slug, Invoice.number == link.invoice_number)
    )
    assert invoice is not None, f"demo link for unknown invoice {link.creditor_slug}/{link.invoice_number}"
    transfer = transfer_details(invoice.creditor, invoice)
    return DemoBill(
        url=link.url,
        locale=link.locale,
        creditor_slug=link.creditor_slug,
        creditor_name=invoice.creditor.name,
        number=invoice.number,
        balance=invoice.balance,
        currency=invoice.currency,
        due_date=invoice.due_date,
        lines=tuple(line.description for line in invoice.lines),
        fee_lines=tuple(line.description for line in invoice.lines if line.is_fee),
        transfer=Transfer(transfer.account, transfer.reference) if transfer else None,
    )


def _seed(app: Flask) -> list[DemoBill]:
    """Run the migrations and load the demo data, committed, as `flask db upgrade` and `flask demo` would."""
    with app.app_context():
        upgrade()
        links = load_demo()
        db.session.commit()
        bills = [_demo_bill(link) for link in links]
        db.session.remove()
    return bills


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("e2e")
    app = _create_live_app(tmp)
    # Bind to port 0 first, so the port is really free, then tell the app its own address
    # before any link is issued.
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["PORTAL_BASE_URL"] = url
    bills = _seed(app)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=url, bills=bills, app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageWatch:
    """What a page did: its requests, responses, console errors and uncaught script errors."""

    requests: list = field(default_factory=list)
    responses: list = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_request(self, request) -> None:
        self.requests.append(request)

    def _on_response(self, response) -> None:
        self.responses.append(response)

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_page_error(self, error) -> None:
        self.page_errors.append(str(error))


def new_page(
    browser: Browser, viewport: str = "desktop", *, javascript: bool = True, language: str = "en",
) -> tuple[Page, PageWatch]:
    """A page in a fresh browser context (so a fresh session) whose Accept-Language is `language`,
    with a PageWatch attached. The caller closes page.context."""
    context = browser.new_context(
        **VIEWPORTS[viewport], java_script_enabled=javascript, accept_downloads=True,
        locale=FORMAT_LOCALES[language].replace("_", "-"),
    )
    if javascript:
        context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch = PageWatch()
    watch.attach(page)
    return page, watch


@pytest.fixture
def open_page(browser) -> Iterator[Callable]:
    """open_page(viewport, javascript=, language=) -> (page, watch), closed after the test."""
    contexts = []

    def _open(viewport: str = "desktop", *, javascript: bool = True, language: str = "en"):
        page, watch = new_page(browser, viewport, javascript=javascript, language=language)
        contexts.append(page.context)
        return page, watch

    yield _open
    for context in contexts:
        context.close()


@dataclass
class LoadedBill:
    """A demo bill opened at phone width with JavaScript on, and what loading it did, copied
    when the load ended: scripts the tests inject later (axe) cannot change these figures."""

    bill: DemoBill
    page: Page
    landing_status: int
    request_urls: list[str]
    console_errors: list[str]
    page_errors: list[str]
    csp_violations: list[str]
    copy_buttons: int  # added by portal.js: it ran under the page's CSP
    text_bytes: dict[str, int]  # resource type (document, stylesheet, script) -> bytes received


TEXT_RESOURCES = ("document", "stylesheet", "script")


def _load_bill(browser: Browser, bill: DemoBill) -> LoadedBill:
    page, watch = new_page(browser, "mobile", language=bill.locale)
    response = page.goto(bill.url)  # waits for "load": every resource the HTML refers to
    text_bytes = dict.fromkeys(TEXT_RESOURCES, 0)
    for r in watch.responses:
        if r.request.resource_type in text_bytes and r.status == 200:
            text_bytes[r.request.resource_type] += len(r.body())
    return LoadedBill(
        bill=bill,
        page=page,
        landing_status=response.status if response else 0,
        request_urls=[r.url for r in watch.requests],
        console_errors=list(watch.console_errors),
        page_errors=list(watch.page_errors),
        csp_violations=page.evaluate("window.__cspViolations"),
        copy_buttons=page.locator("button.copy").count(),
        text_bytes=text_bytes,
    )


@pytest.fixture(scope="session")
def demo_pages(browser, live_server) -> Iterator[list[LoadedBill]]:
    """Every demo bill, each opened once through its link at 360 px with JavaScript on."""
    loaded = [_load_bill(browser, bill) for bill in live_server.bills]
    yield loaded
    for item in loaded:
        item.page.context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
