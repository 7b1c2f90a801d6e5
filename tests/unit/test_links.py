from datetime import timedelta

import pytest

from app.billing.models import InvoiceStatus
from app.billing.services import transition
from app.extensions import db
from app.links.services import issue_link, record_open, resolve_token, revoke_links
from app.links.signer import LinkSigner, hash_key
from app.models import utcnow
from tests.factories import make_creditor, make_invoice
from tests.support.database import recorded_statements

KEYS = ["new-key-" + "a" * 40, "old-key-" + "b" * 40]


@pytest.fixture
def signer():
    return LinkSigner(KEYS, max_age_seconds=400 * 86400)


@pytest.fixture
def invoice(session):
    return make_invoice(make_creditor("NO"))


def issue(invoice, signer, **kw):
    kw.setdefault("channel", "sms")
    kw.setdefault("ttl_days", 30)
    return issue_link(invoice, signer=signer, base_url="https://pay.example.test", actor="test", **kw)


def test_token_is_short_and_reveals_nothing(invoice, signer):
    issued = issue(invoice, signer)
    assert len(issued.token) < 80
    assert issued.url == f"https://pay.example.test/l/{issued.token}"
    for secret in (invoice.number, invoice.public_id, invoice.customer.name, str(invoice.total)):
        assert secret not in issued.url
    # only the hash of the key is stored
    assert issued.link.key_hash == hash_key(signer.unsign(issued.token, "bill"))


def test_creditor_portal_domain_is_used(session, signer):
    creditor = make_creditor("NO", portal_base_url="https://betal.fjordlys.no")
    issued = issue(make_invoice(creditor), signer)
    assert issued.url.startswith("https://betal.fjordlys.no/l/")


def test_resolve_valid(invoice, signer):
    issued = issue(invoice, signer)
    res = resolve_token(issued.token, signer=signer)
    assert res.ok and res.invoice_id == invoice.id and res.link_id == issued.link.id
    assert res.public_id == invoice.public_id and res.channel == issued.link.channel


def count_statements(engine, fn):
    with recorded_statements(engine) as statements:
        result = fn()
    return result, statements


def test_forged_token_does_no_database_work(app, invoice, signer):
    issued = issue(invoice, signer)
    # change a character in the middle of the MAC (the last base64 character has spare bits)
    i = len(issued.token) - 10
    forged = issued.token[:i] + ("A" if issued.token[i] != "A" else "B") + issued.token[i + 1 :]
    with app.app_context():
        engine = db.engine
    res, statements = count_statements(engine, lambda: resolve_token(forged, signer=signer))
    assert not res.ok and res.creditor is None
    assert statements == []


def test_other_purpose_or_other_keys_do_not_verify(invoice, signer):
    issued = issue(invoice, signer)
    assert signer.unsign(issued.token, "receipt") is None
    assert LinkSigner(["someone-else-" + "c" * 40], 86400).unsign(issued.token, "bill") is None


def test_key_rotation_old_tokens_still_verify(invoice):
    old_signer = LinkSigner(KEYS[1:], 400 * 86400)
    issued = issue(invoice, old_signer)
    rotated = LinkSigner(KEYS, 400 * 86400)
    assert resolve_token(issued.token, signer=rotated).ok
    # once the old key is dropped, the old token is dead
    assert not resolve_token(issued.token, signer=LinkSigner(KEYS[:1], 400 * 86400)).ok


def test_expired_revoked_and_closed_give_the_creditor_only(invoice, signer):
    expired = issue(invoice, signer, ttl_days=1)
    res = resolve_token(expired.token, signer=signer, now=utcnow() + timedelta(days=2))
    assert not res.ok and res.creditor.id == invoice.creditor_id and res.invoice_id is None

    revoked = issue(invoice, signer)
    assert revoke_links(invoice, actor="test") == 2
    res = resolve_token(revoked.token, signer=signer)
    assert not res.ok and res.creditor is not None

    fresh = issue(invoice, signer)
    transition(invoice, InvoiceStatus.CANCELLED, actor="test")
    assert not resolve_token(fresh.token, signer=signer).ok


def test_signature_max_age_is_a_hard_cap(invoice):
    short = LinkSigner(KEYS, max_age_seconds=-1)
    issued = issue(invoice, LinkSigner(KEYS, 86400))
    assert short.unsign(issued.token, "bill") is None


@pytest.mark.parametrize("ttl", [0, -1, 366, "30", None, True])
def test_bad_ttl_or_channel(invoice, signer, ttl):
    from app.errors import InvalidData

    with pytest.raises(InvalidData):
        issue(invoice, signer, ttl_days=ttl)
    with pytest.raises(InvalidData):
        issue(invoice, signer, channel="pigeon")


def test_opened_event_is_recorded_once_per_interval(invoice, signer):
    issued = issue(invoice, signer)
    now = utcnow()
    res = resolve_token(issued.token, signer=signer)
    assert record_open(res, interval_minutes=30, now=now)
    assert not record_open(res, interval_minutes=30, now=now + timedelta(minutes=5))
    assert record_open(res, interval_minutes=30, now=now + timedelta(minutes=31))
    assert issued.link.open_count == 2
    assert [e.kind for e in invoice.events].count("link_opened") == 2


@pytest.mark.parametrize("junk", ["", "x", "a.b.c", "A" * 200, "ünïcode.1.2"])
def test_junk_tokens(signer, junk):
    assert signer.unsign(junk, "bill") is None
