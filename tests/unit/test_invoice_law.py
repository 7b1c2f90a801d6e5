"""Invoices that meet the law where the creditor is: VAT per rate (credit notes included), the seller's
identity per country, VAT ids, and the import's refusals (currency, issue date, due date)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask_babel import force_locale

from app.billing.corrections import LineCredit, issue_credit_note
from app.billing.invoice_law import in_foretaksregisteret, rates_of, seller_identity, vat_breakdown
from app.billing.models import Customer, Invoice
from app.billing.services import find_invoice, import_invoice
from app.core.dates import local_today
from app.core.orgnumbers import vat_id
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from tests.factories import invoice_payload, make_creditor, take_card_payments


@pytest.fixture
def ctx(app, session):
    with app.test_request_context():
        yield


def german_bill(creditor, **overrides):
    """Food at 7 % and services at 19 %, with amounts whose VAT rounds per line."""
    today = local_today(creditor.country, utcnow())
    payload = invoice_payload("EUR", today=today, **overrides)
    payload["lines"] = [
        {"description": "Brot", "quantity": "3", "unit_price": 333, "vat_rate": 700},  # 999, VAT 69.93 -> 70
        {"description": "Milch", "quantity": "1", "unit_price": 107, "vat_rate": 700},  # 107, VAT 7.49 -> 7
        {"description": "Lieferung", "quantity": "1", "unit_price": 1005, "vat_rate": 1900},  # 1005, 190.95 -> 191
        {"description": "Service", "quantity": "2", "unit_price": 250, "vat_rate": 1900},  # 500, 95
    ]
    payload["total"] = 999 + 70 + 107 + 7 + 1005 + 191 + 500 + 95
    invoice, _created = import_invoice(creditor, payload, actor="test")
    return invoice


def test_vat_per_rate_sums_the_lines_vat_and_adds_up_to_the_invoice(ctx):
    invoice = german_bill(make_creditor("DE"))
    rates = rates_of(invoice)
    assert [(r.rate, r.net, r.vat) for r in rates] == [(1900, 1505, 286), (700, 1106, 77)]
    # The rate's VAT is the sum of its lines' (7.49 + 69.93 rounded per line: 77), not 7 % of 11.06 (77.42 -> 77)
    # nor, at 19 %, 19 % of 15.05 (285.95 -> 286): the lines decide, and the rates add up exactly.
    assert sum(r.net for r in rates) == invoice.subtotal and sum(r.vat for r in rates) == invoice.vat_total
    assert sum(r.gross for r in rates) == invoice.total


def test_rounding_per_line_can_differ_from_the_rate_applied_to_the_sum(ctx):
    lines = [type("L", (), {"vat_rate": 2500, "net": 1, "vat": 0})() for _ in range(3)]  # 0.25 each: 0
    assert [(r.rate, r.net, r.vat) for r in vat_breakdown(lines)] == [(2500, 3, 0)]  # not 0.75 -> 1


def test_credit_notes_come_off_their_rate_and_a_rate_credited_in_full_is_left_out(ctx):
    invoice = german_bill(make_creditor("DE"))
    bread, milk, delivery, _service = invoice.lines
    issue_credit_note(invoice, [LineCredit(delivery.id, 500)], reason="Late", actor="agent:1")  # part, 19 %
    rates = rates_of(invoice)
    assert rates[0].rate == 1900 and (rates[0].net, rates[0].vat) == (1505 - 420, 286 - 80)  # 500 = 420 + 80
    assert sum(r.net for r in rates) == invoice.subtotal and sum(r.vat for r in rates) == invoice.vat_total
    issue_credit_note(invoice, [LineCredit(bread.id, bread.gross), LineCredit(milk.id, milk.gross)],
                      reason="Spoilt", actor="agent:1")
    rates = rates_of(invoice)
    assert [r.rate for r in rates] == [1900]
    assert (rates[0].net, rates[0].vat, rates[0].gross) == (invoice.subtotal, invoice.vat_total, invoice.total)


@pytest.mark.parametrize(("country", "given", "stored"), [
    ("DE", "DE 136 695 976", "DE136695976"),
    ("DE", "136695976", "DE136695976"),
    ("NO", "923 609 016 MVA", "NO923609016MVA"),
    ("NO", "923609016", "NO923609016MVA"),
    ("DE", "IE6388047V", "IE6388047V"),  # its own prefix wins
    ("IE", "6388047V", "IE6388047V"),
])
def test_vat_ids_are_checked_by_their_country_and_stored_compact(country, given, stored):
    assert vat_id(country, given) == stored


@pytest.mark.parametrize(("country", "given"), [
    ("DE", "DE136695977"),  # check digit
    ("NO", "923609017"),  # MOD11
    ("DE", "DE12345"),  # too short
    (None, "x1"),
])
def test_vat_ids_that_are_not_are_refused(country, given):
    with pytest.raises(ValueError, match="VAT id"):
        vat_id(country, given)


def test_the_seller_as_norwegian_law_wants_it(ctx):
    seller = {"country": "NO", "legal_name": "Fjordlys Energi AS", "org_number": "923609016", "vat_id": None}
    with force_locale("nb"):
        assert seller_identity(seller) == ["Org.nr. 923 609 016", "Foretaksregisteret"]
        assert seller_identity({**seller, "vat_id": "NO923609016MVA"}) == ["Org.nr. 923 609 016 MVA",
                                                                          "Foretaksregisteret"]
    with force_locale("en"):  # the statutory words stay Norwegian
        assert seller_identity({**seller, "vat_id": "NO923609016MVA"}) == ["Org. no. 923 609 016 MVA",
                                                                          "Foretaksregisteret"]
    assert not in_foretaksregisteret("Ola Nordmann Rørlegger")  # a sole trader need not be registered
    assert seller_identity({**seller, "legal_name": "Ola Nordmann Rørlegger"}) == ["Org. no. 923 609 016"]


def test_the_seller_as_german_law_wants_it(ctx):
    seller = {"country": "DE", "legal_name": "Lindenau GmbH", "org_number": "HRB 12345", "vat_id": None,
              "tax_number": "21/815/08150"}
    with force_locale("de"):
        assert seller_identity(seller) == ["Handelsregister-Nr. HRB 12345", "Steuernummer 21/815/08150"]
        assert seller_identity({**seller, "vat_id": "DE136695976"}) == ["Handelsregister-Nr. HRB 12345",
                                                                        "USt-IdNr. DE136695976"]


def test_creditor_vat_id_and_tax_number_are_checked(ctx):
    with pytest.raises(InvalidData) as refused:
        make_creditor("DE", vat_id="DE136695977", tax_number="21/815/0815a")
    assert set(refused.value.errors) == {"vat_id", "tax_number"}
    creditor = make_creditor("NO", org_number="923609016", vat_id="923 609 016 mva")
    assert creditor.vat_id == "NO923609016MVA"


# --- the import's refusals: each a field, nothing saved ------------------------------------------------


def refused(creditor, payload) -> dict:
    with pytest.raises(InvalidData) as caught:
        import_invoice(creditor, payload, actor="test")
    assert find_invoice(creditor, payload["number"]) is None
    return caught.value.errors


def test_a_currency_the_creditor_cannot_receive_is_refused(app, ctx):
    creditor = make_creditor("IE")  # an Irish IBAN, in euros
    payload = invoice_payload("SEK", today=local_today("IE", utcnow()))
    customers = db.session.query(Customer).filter_by(creditor_id=creditor.id).count()
    errors = refused(creditor, payload)
    assert list(errors) == ["currency"] and "SEK" in errors["currency"]
    assert db.session.query(Customer).filter_by(creditor_id=creditor.id).count() == customers  # nothing saved
    take_card_payments(app, creditor)  # a provider configured for cards: SEK can be paid by card
    invoice, created = import_invoice(creditor, payload, actor="test")
    assert created and invoice.currency == "SEK"


def test_a_provider_without_a_method_for_the_currency_does_not_count(app, ctx):
    creditor = make_creditor("IE")
    take_card_payments(app, creditor, methods=("swish",))  # Swish is SEK only
    assert list(refused(creditor, invoice_payload("NOK", today=local_today("IE", utcnow())))) == ["currency"]


def test_an_issue_date_in_the_future_where_the_creditor_is_is_refused(ctx):
    creditor = make_creditor("NO")
    today = local_today("NO", utcnow())
    payload = invoice_payload("NOK", today=today)
    payload["issue_date"] = (today + timedelta(days=1)).isoformat()
    payload["due_date"] = (today + timedelta(days=20)).isoformat()
    errors = refused(creditor, payload)
    assert list(errors) == ["issue_date"] and "future" in errors["issue_date"]
    payload["issue_date"] = today.isoformat()  # today is fine
    assert import_invoice(creditor, payload, actor="test")[1]


def test_a_due_date_before_the_issue_date_is_refused(ctx):
    creditor = make_creditor("DE")
    today = local_today("DE", utcnow())
    payload = invoice_payload("EUR", today=today)
    payload["due_date"] = (date_before := today - timedelta(days=30)).isoformat()
    assert date_before < today
    errors = refused(creditor, payload)
    assert list(errors) == ["due_date"]
    assert db.session.query(Invoice).filter_by(creditor_id=creditor.id).count() == 0


def test_a_business_customers_vat_id_is_kept_checked_and_only_for_a_business(ctx):
    creditor = make_creditor("DE")
    today = local_today("DE", utcnow())
    payload = invoice_payload("EUR", today=today)
    payload["customer"].update(kind="business", vat_id="de 136 695 976")
    invoice, _created = import_invoice(creditor, payload, actor="test")
    assert invoice.customer.vat_id == "DE136695976"
    bad = invoice_payload("EUR", today=today)
    bad["customer"].update(kind="business", vat_id="DE136695977")
    assert list(refused(creditor, bad)) == ["customer.vat_id"]
    consumer = invoice_payload("EUR", today=today)
    consumer["customer"]["vat_id"] = "DE136695976"
    assert "only a business" in refused(creditor, consumer)["customer.vat_id"]
