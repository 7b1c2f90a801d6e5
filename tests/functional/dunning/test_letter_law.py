"""A letter names the seller as its country's law wants it and breaks each bill's VAT down by rate."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.functional.dunning.letters import letter_bills, plain, print_day
from tests.unit.dunning.conftest import TODAY, run


def words(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def test_a_letter_names_the_seller_as_the_law_wants_and_breaks_each_bills_vat_down(germany):
    creditor, plan = germany
    creditor.legal_name, creditor.org_number, creditor.tax_number = "Stadtwerke Test GmbH", "HRB 12345", "21/815/08150"
    address = {"line1": "Hauptstraße 5", "postcode": "10115", "city": "Berlin", "country": "DE"}
    invoice = letter_bills(creditor, plan, due=TODAY - timedelta(days=30), address=address, preferred_locale="de")[0]
    run(creditor, TODAY + timedelta(days=16))
    printed = print_day(TODAY + timedelta(days=16))
    text = words(plain(printed[0].pdf))
    assert "Steuernummer 21/815/08150" in text and "Handelsregister-Nr. HRB 12345" in text
    rate = invoice.lines[0].vat_rate // 100
    assert f"Darin USt. {rate} %" in text
    assert printed[0].print.facts["creditor"]["tax_number"] == "21/815/08150"  # kept in the snapshot
