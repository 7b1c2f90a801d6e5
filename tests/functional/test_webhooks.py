"""The simulator's notifications through POST /webhooks/simulator/<creditor slug>: only a genuine, fresh
notification signed with this creditor's secret is stored, and it only ever touches this creditor's bills.

Anything else answers 400 and changes nothing: no WebhookEvent, no Payment, the balance as it was.
A genuine notification is answered 2xx whatever its type, so the provider stops re-sending it; it is
stored once per event id and applied at most once, in whatever order the provider's copies arrive.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import func, select

from app.billing.models import InvoiceStatus
from app.extensions import db
from app.payments.gateways.base import PaymentStatus
from app.payments.gateways.simulator import SIGNATURE_HEADER, TOLERANCE_SECONDS, sign
from app.payments.models import Payment, PaymentAttempt, WebhookEvent
from app.payments.providers import simulator_for, simulator_secret
from app.payments.services import start_payment
from tests.factories import make_creditor, make_invoice


class Bill:
    """A creditor's invoice with a live simulator attempt, and what a notification about it needs."""

    def __init__(self, app, kind: str = "NO"):
        self.creditor = make_creditor(kind)
        self.invoice = make_invoice(self.creditor, lines=2)
        with app.app_context():
            self.attempt = start_payment(
                self.invoice, simulator_for(self.creditor), amount=self.invoice.balance, locale="en",
                methods=("card",), return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                cancel_url="https://pay.example.test/b",
            )
            self.secret = simulator_secret(self.creditor)
        self.ref, self.total = self.attempt.provider_ref, self.invoice.total
        self.endpoint = f"/webhooks/simulator/{self.creditor.slug}"

    def body(self, event_id: str, status: str = PaymentStatus.SUCCEEDED, event_type: str | None = None,
             **data) -> bytes:
        return json.dumps({
            "id": event_id, "type": event_type or f"payment.{status}", "created": int(time.time()),
            "data": {"ref": self.ref, "status": status, "amount": self.total, "currency": self.invoice.currency,
                     "method": "card", **data},
        }, separators=(",", ":")).encode()

    def payments(self) -> int:
        return db.session.scalar(select(func.count(Payment.id)).where(Payment.invoice_id == self.invoice.id))


def post(client, endpoint: str, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post(endpoint, data=body, headers=headers)


def stored_events() -> int:
    return db.session.scalar(select(func.count(WebhookEvent.id)))


def assert_no_secret(answer, *secrets: str) -> None:
    """Neither the body nor a header of the answer carries a secret or a signature."""
    seen = answer.get_data(as_text=True) + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    for secret in secrets:
        assert secret not in seen


@pytest.fixture
def bill(app, session):
    return Bill(app, "NO")


def flip(signature: str) -> str:
    """The same header with the last hex digit of the MAC changed."""
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


class TestRefused:
    """Not genuine, not fresh or not this creditor's: 400, and nothing is stored or changed."""

    def cases(self, app, bill: Bill) -> dict[str, tuple[str, bytes, str | None]]:
        other = Bill(app, "DE")
        body = bill.body("evt_refused")
        tampered = bill.body("evt_refused", amount=1)
        return {
            "forged MAC": (bill.endpoint, body, flip(sign(bill.secret, body))),
            "made-up secret": (bill.endpoint, body, sign("not-the-secret", body)),
            "stale": (bill.endpoint, body, sign(bill.secret, body, int(time.time()) - TOLERANCE_SECONDS - 5)),
            "from the future": (bill.endpoint, body,
                                sign(bill.secret, body, int(time.time()) + TOLERANCE_SECONDS + 60)),
            "tampered body": (bill.endpoint, tampered, sign(bill.secret, body)),
            "missing header": (bill.endpoint, body, None),
            "malformed header": (bill.endpoint, body, "v1=abc"),
            "empty header": (bill.endpoint, body, ""),
            # verified by the endpoint's creditor only: another creditor's valid signature is a forgery here
            "another creditor's secret": (bill.endpoint, body, sign(other.secret, body)),
            "signed, not JSON": (bill.endpoint, b"payment succeeded", sign(bill.secret, b"payment succeeded")),
            "signed, not an event": (bill.endpoint, b'{"id": "evt_x"}', sign(bill.secret, b'{"id": "evt_x"}')),
        }

    def test_every_refusal_is_400_and_changes_nothing(self, client, app, bill, caplog):
        cases = self.cases(app, bill)
        before = stored_events()
        caplog.set_level(logging.INFO)
        for name, (endpoint, body, signature) in cases.items():
            answer = post(client, endpoint, body, signature)
            assert answer.status_code == 400, name
            assert answer.json == {"error": "invalid_notification"}, name
            assert_no_secret(answer, bill.secret, app.config["SECRET_KEY"], *([signature] if signature else []))
        assert stored_events() == before
        assert bill.payments() == 0
        assert (bill.invoice.status, bill.invoice.balance, bill.attempt.status) == (
            InvoiceStatus.OPEN, bill.total, PaymentStatus.PENDING)
        assert bill.secret not in caplog.text and app.config["SECRET_KEY"] not in caplog.text

    def test_the_real_thing_after_all_that_is_applied(self, client, app, bill):
        """The refusals above did not "use up" the event id: the genuine notification still counts."""
        for endpoint, body, signature in self.cases(app, bill).values():
            post(client, endpoint, body, signature)
        body = bill.body("evt_refused")
        answer = post(client, bill.endpoint, body, sign(bill.secret, body))
        assert answer.status_code == 200 and answer.json["outcomes"] == ["applied"]
        assert bill.invoice.status == InvoiceStatus.PAID and bill.payments() == 1

    def test_unknown_creditor_or_provider_is_404(self, client, bill):
        body = bill.body("evt_404")
        signature = sign(bill.secret, body)
        before = stored_events()
        assert post(client, "/webhooks/simulator/no-such-creditor", body, signature).status_code == 404
        assert post(client, f"/webhooks/nopay/{bill.creditor.slug}", body, signature).status_code == 404
        assert stored_events() == before and bill.payments() == 0


class TestAnotherCreditorsPayment:
    """Creditor A's secret verifies a notification that names creditor B's payment. A genuine
    notification of A's is answered 2xx and stored (A's provider should stop re-sending it) as
    `unknown_payment`; B's invoice, attempt and payments are never touched."""

    def test_stored_as_unknown_payment_and_never_applied(self, client, app, bill):
        other = Bill(app, "NO")
        for n, ref in enumerate((other.ref, other.attempt.public_ref)):  # by provider id or by our own ref
            body = bill.body(f"evt_cross_{n}", ref=ref, amount=other.total)
            answer = post(client, bill.endpoint, body, sign(bill.secret, body))
            assert answer.status_code == 200 and answer.json["outcomes"] == ["unknown_payment"]
            assert_no_secret(answer, bill.secret, other.secret)
        stored = db.session.scalars(select(WebhookEvent).where(WebhookEvent.event_id.like("evt_cross_%"))).all()
        assert [e.outcome for e in stored] == ["unknown_payment", "unknown_payment"]
        assert other.payments() == 0 and bill.payments() == 0
        assert (other.invoice.status, other.invoice.balance, other.attempt.status) == (
            InvoiceStatus.OPEN, other.total, PaymentStatus.PENDING)
        assert (bill.invoice.status, bill.attempt.status) == (InvoiceStatus.OPEN, PaymentStatus.PENDING)

    def test_the_same_body_at_the_right_creditor_applies(self, client, app, bill):
        other = Bill(app, "NO")
        body = other.body("evt_right_place")
        answer = post(client, other.endpoint, body, sign(other.secret, body))
        assert answer.status_code == 200 and answer.json["outcomes"] == ["applied"]
        assert other.invoice.status == InvoiceStatus.PAID and bill.invoice.status == InvoiceStatus.OPEN


class TestGenuine:
    def test_unknown_event_type_is_stored_and_answered_2xx(self, client, bill):
        body = bill.body("evt_note", status="note", event_type="payment.note_added")
        answer = post(client, bill.endpoint, body, sign(bill.secret, body))
        assert answer.status_code == 200 and answer.json == {"received": 1, "outcomes": ["stored"]}
        event = db.session.scalar(select(WebhookEvent).where(WebhookEvent.event_id == "evt_note"))
        assert (event.event_type, event.outcome, event.provider_ref) == ("payment.note_added", "stored", bill.ref)
        assert event.payload["type"] == "payment.note_added"
        assert bill.invoice.status == InvoiceStatus.OPEN and bill.attempt.status == PaymentStatus.PENDING

    def test_the_same_event_three_times_is_one_payment(self, client, app, bill):
        body = bill.body("evt_thrice")
        outcomes = []
        for _ in range(3):  # the provider re-sends: the same body, a fresh signature each time
            answer = post(client, bill.endpoint, body, sign(bill.secret, body))
            assert answer.status_code == 200
            assert_no_secret(answer, bill.secret, app.config["SECRET_KEY"])
            outcomes += answer.json["outcomes"]
        assert outcomes == ["applied", "duplicate", "duplicate"]
        assert bill.payments() == 1
        assert (bill.invoice.status, bill.invoice.balance, bill.attempt.status) == (
            InvoiceStatus.PAID, 0, PaymentStatus.SUCCEEDED)
        assert db.session.scalar(select(func.count(WebhookEvent.id)).where(WebhookEvent.event_id == "evt_thrice")) == 1
        recorded = [e.kind for e in bill.invoice.events].count("payment_recorded")
        assert recorded == 1

    def test_the_same_event_id_with_another_body_is_still_a_duplicate(self, client, bill):
        """The event id is the provider's promise of identity: a re-sent event is not re-read."""
        first, second = bill.body("evt_same_id", status=PaymentStatus.PROCESSING), bill.body("evt_same_id")
        assert post(client, bill.endpoint, first, sign(bill.secret, first)).json["outcomes"] == ["applied"]
        assert post(client, bill.endpoint, second, sign(bill.secret, second)).json["outcomes"] == ["duplicate"]
        assert bill.attempt.status == PaymentStatus.PROCESSING and bill.payments() == 0

    def test_out_of_order_succeeded_then_processing_stays_succeeded(self, client, bill):
        late_steps = [("evt_ooo_1", PaymentStatus.SUCCEEDED), ("evt_ooo_2", PaymentStatus.PROCESSING),
                      ("evt_ooo_3", PaymentStatus.REQUIRES_ACTION), ("evt_ooo_4", PaymentStatus.FAILED),
                      ("evt_ooo_5", PaymentStatus.CANCELLED)]
        outcomes = []
        for event_id, status in late_steps:
            body = bill.body(event_id, status=status)
            outcomes += post(client, bill.endpoint, body, sign(bill.secret, body)).json["outcomes"]
        assert outcomes == ["applied", "unchanged", "unchanged", "unchanged", "unchanged"]
        assert (bill.attempt.status, bill.invoice.status, bill.invoice.balance) == (
            PaymentStatus.SUCCEEDED, InvoiceStatus.PAID, 0)
        assert bill.payments() == 1

    def test_processing_then_succeeded_in_order(self, client, bill):
        outcomes = []
        for event_id, status in (("evt_io_1", PaymentStatus.PROCESSING), ("evt_io_2", PaymentStatus.SUCCEEDED)):
            body = bill.body(event_id, status=status)
            outcomes += post(client, bill.endpoint, body, sign(bill.secret, body)).json["outcomes"]
        assert outcomes == ["applied", "applied"] and bill.invoice.status == InvoiceStatus.PAID and bill.payments() == 1

    def test_other_open_attempts_of_a_paid_invoice_are_cancelled(self, client, app, bill):
        bill.creditor.allow_partial_payments, bill.creditor.min_partial_payment = True, 100
        with app.app_context():
            other = start_payment(bill.invoice, simulator_for(bill.creditor), amount=bill.total - 1000, locale="en",
                                  methods=("card",), return_url=lambda ref: f"https://pay.example.test/r/{ref}",
                                  cancel_url="https://pay.example.test/b")
        body = bill.body("evt_pay_all")
        assert post(client, bill.endpoint, body, sign(bill.secret, body)).json["outcomes"] == ["applied"]
        assert db.session.get(PaymentAttempt, other.id).status == PaymentStatus.CANCELLED
        body = bill.body("evt_other_late", status=PaymentStatus.REQUIRES_ACTION, ref=other.provider_ref)
        assert post(client, bill.endpoint, body, sign(bill.secret, body)).json["outcomes"] == ["unchanged"]
        assert db.session.get(PaymentAttempt, other.id).status == PaymentStatus.CANCELLED


def test_stored_now_applied_by_the_worker(app, client, session, monkeypatch):
    """With WEBHOOKS_APPLY_INLINE off (production), the request stores and answers at once; the worker
    (`flask payments apply-events`) applies what was stored, once, within the verifying creditor."""
    monkeypatch.setitem(app.config, "WEBHOOKS_APPLY_INLINE", False)
    bill = Bill(app)
    body = bill.body("evt_later_1")
    first = post(client, bill.endpoint, body, sign(bill.secret, body))
    again = post(client, bill.endpoint, body, sign(bill.secret, body))
    assert first.status_code == again.status_code == 200
    assert first.json["outcomes"] == ["received"] and again.json["outcomes"] == ["duplicate"]
    assert bill.payments() == 0 and bill.invoice.status != InvoiceStatus.PAID  # stored, not applied yet

    result = app.test_cli_runner().invoke(args=["payments", "apply-events", "--once"])
    assert result.exit_code == 0 and "1 applied" in result.output, result.output
    assert bill.payments() == 1 and bill.invoice.status == InvoiceStatus.PAID
    record = db.session.scalar(select(WebhookEvent).where(WebhookEvent.event_id == "evt_later_1"))
    assert record.outcome == "applied" and record.applied_at is not None
    assert "nothing to apply" in app.test_cli_runner().invoke(args=["payments", "apply-events", "--once"]).output


class TestCheckedAgainstTheAttempt:
    """A signed "succeeded" is checked against its attempt: another amount or currency is recorded as
    what was received, not booked on the bill, owed back in full (agents see it in the inbox), and the
    customer is told; never settled as the whole attempt."""

    def test_one_cent_for_a_whole_bill_is_not_a_paid_bill(self, client, app, bill):
        body = bill.body("evt_cent", amount=1)
        answer = post(client, bill.endpoint, body, sign(bill.secret, body))
        assert answer.status_code == 200 and answer.json["outcomes"] == ["applied"]
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == bill.invoice.id))
        assert (payment.amount, payment.currency, payment.refund_due, payment.mismatch) == (1, "NOK", 1, "amount")
        invoice = bill.invoice
        assert (invoice.status, invoice.balance, invoice.amount_paid) == (InvoiceStatus.OPEN, bill.total, 0)
        assert bill.attempt.status == PaymentStatus.SUCCEEDED  # the provider's word; the money is owed back
        kinds = [e.kind for e in invoice.events if e.kind.startswith("payment_")]
        assert kinds == ["payment_started", "payment_mismatch"]
        from app.payments.refunds import refunds_due

        assert refunds_due(bill.creditor.id) == [payment]

    def test_another_currency_is_recorded_in_it_and_owed_back(self, client, app, bill):
        body = bill.body("evt_eur", currency="EUR")
        answer = post(client, bill.endpoint, body, sign(bill.secret, body))
        assert answer.status_code == 200 and answer.json["outcomes"] == ["applied"]
        payment = db.session.scalar(select(Payment).where(Payment.invoice_id == bill.invoice.id))
        assert (payment.amount, payment.currency, payment.refund_due, payment.mismatch) == (
            bill.total, "EUR", bill.total, "currency")
        assert (bill.invoice.status, bill.invoice.balance) == (InvoiceStatus.OPEN, bill.total)
        # the right payment arriving later for the same attempt does not pay twice: the attempt has its payment
        good = bill.body("evt_nok")
        assert post(client, bill.endpoint, good, sign(bill.secret, good)).json["outcomes"] == ["unchanged"]
        assert bill.payments() == 1

    def test_a_success_that_names_no_amount_confirms_the_attempt(self, client, bill):
        body = bill.body("evt_no_amount", amount=None, currency=None)
        assert post(client, bill.endpoint, body, sign(bill.secret, body)).json["outcomes"] == ["applied"]
        assert bill.invoice.status == InvoiceStatus.PAID and bill.payments() == 1

    MALFORMED = {
        "amount as text": {"amount": "2500"},
        "amount as a float": {"amount": 12.5},
        "amount as true": {"amount": True},
        "zero": {"amount": 0},
        "negative": {"amount": -100},
        "2^62": {"amount": 2 ** 62},
        "2^63": {"amount": 2 ** 63},
        "2^64": {"amount": 2 ** 64},
        "currency lower case": {"currency": "nok"},
        "currency too long": {"currency": "NOKK"},
        "currency a number": {"currency": 578},
        "reference a number": {"ref": 12345},
        "reference an object": {"ref": {"id": "sim_x"}},
        "reference a list": {"ref": ["sim_x"]},
        "reference too long": {"ref": "sim_" + "x" * 300},
        "reference with a NUL": {"ref": "sim_\u0000x"},
        "method an object": {"method": {"type": "card"}},
    }

    @pytest.mark.parametrize("name", list(MALFORMED))
    def test_malformed_is_400_and_changes_nothing(self, client, bill, name):
        body = bill.body(f"evt_bad_{len(name)}", **self.MALFORMED[name])
        answer = post(client, bill.endpoint, body, sign(bill.secret, body))
        assert answer.status_code == 400 and answer.json == {"error": "invalid_notification"}, name
        assert stored_events() == 0 and bill.payments() == 0
        assert (bill.invoice.status, bill.invoice.balance, bill.attempt.status) == (
            InvoiceStatus.OPEN, bill.total, PaymentStatus.PENDING)

    def test_malformed_envelopes_are_400(self, client, bill):
        for name, event in {
            "id an object": {"id": {"x": 1}, "type": "payment.succeeded", "created": int(time.time()), "data": {}},
            "id too long": {"id": "e" * 300, "type": "payment.succeeded", "created": int(time.time()),
                            "data": {"ref": bill.ref, "status": "succeeded"}},
            "created far away": {"id": "evt_far", "type": "payment.succeeded", "created": 10 ** 20,
                                 "data": {"ref": bill.ref, "status": "succeeded"}},
            "data a list": {"id": "evt_list", "type": "payment.succeeded", "created": int(time.time()), "data": []},
            "a list": [1, 2],
        }.items():
            body = json.dumps(event).encode()
            answer = post(client, bill.endpoint, body, sign(bill.secret, body))
            assert answer.status_code == 400, name
        assert stored_events() == 0 and bill.payments() == 0

    def test_the_return_page_says_the_payment_was_not_booked(self, client, app, session):
        from tests.functional.helpers import open_bill

        bill = Bill(app)
        url = open_bill(client, app, bill.invoice)
        body = bill.body("evt_cent_page", amount=1)
        post(client, bill.endpoint, body, sign(bill.secret, body))
        db.session.commit()
        page = client.get(f"{url}/paid/{bill.attempt.public_ref}", headers={"Accept-Language": "en"})
        assert page.status_code == 200 and "received your payment" not in page.text
        assert "cannot book on this bill" in page.text and "has not changed" in page.text
        receipt = client.get(f"{url}/receipts/{db.session.scalar(select(Payment.public_ref))}",
                             headers={"Accept-Language": "en"})
        assert receipt.status_code == 200 and "was not booked on the bill" in receipt.text
