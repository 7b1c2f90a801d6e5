"""Content blocks through the creditor API (issue 18, item 1): create, list, read, replace, stop; a
customer's tags; bad input answered 422 with nothing made; another creditor's block and the other mode's
are unknown; a test key's block shows on test bills only; a product code on a line targets the bill."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.billing.services import import_invoice
from app.content import services as content
from app.content.models import Block
from app.creditors.services import create_api_key
from app.extensions import db
from tests.factories import creditor_today, invoice_payload, make_creditor
from tests.functional.helpers import open_bill

API = "/api/v1"
EN = {"Accept-Language": "en"}


def keyed(mode="live"):
    creditor = make_creditor("NO")
    headers = {"Authorization": f"Bearer {create_api_key(creditor, mode=mode)}"}
    db.session.commit()
    return creditor, headers


def body(**changes):
    found = {"name": "Fibre", "kind": "offer", "placements": ["bill"], "action": "link",
             "target_url": "https://fibre.example.test/", "targeting": {"tags": ["fibre"]},
             "texts": {"en": {"title": "Faster internet", "body": "Get **fibre**.", "cta": "See"}}}
    found.update(changes)
    return found


def test_a_block_is_made_read_listed_replaced_and_stopped(client, session):
    _creditor, headers = keyed()
    made = client.post(f"{API}/content/blocks", json=body(), headers=headers)
    assert made.status_code == 201, made.text
    block_id = made.json["id"]
    assert made.headers["Location"].endswith(f"/content/blocks/{block_id}")
    assert made.json["texts"]["en"] == {"title": "Faster internet", "body": "Get **fibre**.", "cta": "See"}
    assert made.json["targeting"] == {"tags": ["fibre"]} and made.json["livemode"] is True
    assert client.get(f"{API}/content/blocks/{block_id}", headers=headers).json["name"] == "Fibre"
    assert [b["id"] for b in client.get(f"{API}/content/blocks", headers=headers).json["data"]] == [block_id]
    replaced = client.put(f"{API}/content/blocks/{block_id}", json=body(name="Fibre 2", priority=3), headers=headers)
    assert replaced.status_code == 200 and replaced.json["name"] == "Fibre 2" and replaced.json["priority"] == 3
    stopped = client.post(f"{API}/content/blocks/{block_id}/stop", headers=headers)
    assert stopped.status_code == 200 and stopped.json["stopped"] is True


@pytest.mark.parametrize("changes", [
    {"texts": {"en": {"title": "<script>alert(1)</script>", "body": "", "cta": "See"}}},
    {"texts": {"en": {"title": "Hi", "body": "<img src=x onerror=alert(1)>", "cta": "See"}}},
    {"target_url": "javascript:alert(1)"},
    {"target_url": "http://fibre.example.test/"},
    {"kind": "advert"},
    {"placements": []},
    {"texts": {"fr": {"title": "Salut", "body": "", "cta": "Voir"}}},
    {"colour": "red"},
])
def test_bad_input_is_422_and_nothing_is_made(client, session, changes):
    _creditor, headers = keyed()
    answer = client.post(f"{API}/content/blocks", json=body(**changes), headers=headers)
    assert answer.status_code == 422, answer.text
    assert db.session.scalar(select(func.count(Block.id))) == 0


def test_another_creditors_and_the_other_modes_blocks_are_unknown(client, session):
    _creditor, headers = keyed()
    _other, other_headers = keyed()
    test_creditor_key = create_api_key(_creditor, mode="test")
    db.session.commit()
    block_id = client.post(f"{API}/content/blocks", json=body(), headers=headers).json["id"]
    for path, method in ((f"/content/blocks/{block_id}", "get"), (f"/content/blocks/{block_id}/stop", "post")):
        assert client.open(f"{API}{path}", method=method, headers=other_headers).status_code == 404
        test = {"Authorization": f"Bearer {test_creditor_key}"}
        assert client.open(f"{API}{path}", method=method, headers=test).status_code == 404
    assert client.put(f"{API}/content/blocks/{block_id}", json=body(), headers=other_headers).status_code == 404
    assert client.get(f"{API}/content/blocks", headers=other_headers).json["data"] == []


def test_tags_and_a_test_keys_block_reach_the_test_bill_only(app, client, session):
    creditor, live_headers = keyed()
    test_headers = {"Authorization": f"Bearer {create_api_key(creditor, mode='test')}"}
    db.session.commit()
    for headers in (live_headers, test_headers):
        assert client.post(f"{API}/invoices", json=invoice_payload("NOK", today=creditor_today("NO")),
                           headers=headers).status_code == 201
    made = client.post(f"{API}/content/blocks", json=body(), headers=test_headers)
    assert made.json["livemode"] is False
    bad = client.put(f"{API}/customers/C-1/tags", json={"tags": ["<b>"]}, headers=test_headers)
    assert bad.status_code == 422
    tagged = client.put(f"{API}/customers/C-1/tags", json={"tags": ["fibre", "fibre", "vip"]}, headers=test_headers)
    assert tagged.status_code == 200 and tagged.json["tags"] == ["fibre", "vip"]
    client.put(f"{API}/customers/C-1/tags", json={"tags": ["fibre"]}, headers=live_headers)
    from app.billing.models import Invoice

    live = db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id, Invoice.livemode.is_(True)))
    test = db.session.scalar(select(Invoice).where(Invoice.creditor_id == creditor.id, Invoice.livemode.is_(False)))
    one, two = app.test_client(), app.test_client()
    assert "Faster internet" in one.get(open_bill(one, app, test), headers=EN).text
    assert "Faster internet" not in two.get(open_bill(two, app, live), headers=EN).text


def test_a_product_code_on_a_line_targets_the_bill(app, session):
    creditor = make_creditor("NO")
    payload = invoice_payload("NOK", today=creditor_today("NO"))
    payload["lines"][0]["product_code"] = "FIBRE-500"
    invoice, _ = import_invoice(creditor, payload, actor="test")
    other, _ = import_invoice(creditor, invoice_payload("NOK", today=creditor_today("NO")), actor="test")
    content.create_block(creditor, {**{k: v for k, v in body().items() if k not in ("targeting",)},
                                    "texts": {"en": {"title": "For fibre customers", "body": "", "cta": "See"}},
                                    "product_codes": ["FIBRE-500"]})
    db.session.commit()
    today = creditor_today("NO")
    with app.test_request_context():
        for bill, expected in ((invoice, ["For fibre customers"]), (other, [])):
            audience = content.audience_for(bill, "bill", "en", today)
            assert [s.title for s in content.blocks_for(bill, audience, today)] == expected


def test_results_per_variant_with_intervals(app, session):
    from datetime import timedelta

    from app.billing.services import record_payment
    from app.content.models import Exposure, Variant
    from app.content.results import results
    from app.models import utcnow
    from app.payments.models import Payment

    creditor = make_creditor("NO")
    block = content.create_block(creditor, {**body(), "texts": {"en": {"title": "A", "body": "", "cta": "See"}}})
    block.variants.append(Variant(name="B", weight=1, texts={"en": {"title": "B", "html": "", "body": "", "cta": "S"}}))
    db.session.flush()
    a, b = block.variants
    seen = utcnow() - timedelta(days=10)
    for i in range(10):
        payload = invoice_payload("NOK", today=creditor_today("NO"))
        payload["customer"] = {**payload["customer"], "external_ref": f"R-{i}"}
        invoice, _ = import_invoice(creditor, payload, actor="test")
        variant = a if i < 6 else b
        db.session.add(Exposure(block_id=block.id, variant_id=variant.id, invoice_id=invoice.id,
                                customer_id=invoice.customer_id, placement="bill", first_seen_at=seen, days_seen=1,
                                clicks=1 if i % 2 == 0 else 0))
        if i in (0, 1, 2, 6):  # A: 3 of 6 paid, 2 to 4 days after; B: 1 of 4, 8 days
            record_payment(invoice, invoice.total, actor="test", paid_on=creditor_today("NO"), method="card")
            db.session.add(Payment(invoice_id=invoice.id, provider="manual", provider_payment_id=f"p{i}",
                                   amount=invoice.total, currency="NOK", received_at=seen + timedelta(days=2 + i)))
    db.session.flush()
    found = {r.variant.name: r for r in results(block)}
    assert (found["A"].seen, found["A"].paid, found["A"].clicked) == (6, 3, 3)
    assert (found["B"].seen, found["B"].paid, found["B"].clicked) == (4, 1, 2)
    assert found["A"].pay_rate.estimate == 0.5 and found["A"].pay_rate.low < 0.5 < found["A"].pay_rate.high
    assert abs(found["A"].days_to_pay.estimate - 3.0) < 0.01  # 2, 3 and 4 days
    assert found["A"].days_to_pay.low < 3.0 < found["A"].days_to_pay.high
    assert found["B"].days_to_pay.estimate == 8.0 and found["B"].days_to_pay.low is None  # one value: no interval
