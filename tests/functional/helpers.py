"""Helpers for functional tests: issue a link and open it through the test client."""

from app.extensions import db
from app.links.services import get_signer, issue_link


def issue(app, invoice, **kw):
    """Issue a link and commit, as the API or CLI would (a request's teardown drops uncommitted work)."""
    kw.setdefault("channel", "sms")
    kw.setdefault("ttl_days", 30)
    with app.test_request_context():
        issued = issue_link(invoice, signer=get_signer(), base_url=app.config["PORTAL_BASE_URL"], actor="test", **kw)
        db.session.commit()
    return issued


def open_bill(client, app, invoice, **kw):
    """Open a fresh link for `invoice`; returns the bill page URL path."""
    issued = issue(app, invoice, **kw)
    response = client.get(f"/l/{issued.token}")
    assert response.status_code == 303, response.status_code
    return response.headers["Location"]
