"""Invoices that meet the law, as customers and creditors see it: the VAT breakdown and the parties' ids on
the PDF, the bill page and letters; § 286(3) BGB's notice only when the creditor opts in; the bill's address
and QR code on the PDF; and the import's refusals through the API and the CLI (a 422 naming the field,
nothing saved)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from app.billing.models import Customer, Invoice
from app.billing.services import find_invoice, import_invoice
from app.core.dates import local_today
from app.creditors.services import create_api_key
from app.dunning.settings import save_settings
from app.extensions import db
from app.models import utcnow
from tests.factories import invoice_payload, make_creditor
from tests.functional.dunning.letters import qr_codes
from tests.functional.helpers import open_bill

EN = {"Accept-Language": "en"}
DE = {"Accept-Language": "de"}


def words(text: str) -> str:
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def pdf_words(data: bytes) -> str:
    return words(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages))


def german_creditor(**overrides):
    return make_creditor("DE", legal_name="Stadtwerke Test GmbH", org_number="HRB 12345", vat_id="DE136695976",
                         **overrides)


def german_bill(creditor, *, business=False):
    """Two rates: 7 % and 19 %; a business customer with its VAT id, or a consumer in Leipzig."""
    today = local_today("DE", utcnow())
    payload = invoice_payload("EUR", today=today)
    payload["customer"] = {"external_ref": "K-2" if business else "K-1",
                           "name": "Bäckerei Krause GmbH" if business else "Anna Schmidt",
                           "address": {"line1": "Karl-Heine-Straße 27", "postcode": "04229", "city": "Leipzig",
                                       "country": "DE"},
                           **({"kind": "business", "vat_id": "DE245170038"} if business else {})}
    payload["lines"] = [
        {"description": "Brot", "quantity": "3", "unit_price": 333, "vat_rate": 700},  # 9.99 + 0.70
        {"description": "Strom", "quantity": "1", "unit_price": 10000, "vat_rate": 1900},  # 100.00 + 19.00
    ]
    payload["total"] = 999 + 70 + 10000 + 1900
    invoice, _created = import_invoice(creditor, payload, actor="test")
    db.session.commit()
    return invoice


def test_the_pdf_breaks_vat_down_by_rate_names_both_parties_and_leads_back_to_the_bill(client, app, session):
    creditor = german_creditor()
    invoice = german_bill(creditor, business=True)
    url = open_bill(client, app, invoice)
    response = client.get(url + "/invoice.pdf", headers=EN)
    text = pdf_words(response.data)
    assert "VAT 7 % of €9.99 €0.70" in text and "VAT 19 % of €100.00 €19.00" in text
    assert "VAT in all €19.70" in text and "Total €129.69" in text
    assert "Org. no. HRB 12345" in text and "VAT ID DE136695976" in text  # the seller (head and footer)
    assert "VAT ID DE245170038" in text  # the buyer, a business
    base = app.config["PORTAL_BASE_URL"]
    typed = f"{base.removeprefix('https://')}/b/{invoice.public_id}"
    assert typed in text.replace(" ", "")  # the bill's address, as printed (no credential in it)
    assert f"{base}/b/{invoice.public_id}" in qr_codes(response.data)
    assert "/l/" not in text and "/k/" not in text


def test_the_german_pdf_in_german_and_the_notice_only_when_the_creditor_opts_in(client, app, session):
    creditor = german_creditor(tax_number="21/815/08150")
    invoice = german_bill(creditor)
    url = open_bill(client, app, invoice)
    text = pdf_words(client.get(url + "/invoice.pdf", headers=DE).data)
    assert "USt. 7 % auf 9,99 € 0,70 €" in text and "USt. 19 % auf 100,00 € 19,00 €" in text
    assert "USt-IdNr. DE136695976" in text and "Steuernummer" not in text  # the VAT id where both are known
    assert "286" not in text  # not until the creditor says so
    save_settings(creditor, consumer_default_notice=True)
    db.session.commit()
    text = pdf_words(client.get(url + "/invoice.pdf", headers=DE).data)
    assert "(§ 286(3) BGB)" in text or "§ 286 Abs. 3 BGB" in text


def test_the_bill_page_shows_the_rates_and_the_footer_the_sellers_ids(client, app, session):
    creditor = make_creditor("NO", legal_name="Fjordkraft Test AS", org_number="923609016",
                             vat_id="NO923609016MVA")
    today = local_today("NO", utcnow())
    payload = invoice_payload("NOK", today=today)
    payload["lines"] = [{"description": "Strøm", "quantity": "1", "unit_price": 80000, "vat_rate": 2500},
                        {"description": "Mat", "quantity": "2", "unit_price": 1001, "vat_rate": 1500}]
    payload["total"] = 100000 + 2002 + 300
    invoice, _created = import_invoice(creditor, payload, actor="test")
    db.session.commit()
    page = words(client.get(open_bill(client, app, invoice), headers=EN).text)
    assert "VAT 25 % of NOK 800.00 NOK 200.00" in page and "VAT 15 % of NOK 20.02 NOK 3.00" in page
    assert "VAT in all NOK 203.00" in page
    assert "Fjordkraft Test AS · Org. no. 923 609 016 MVA · Foretaksregisteret" in page


# --- the import's refusals -------------------------------------------------------------------------------


def rows() -> tuple[int, int]:
    return (db.session.scalar(select(func.count()).select_from(Invoice)),
            db.session.scalar(select(func.count()).select_from(Customer)))


@pytest.mark.parametrize(("field", "change"), [
    ("currency", lambda p, today: p.update(currency="SEK")),
    ("issue_date", lambda p, today: p.update(issue_date=(today + timedelta(days=1)).isoformat(),
                                             due_date=(today + timedelta(days=30)).isoformat())),
    ("due_date", lambda p, today: p.update(due_date=(today - timedelta(days=11)).isoformat())),
])
def test_the_api_refuses_each_with_a_422_naming_the_field_and_saves_nothing(client, session, field, change):
    creditor = make_creditor("IE")
    headers = {"Authorization": f"Bearer {create_api_key(creditor)}"}
    db.session.commit()
    today = local_today("IE", utcnow())
    payload = invoice_payload("EUR", today=today)
    change(payload, today)
    before = rows()
    response = client.post("/api/v1/invoices", json=payload, headers=headers)
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field]
    assert rows() == before and find_invoice(creditor, payload["number"]) is None


def test_the_cli_import_refuses_them_too(app, session, tmp_path):
    creditor = make_creditor("NO")
    db.session.commit()
    today = local_today("NO", utcnow())
    good = invoice_payload("NOK", today=today)
    future = invoice_payload("NOK", today=today + timedelta(days=20))  # issued ten days ahead
    euros = invoice_payload("EUR", today=today)
    path = tmp_path / "invoices.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in (good, future, euros)) + "\n", encoding="utf-8")
    before = rows()
    result = app.test_cli_runner().invoke(args=["invoices", "import", str(path), "--creditor", creditor.slug])
    assert result.exit_code == 1
    assert "line 2:" in result.output and "issue_date: issue_date is in the future" in result.output
    assert "line 3:" in result.output and "currency: EUR cannot be paid to this creditor" in result.output
    assert rows() == before


def test_the_creditor_cli_sets_and_checks_the_vat_id_and_tax_number(app, session):
    creditor = make_creditor("DE")
    db.session.commit()
    runner = app.test_cli_runner()
    bad = runner.invoke(args=["creditors", "update", creditor.slug, "--vat-id", "DE136695977"])
    assert bad.exit_code != 0 and "--vat-id: not a VAT id" in bad.output
    good = runner.invoke(args=["creditors", "update", creditor.slug, "--vat-id", "de 136 695 976",
                               "--tax-number", "21/815/08150"])
    assert good.exit_code == 0, good.output
    db.session.refresh(creditor)
    assert (creditor.vat_id, creditor.tax_number) == ("DE136695976", "21/815/08150")
