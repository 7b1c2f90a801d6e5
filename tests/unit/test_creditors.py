import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.creditors.models import Creditor
from app.creditors.services import (
    CreditorInput,
    create_api_key,
    create_creditor,
    creditor_for_api_key,
    revoke_api_keys,
    set_logo,
    sniff_logo,
)
from app.errors import InvalidData
from app.extensions import db
from tests.factories import make_creditor


def base(**kw):
    fields = {"slug": "acme", "name": "Acme", "country": "no", "default_locale": "nb", "currency": "nok",
              "reference_scheme": "kid_mod11", "bank_account_no": "1503 20 80119"}
    fields.update(kw)
    return CreditorInput(**fields)


def test_valid_creditor_is_normalised(session):
    creditor = create_creditor(base())
    assert (creditor.country, creditor.currency, creditor.bank_account_no) == ("NO", "NOK", "15032080119")


def test_every_problem_is_reported_and_nothing_written(session):
    with pytest.raises(InvalidData) as info:
        create_creditor(base(slug="A!", country="Norway", default_locale="fr", currency="XXQ", iban="DE00 1234",
                             bic="nope", bank_account_no="12345678901", brand_primary="red", support_email="x@",
                             support_phone="12345", reference_scheme="ocr", step_up_mode="face"))
    assert set(info.value.errors) >= {"slug", "country", "default_locale", "currency", "iban", "bic",
                                      "bank_account_no", "brand_primary", "support_email", "support_phone",
                                      "reference_scheme", "step_up_mode"}
    assert session.scalar(select(func.count()).select_from(Creditor)) == 0


def test_scheme_needs_matching_account(session):
    with pytest.raises(InvalidData) as info:
        create_creditor(base(bank_account_no=None, reference_scheme="kid_mod10"))
    assert "bank_account_no" in info.value.errors
    with pytest.raises(InvalidData) as info:
        create_creditor(base(reference_scheme="rf"))
    assert "iban" in info.value.errors


def test_low_contrast_brand_colours_are_adjusted_with_a_note(session):
    data = base(brand_primary="#FFD400", brand_accent="#1f4b99")
    creditor = create_creditor(data)
    assert creditor.brand_primary != "#ffd400" and creditor.brand_accent == "#1f4b99"
    assert any("brand_primary" in note for note in data.notes)


def test_slug_is_unique(session):
    create_creditor(base())
    with pytest.raises(InvalidData) as info:
        create_creditor(base())
    assert info.value.errors == {"slug": "already taken"}


def test_api_keys_are_hashed_and_revocable(session):
    creditor = make_creditor("NO")
    key = create_api_key(creditor, label="erp")
    assert key.startswith("pk_") and len(key) > 40
    assert creditor.api_keys[0].key_hash != key and key not in creditor.api_keys[0].key_hash
    assert creditor_for_api_key(key).id == creditor.id
    assert creditor_for_api_key(key + "x") is None and creditor_for_api_key("") is None
    revoke_api_keys(creditor)
    assert creditor_for_api_key(key) is None


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 0)).save(out, "PNG")
    return out.getvalue()


def _stored_before_the_checks(creditor, content: bytes) -> None:
    """A logo stored as it was before logos were checked by content (its bytes, set directly)."""
    creditor.logo, creditor.logo_mime, creditor.logo_version = content, "image/svg+xml", "0123456789ab"
    db.session.flush()


def test_logo_types_are_sniffed_from_content(session):
    assert sniff_logo(_png()) == "image/png"
    with pytest.raises(InvalidData):  # PNG's magic bytes, but no image after them
        sniff_logo(b"\x89PNG\r\n\x1a\n....")
    assert sniff_logo(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>') == "image/svg+xml"
    for bad in (b"MZ\x90\x00 executable", b"%PDF-1.7", b"\x89PNG" + b"x" * 300 * 1024):
        with pytest.raises(InvalidData):
            sniff_logo(bad)
    creditor = make_creditor("NO")
    set_logo(creditor, b"<svg xmlns='http://www.w3.org/2000/svg'><title>x</title></svg>")
    assert creditor.logo_mime == "image/svg+xml" and len(creditor.logo_version) == 12


def test_logo_is_served_with_a_sandbox(client, session):
    creditor = make_creditor("NO")
    script = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    with pytest.raises(InvalidData):
        set_logo(creditor, script)  # refused today; one stored before the check is still sandboxed
    _stored_before_the_checks(creditor, script)
    session.commit()
    response = client.get(f"/brand/{creditor.slug}/logo?v={creditor.logo_version}")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert "immutable" in response.headers["Cache-Control"]
    assert client.get("/brand/nobody/logo").status_code == 404
