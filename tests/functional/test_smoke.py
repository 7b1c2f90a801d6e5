from app.links.services import get_signer, issue_link
from tests.factories import make_creditor, make_invoice


def test_link_opens_bill(client, session, app):
    creditor = make_creditor("NO")
    invoice = make_invoice(creditor, lines=3)
    with app.test_request_context():
        issued = issue_link(invoice, channel="sms", ttl_days=30, signer=get_signer(), base_url="https://x", actor="test")
    session.commit()
    r = client.get(f"/l/{issued.token}")
    assert r.status_code == 303
    r = client.get(r.headers["Location"])
    assert r.status_code == 200, r.text
    assert "Kari Nordmann" in r.text
