"""The embedded default under concurrency: a real threaded server (werkzeug's, as `flask run` serves
`make demo`) on a SQLite file, 20 parallel clients each paying a bill with the simulator, posting an
invoice to the API (half of them the same invoice twice) and opening a link for the first time.

Not one 500, every answer the right one, and nothing lost or doubled. Before SQLite's transactions
took the write lock at their start (BEGIN IMMEDIATE), most of these requests failed with "database
is locked": in WAL a deferred transaction that has read cannot wait for the write lock.

This test makes its own SQLite file whatever TEST_DATABASE_URL says: it is about SQLite."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter

import pytest
import requests
from flask_migrate import upgrade
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app import create_app
from app.billing.models import Invoice, InvoiceEvent, InvoiceStatus
from app.creditors.services import create_api_key
from app.extensions import db
from app.links.services import get_signer, issue_link
from app.payments.models import Payment, PaymentAttempt
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.support.serving import serve_in_thread, stop_serving

CLIENTS = 20
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def sqlite_server(tmp_path):
    previous = os.environ.get("PORTAL_INSTANCE_PATH")
    os.environ["PORTAL_INSTANCE_PATH"] = str(tmp_path / "instance")
    try:
        app = create_app({
            "TESTING": True, "PORTAL_ENV": "testing", "SECRET_KEY": "concurrency-" + "s" * 40,
            "LINK_SIGNING_KEYS": ["concurrency-link-" + "k" * 40],
            "DATA_ENCRYPTION_KEYS": ["concurrency-data-" + "d" * 40],
            "SQLALCHEMY_DATABASE_URI": "sqlite:///" + str(tmp_path / "portal.db"),
            "RATELIMIT_STORAGE_URI": "memory://", "SERVER_NAME": None,
            "LINK_RATE_LIMIT": "10000 per minute", "PAY_RATE_LIMIT": "10000 per minute",
        })
    finally:
        if previous is None:
            os.environ.pop("PORTAL_INSTANCE_PATH", None)
        else:
            os.environ["PORTAL_INSTANCE_PATH"] = previous
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["PORTAL_BASE_URL"] = base = f"http://127.0.0.1:{server.server_port}"
    with app.app_context():
        upgrade()
        creditor = make_creditor("NO")
        key = create_api_key(creditor)
        invoices = [make_invoice(creditor) for _ in range(CLIENTS)]
        with app.test_request_context():
            signer = get_signer()
            tokens = [
                tuple(issue_link(invoice, channel="sms", ttl_days=30, signer=signer, base_url=base, actor="test").token
                      for _ in range(2))
                for invoice in invoices
            ]
        db.session.commit()
        ids = [invoice.id for invoice in invoices]
        db.session.remove()
    thread = serve_in_thread(server)
    try:
        yield app, base, key, list(zip(ids, tokens, strict=True))
    finally:
        stop_serving(server, thread)
        with app.app_context():
            db.engine.dispose()


def test_twenty_parallel_clients_on_sqlite_get_no_error(sqlite_server):
    app, base, key, bills = sqlite_server
    answers: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(2 * CLIENTS, timeout=60)

    def note(what: str, response: requests.Response, expected: tuple[int, ...]) -> bool:
        with lock:
            answers[(what, response.status_code)] += 1
            if response.status_code not in expected:
                failures.append(f"{what}: {response.status_code} {response.text[:200]}")
        return response.status_code in expected

    def customer(n: int, tokens: tuple[str, str]) -> None:
        paying = requests.Session()
        try:
            start.wait()
            # the first open of a link: records "link_opened" and shows the bill
            page = paying.get(f"{base}/l/{tokens[0]}", timeout=60)
            if not note("open", page, (200,)):
                return
            # an API post; two clients post each invoice (the second gets the first's answer)
            payload = invoice_payload("NOK", 2, number=f"API-{n // 2}")
            note("api", requests.post(f"{base}/api/v1/invoices", json=payload,
                                      headers={"Authorization": f"Bearer {key}"}, timeout=60), (200, 201))
            # pay with the simulator: start, the hosted page, succeed, back to the portal
            started = paying.post(f"{page.url}/pay", data={"csrf_token": CSRF.search(page.text).group(1),
                                                           "provider": "simulator"}, allow_redirects=False, timeout=60)
            if not note("pay", started, (303,)):
                return
            hosted = paying.get(started.headers["Location"], timeout=60)
            choice = {"csrf_token": CSRF.search(hosted.text).group(1), "outcome": "succeed"}
            chosen = paying.post(hosted.url, data=choice, allow_redirects=False, timeout=60)
            if not note("choose", chosen, (303,)):
                return
            back = paying.get(chosen.headers["Location"], headers={"Accept-Language": "en"}, timeout=60)
            if note("return", back, (200,)) and "received your payment" not in back.text:
                failures.append(f"the return page of client {n} does not say the payment was received")
        except Exception as exc:  # noqa: BLE001 - every failure is listed below
            with lock:
                failures.append(f"client {n}: {exc!r}")

    def other_browser(n: int, token: str) -> None:
        try:
            start.wait()
            note("other open", requests.get(f"{base}/l/{token}", timeout=60), (200,))
        except Exception as exc:  # noqa: BLE001
            with lock:
                failures.append(f"browser {n}: {exc!r}")

    threads = [threading.Thread(target=customer, args=(n, tokens)) for n, (_id, tokens) in enumerate(bills)]
    threads += [threading.Thread(target=other_browser, args=(n, tokens[1])) for n, (_id, tokens) in enumerate(bills)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert not any(code >= 500 for _what, code in answers), answers
    assert answers[("pay", 303)] == answers[("choose", 303)] == answers[("return", 200)] == CLIENTS
    assert answers[("api", 201)] == CLIENTS // 2 and answers[("api", 200)] == CLIENTS // 2

    with app.app_context():
        ids = [invoice_id for invoice_id, _tokens in bills]
        statuses = db.session.execute(
            select(Invoice.status, Invoice.amount_paid, Invoice.total).where(Invoice.id.in_(ids))).all()
        assert all(status == InvoiceStatus.PAID and paid == total for status, paid, total in statuses), statuses
        payments = db.session.scalars(select(Payment.invoice_id).where(Payment.invoice_id.in_(ids))).all()
        assert sorted(payments) == sorted(ids)  # one payment per bill, none doubled
        attempts = db.session.scalar(select(func.count(PaymentAttempt.id)).where(PaymentAttempt.invoice_id.in_(ids)))
        assert attempts == CLIENTS
        opened = db.session.scalars(select(InvoiceEvent.invoice_id).where(InvoiceEvent.kind == "link_opened")).all()
        assert sorted(opened) == sorted(ids * 2)  # each link's first open recorded once
        numbers = db.session.scalars(select(Invoice.number).where(Invoice.number.like("API-%"))).all()
        assert sorted(numbers) == sorted(f"API-{n}" for n in range(CLIENTS // 2))

