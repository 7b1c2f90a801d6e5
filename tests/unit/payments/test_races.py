"""Exactly once under races, on PostgreSQL: real threads, each with its own app context, session and
connection, in real transactions on committed data (removed again at the end of each test).

DESIGN.md: concurrency tests run on PostgreSQL. SQLite serialises every writer on one file lock,
so a race there proves nothing; these tests skip on it (CI sets TEST_DATABASE_URL).

The pool of the session-wide test app holds 15 connections; a race of 50 needs 50 at once, so
these tests run on a second app over the same database with a pool big enough for every thread.
"""

from __future__ import annotations

import json
import queue
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import delete, func, select

from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceStatus
from app.creditors.models import Creditor
from app.extensions import db
from app.outbox.models import OutboxMessage
from app.payments.gateways.base import Checkout, CheckoutRequest, Gateway, PaymentStatus
from app.payments.gateways.simulator import SIGNATURE_HEADER, sign
from app.payments.models import Payment, PaymentAttempt, SimulatorRecord, WebhookEvent
from app.payments.providers import simulator_for, simulator_secret
from app.payments.services import apply_status, new_attempt, start_payment
from tests.factories import make_creditor, make_invoice
from tests.support.races import racing_app

THREADS = 50
WORKERS = 8


@pytest.fixture(scope="module")
def race_app(app):
    """The test app's settings and database (migrated by `app`), with a pool for 50 parallel connections."""
    yield from racing_app(app, THREADS + 5)


@contextmanager
def committed(race_app, kind: str = "NO", **settings) -> Iterator[int]:
    """A committed creditor (its id) whose invoices, payments, attempts and events are deleted afterwards."""
    with race_app.app_context():
        creditor = make_creditor(kind)
        for name, value in settings.items():
            setattr(creditor, name, value)
        db.session.commit()
        creditor_id = creditor.id
    try:
        yield creditor_id
    finally:
        purge(race_app, creditor_id)


def purge(race_app, creditor_id: int) -> None:
    with race_app.app_context(), db.engine.begin() as conn:
        invoices = select(Invoice.id).where(Invoice.creditor_id == creditor_id)
        refs = select(PaymentAttempt.provider_ref).where(PaymentAttempt.invoice_id.in_(invoices))
        conn.execute(delete(WebhookEvent).where(WebhookEvent.provider_ref.in_(refs)))
        conn.execute(delete(SimulatorRecord).where(SimulatorRecord.ref.in_(refs)))
        conn.execute(delete(Payment).where(Payment.invoice_id.in_(invoices)))
        conn.execute(delete(Invoice).where(Invoice.creditor_id == creditor_id))  # lines, events, attempts, links
        conn.execute(delete(Customer).where(Customer.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def race(jobs: list[Callable[[], object]], timeout: float = 60) -> tuple[list[object], list[str]]:
    """Run each job in its own thread, all released at once by a barrier. Their results and errors."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)
    errors: list[str] = []

    def run(i: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
            errors.append(f"job {i}: {exc!r}"[:500])

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.1))
    assert not any(thread.is_alive() for thread in threads), "a racing thread did not finish"
    return results, errors


def receipts(creditor_id: int) -> int:
    """Receipt e-mails waiting in the outbox for the creditor's customers (one per payment, never two)."""
    return db.session.scalar(select(func.count(OutboxMessage.id)).where(
        OutboxMessage.creditor_id == creditor_id, OutboxMessage.kind == "payment_receipt"))


def notification(event_id: str, event_type: str, ref: str, status: str | None, amount: int, currency: str) -> bytes:
    """A simulator notification body; a status we do not know ("note") makes a type we only store."""
    return json.dumps({
        "id": event_id, "type": event_type, "created": int(time.time()),
        "data": {"ref": ref, "status": status or "note", "amount": amount, "currency": currency, "method": "card"},
    }, separators=(",", ":")).encode()


def post_signed(client, slug: str, secret: str, body: bytes):
    """POST the body to the creditor's simulator webhook, signed now (a re-sent event gets a fresh signature)."""
    return client.post(f"/webhooks/simulator/{slug}", data=body,
                       headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)})


def creditor_keys(race_app, creditor_id: int) -> tuple[str, str]:
    with race_app.app_context():
        creditor = db.session.get(Creditor, creditor_id)
        return creditor.slug, simulator_secret(creditor)


# --- (a) fifty deliveries of one payment ----------------------------------------------------------------


def test_fifty_parallel_deliveries_of_one_payment_settle_it_once(race_app):
    """Webhooks (one event id re-sent, and other event ids for the same payment) and return pages
    (the status asked from the provider), reloaded and re-sent, all at once: one payment."""
    with committed(race_app, "NO") as creditor_id:
        slug, secret = creditor_keys(race_app, creditor_id)
        with race_app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            invoice = make_invoice(creditor, lines=2)
            gateway = simulator_for(creditor)
            attempt = start_payment(invoice, gateway, amount=invoice.balance, locale="en", methods=("card",),
                                    return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                    cancel_url="https://pay.example.test/b")
            # two other tabs still open: a smaller amount here, another provider there
            others = [new_attempt(invoice, "simulator", invoice.balance - 1000),
                      new_attempt(invoice, "stripe", invoice.balance)]
            for other in others:
                other.provider_ref = f"race_{secrets.token_hex(8)}"
            # the customer paid there
            gateway.store.update(attempt.provider_ref, status=PaymentStatus.SUCCEEDED, method="card")
            db.session.commit()
            invoice_id, total, ref, attempt_id = invoice.id, invoice.total, attempt.provider_ref, attempt.id
            other_ids = [other.id for other in others]

        run_id = secrets.token_hex(4)
        same = notification(f"evt_same_{run_id}", "payment.succeeded", ref, PaymentStatus.SUCCEEDED, total, "NOK")

        def webhook(body: bytes) -> Callable[[], object]:
            def deliver():
                answer = post_signed(race_app.test_client(), slug, secret, body)
                assert answer.status_code == 200, answer.text
                return answer.json["outcomes"]
            return deliver

        def return_page():
            """What GET /b/<id>/paid/<ref> does: ask the provider, apply what it says, commit."""
            with race_app.app_context():
                try:
                    attempt = db.session.get(PaymentAttempt, attempt_id)
                    if attempt.status not in PaymentStatus.FINAL:
                        creditor = db.session.get(Creditor, creditor_id)
                        apply_status(attempt, simulator_for(creditor).fetch_status(ref), actor="customer")
                        db.session.commit()
                    return ["return_page"]
                finally:
                    db.session.remove()

        jobs: list[Callable[[], object]] = []
        jobs += [webhook(same) for _ in range(20)]  # one event, delivered and re-sent
        jobs += [webhook(notification(f"evt_{i}_{run_id}", kind, ref, PaymentStatus.SUCCEEDED, total, "NOK"))
                 for i, kind in enumerate(["payment.succeeded", "charge.succeeded", "payment.updated"] * 5)]
        jobs += [return_page for _ in range(15)]  # the return page, and the customer reloading it
        random.Random(50).shuffle(jobs)
        assert len(jobs) == THREADS

        results, errors = race(jobs)

        assert errors == []
        webhook_outcomes = Counter(o for result in results for o in result if o != "return_page")
        assert webhook_outcomes["duplicate"] == 19  # the re-sent event, whatever order the copies came in
        assert webhook_outcomes["applied"] + webhook_outcomes["unchanged"] == 16
        assert webhook_outcomes["applied"] <= 1  # none if a return page came first: the attempt is locked, re-read
        with race_app.app_context():
            invoice = db.session.get(Invoice, invoice_id)
            payments = db.session.scalars(select(Payment).where(Payment.invoice_id == invoice_id)).all()
            assert [(p.amount, p.attempt_id, p.refund_due) for p in payments] == [(total, attempt_id, 0)]
            assert (invoice.status, invoice.balance, invoice.amount_paid) == (InvoiceStatus.PAID, 0, total)
            kinds = Counter(db.session.scalars(select(InvoiceEvent.kind).where(InvoiceEvent.invoice_id == invoice_id)))
            assert kinds["payment_recorded"] == 1 and kinds["payment_to_refund"] == 0 and kinds["refund_due"] == 0
            assert db.session.get(PaymentAttempt, attempt_id).status == PaymentStatus.SUCCEEDED
            assert [db.session.get(PaymentAttempt, i).status for i in other_ids] == [PaymentStatus.CANCELLED] * 2
            stored = db.session.scalars(select(WebhookEvent.outcome).where(WebhookEvent.provider_ref == ref)).all()
            assert len(stored) == 16 and set(stored) <= {"applied", "unchanged"} and stored.count("applied") <= 1
            assert receipts(creditor_id) == 1  # the receipt e-mail goes out once, with the one payment


def test_a_stale_return_page_never_moves_a_succeeded_attempt_back(race_app):
    """An interleaving parallel deliveries can hit, made deterministic: the return page reads the attempt
    and asks the provider ("requires_action": the customer is on the 3-D Secure page); the customer
    completes and the webhook's "succeeded" commits; then the return page applies what it got. Seen
    in about 1 of 5 runs of 10 webhooks racing 30 return pages before it was written this way."""
    with committed(race_app, "NO") as creditor_id:
        slug, secret = creditor_keys(race_app, creditor_id)
        with race_app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            invoice = make_invoice(creditor)
            gateway = simulator_for(creditor)
            attempt = start_payment(invoice, gateway, amount=invoice.balance, locale="en", methods=("card",),
                                    return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                    cancel_url="https://pay.example.test/b")
            gateway.store.update(attempt.provider_ref, status=PaymentStatus.REQUIRES_ACTION, method="card")
            db.session.commit()
            invoice_id, total, ref, attempt_id = invoice.id, invoice.total, attempt.provider_ref, attempt.id
        body = notification(f"evt_stale_{secrets.token_hex(4)}", "payment.succeeded", ref, PaymentStatus.SUCCEEDED,
                            total, "NOK")

        with race_app.app_context():
            try:
                attempt = db.session.get(PaymentAttempt, attempt_id)
                said = simulator_for(db.session.get(Creditor, creditor_id)).fetch_status(ref)
                assert (attempt.status, said.status) == (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION)
                # the webhook, in its own thread, app context and transaction, commits meanwhile
                (outcomes,), errors = race([lambda: post_signed(race_app.test_client(), slug, secret, body).json])
                assert errors == [] and outcomes["outcomes"] == ["applied"]
                apply_status(attempt, said, actor="customer")
                db.session.commit()
            finally:
                db.session.remove()

        with race_app.app_context():
            assert db.session.get(PaymentAttempt, attempt_id).status == PaymentStatus.SUCCEEDED
            assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID


# --- (b) a thousand events, duplicated and shuffled ------------------------------------------------------

# What happens to each payment, as the provider would notify it, in order. None: a type we only store.
SCENARIOS: dict[str, list[tuple[str, str | None]]] = {
    "ok": [("payment.requires_action", PaymentStatus.REQUIRES_ACTION), ("payment.processing", PaymentStatus.PROCESSING),
           ("payment.succeeded", PaymentStatus.SUCCEEDED), ("charge.succeeded", PaymentStatus.SUCCEEDED),
           ("payment.updated", PaymentStatus.SUCCEEDED)],
    "fail_then_ok": [("payment.failed", PaymentStatus.FAILED), ("charge.failed", PaymentStatus.FAILED),
                     ("payment.processing", PaymentStatus.PROCESSING), ("payment.succeeded", PaymentStatus.SUCCEEDED),
                     ("charge.succeeded", PaymentStatus.SUCCEEDED)],
    "ok_then_fail": [("payment.processing", PaymentStatus.PROCESSING), ("payment.succeeded", PaymentStatus.SUCCEEDED),
                     ("payment.failed", PaymentStatus.FAILED), ("charge.failed", PaymentStatus.FAILED),
                     ("payment.cancelled", PaymentStatus.CANCELLED)],
    "failed": [("payment.requires_action", PaymentStatus.REQUIRES_ACTION), ("payment.failed", PaymentStatus.FAILED),
               ("charge.failed", PaymentStatus.FAILED)],
    "open": [("payment.requires_action", PaymentStatus.REQUIRES_ACTION),
             ("payment.processing", PaymentStatus.PROCESSING)],
    "abandoned": [("payment.requires_action", PaymentStatus.REQUIRES_ACTION),
                  ("payment.cancelled", PaymentStatus.CANCELLED)],
}
EVENTS_PER_PAYMENT = 12  # the scenario's events, then types we only store ("payment.note")
# Invoices by what happens to them: their payments (scenario, share of the total; None: what the
# others leave). Chosen so the final ledger does not depend on the order of arrival: no overpayment,
# and a payment that only fails never sits on an invoice that gets paid in full.
PLANS: list[list[tuple[str, float | None]]] = (
    [[("ok", 0.3), ("fail_then_ok", 0.3), ("ok_then_fail", None)]] * 4  # paid in three parts
    + [[("ok", 1.0), ("open", 0.5), ("abandoned", 0.8)]] * 2  # paid at once; the other tabs are cancelled
    + [[("ok", 0.4), ("failed", 0.6), ("open", 0.2)]] * 3  # partly paid
    + [[("failed", 1.0), ("open", 0.5), ("abandoned", 0.9)]]  # nothing paid
)


@dataclass(frozen=True)
class Planned:
    invoice_id: int
    attempt_id: int
    ref: str
    amount: int
    scenario: str


@dataclass(frozen=True)
class Sent:
    event_id: str
    event_type: str
    ref: str
    status: str | None
    amount: int


def expected_ledger(totals: dict[int, int], planned: list[Planned], unique: list[Sent]) -> dict:
    """The ledger the unique events give applied one by one, in order, by the rules of
    `PaymentStatus.moves_forward` and settlement: success settles once; paid in full cancels the rest."""
    status = {p.ref: PaymentStatus.PENDING for p in planned}
    by_ref = {p.ref: p for p in planned}
    paid = dict.fromkeys(totals, 0)
    payments: dict[int, list[int]] = {invoice_id: [] for invoice_id in totals}
    for sent in unique:
        if sent.status is None or not PaymentStatus.moves_forward(status[sent.ref], sent.status):
            continue
        status[sent.ref] = sent.status
        if sent.status == PaymentStatus.SUCCEEDED:
            invoice_id = by_ref[sent.ref].invoice_id
            paid[invoice_id] += sent.amount
            payments[invoice_id].append(sent.amount)
            if paid[invoice_id] >= totals[invoice_id]:
                for other in planned:
                    if other.invoice_id == invoice_id and status[other.ref] not in PaymentStatus.FINAL:
                        status[other.ref] = PaymentStatus.CANCELLED

    def invoice_status(invoice_id: int) -> str:
        if paid[invoice_id] >= totals[invoice_id]:
            return InvoiceStatus.PAID
        return InvoiceStatus.PARTIALLY_PAID if paid[invoice_id] else InvoiceStatus.OPEN

    return {
        "invoices": {i: (invoice_status(i), paid[i], totals[i] - paid[i], sorted(payments[i])) for i in totals},
        "attempts": {p.attempt_id: status[p.ref] for p in planned},
    }


def actual_ledger(race_app, totals: dict[int, int], planned: list[Planned]) -> dict:
    with race_app.app_context():
        invoices = {}
        for invoice_id in totals:
            invoice = db.session.get(Invoice, invoice_id)
            amounts = db.session.scalars(select(Payment.amount).where(Payment.invoice_id == invoice_id)).all()
            invoices[invoice_id] = (invoice.status, invoice.amount_paid, invoice.balance, sorted(amounts))
        attempts = {p.attempt_id: db.session.get(PaymentAttempt, p.attempt_id).status for p in planned}
        return {"invoices": invoices, "attempts": attempts}


def deliver_in_parallel(
    race_app, slug: str, secret: str, bodies: list[bytes], workers: int
) -> tuple[Counter, list[str]]:
    """`workers` threads take the bodies in order from one queue and POST each as its own request,
    as a provider's delivery fleet would. A 5xx is re-sent at the end of the queue, as providers retry."""
    work: queue.Queue[tuple[bytes, int]] = queue.Queue()
    for body in bodies:
        work.put((body, 0))
    outcomes: Counter = Counter()
    retried: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        client = race_app.test_client()
        while True:
            try:
                body, tries = work.get_nowait()
            except queue.Empty:
                return
            answer = post_signed(client, slug, secret, body)
            with lock:
                if answer.status_code == 200:
                    outcomes.update(answer.json["outcomes"])
                elif answer.status_code >= 500 and tries < 5:
                    retried.append(f"{answer.status_code} {answer.text[:200]}")
                    work.put((body, tries + 1))
                else:
                    outcomes[f"http {answer.status_code}"] += 1

    _results, errors = race([worker] * workers, timeout=300)
    assert errors == []
    return outcomes, retried


def test_a_thousand_duplicated_shuffled_events_give_the_ledger_of_the_unique_ones_in_order(race_app):
    with committed(race_app, "NO", allow_partial_payments=True, min_partial_payment=100) as creditor_id:
        slug, secret = creditor_keys(race_app, creditor_id)
        run_id = secrets.token_hex(4)
        totals: dict[int, int] = {}
        planned: list[Planned] = []
        with race_app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            for plan in PLANS:
                invoice = make_invoice(creditor, lines=2)
                totals[invoice.id] = invoice.total
                shares = [round(invoice.total * share) for _, share in plan if share is not None]
                for scenario, share in plan:
                    amount = round(invoice.total * share) if share is not None else invoice.total - sum(shares)
                    attempt = new_attempt(invoice, "simulator", amount)
                    attempt.provider_ref = f"race_{run_id}_{len(planned)}"
                    planned.append(Planned(invoice.id, attempt.id, attempt.provider_ref, amount, scenario))
            db.session.commit()
        assert len(planned) == 30

        unique: list[Sent] = []
        for p in planned:
            steps = SCENARIOS[p.scenario]
            steps = steps + [("payment.note", None)] * (EVENTS_PER_PAYMENT - len(steps))
            unique += [Sent(f"evt_{run_id}_{p.attempt_id}_{n}", kind, p.ref, status, p.amount)
                       for n, (kind, status) in enumerate(steps)]
        rng = random.Random(1000)
        copies = {sent.event_id: 2 for sent in unique}
        for sent in rng.sample(unique, 1000 - 2 * len(unique)):
            copies[sent.event_id] = 3
        stream = [sent for sent in unique for _ in range(copies[sent.event_id])]
        rng.shuffle(stream)
        assert len(stream) == 1000 and len(unique) == 360

        bodies = [notification(s.event_id, s.event_type, s.ref, s.status, s.amount, "NOK") for s in stream]
        outcomes, retried = deliver_in_parallel(race_app, slug, secret, bodies, WORKERS)

        assert retried == []
        assert outcomes["duplicate"] == 1000 - len(unique)
        assert sum(outcomes.values()) == 1000 and not any(o.startswith("http") for o in outcomes)
        assert outcomes["stored"] == sum(1 for s in unique if s.status is None)
        expected = expected_ledger(totals, planned, unique)
        assert actual_ledger(race_app, totals, planned) == expected
        # the plans are exercised
        assert [state for state, *_ in expected["invoices"].values()].count(InvoiceStatus.PAID) == 6
        with race_app.app_context():
            refs = [p.ref for p in planned]
            stored = db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.provider_ref.in_(refs)))
            recorded = db.session.scalar(select(func.count(InvoiceEvent.id)).where(
                InvoiceEvent.invoice_id.in_(list(totals)), InvoiceEvent.kind == "payment_recorded"))
            assert stored == len(unique)
            payments = sum(len(amounts) for *_, amounts in expected["invoices"].values())
            assert recorded == receipts(creditor_id) == payments

        # a "failed" after "succeeded", arriving late and fresh, changes nothing
        late = next(p for p in planned if p.scenario == "ok")
        body = notification(f"evt_{run_id}_late", "payment.failed", late.ref, PaymentStatus.FAILED, late.amount, "NOK")
        answer = post_signed(race_app.test_client(), slug, secret, body)
        assert answer.status_code == 200 and answer.json["outcomes"] == ["unchanged"]
        assert actual_ledger(race_app, totals, planned) == expected


# --- (c) double tap, two tabs -------------------------------------------------------------------------


class CountingGateway(Gateway):
    """A gateway that counts the checkouts it is asked for and hands each to the real one."""

    def __init__(self, inner: Gateway):
        self.inner, self.name, self.supported_methods = inner, inner.name, inner.supported_methods
        self.calls = 0
        self._lock = threading.Lock()

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        with self._lock:
            self.calls += 1
        time.sleep(0.05)  # a provider takes a while: the window in which a second tap would slip through
        return self.inner.create_checkout(request)

    def fetch_status(self, provider_ref):
        return self.inner.fetch_status(provider_ref)

    def parse_webhook(self, body, headers):
        return self.inner.parse_webhook(body, headers)

    def refund(self, provider_ref, amount, idempotency_key):
        return self.inner.refund(provider_ref, amount, idempotency_key)

    def cancel(self, provider_ref):
        return self.inner.cancel(provider_ref)


def test_twenty_parallel_starts_make_one_provider_call_and_one_live_attempt(race_app):
    with committed(race_app, "DE") as creditor_id:
        with race_app.app_context():
            invoice = make_invoice(db.session.get(Creditor, creditor_id))
            db.session.commit()
            invoice_id, amount = invoice.id, invoice.balance
        with race_app.app_context():  # one gateway for every tap, built before the race
            counting = CountingGateway(simulator_for(db.session.get(Creditor, creditor_id)))

        def tap():
            with race_app.app_context():
                try:
                    invoice = db.session.get(Invoice, invoice_id)
                    attempt = start_payment(invoice, counting, amount=amount, locale="de", methods=("card",),
                                            return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                            cancel_url="https://pay.example.test/b")
                    db.session.commit()
                    return attempt.public_ref, attempt.redirect_url
                finally:
                    db.session.remove()

        results, errors = race([tap] * 20)

        assert errors == []
        assert counting.calls == 1
        assert len(set(results)) == 1 and results[0][1]
        with race_app.app_context():
            attempts = db.session.scalars(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id)).all()
            assert len(attempts) == 1 and attempts[0].is_live and attempts[0].public_ref == results[0][0]
            started = db.session.scalar(select(func.count(InvoiceEvent.id)).where(
                InvoiceEvent.invoice_id == invoice_id, InvoiceEvent.kind == "payment_started"))
            assert started == 1


# --- requests each with a session of their own, as in production -------------------------------------


def test_the_return_page_settles_what_the_provider_confirmed_in_a_session_of_its_own(race_app):
    """The functional tests share one session between the test and its requests; here every request has
    its own, as under gunicorn. The return page reads the attempt with its invoice and creditor in one
    statement, refreshes the attempt FOR UPDATE and settles it (an eager load of the attempt's invoice
    once made that refresh an outer join, which PostgreSQL refuses to lock: a 500 only production saw)."""
    from tests.functional.helpers import issue

    with committed(race_app, "NO") as creditor_id:
        with race_app.app_context():
            creditor = db.session.get(Creditor, creditor_id)
            invoice = make_invoice(creditor)
            db.session.commit()
            invoice_id = invoice.id
            token = issue(race_app, invoice).token
            db.session.remove()
        client = race_app.test_client()
        bill = client.get(f"/l/{token}").headers["Location"].replace(race_app.config["PORTAL_BASE_URL"], "")
        page = client.get(bill)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        hosted = client.post(f"{bill}/pay", data={"csrf_token": csrf, "provider": "simulator"})
        assert hosted.status_code == 303 and "/simulator/" in hosted.headers["Location"]
        with race_app.app_context():
            attempt = db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.invoice_id == invoice_id))
            attempt_ref, provider_ref = attempt.public_ref, attempt.provider_ref
            # the customer paid at the provider; its notification has not come (yet)
            simulator_for(db.session.get(Creditor, creditor_id)).store.update(provider_ref, status="succeeded",
                                                                              method="card")
            db.session.commit()
            db.session.remove()
        back = client.get(f"{bill}/paid/{attempt_ref}", headers={"Accept-Language": "en"})
        assert back.status_code == 200 and "received your payment" in back.text
        with race_app.app_context():
            assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
            assert db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == invoice_id)) == 1
            db.session.remove()
