"""A customer's contact points and preferences: every problem at once, by field, nothing changed."""

from __future__ import annotations

import pytest

from app.dunning import services
from app.errors import InvalidData
from tests.factories import make_creditor, make_invoice


@pytest.fixture
def person(ctx):
    return make_invoice(make_creditor("NO")).customer


@pytest.mark.parametrize(("data", "errors"), [
    ({"phone": "91234567"}, {"phone": "not a mobile number in international form (E.164, e.g. +4791234567)"}),
    ({"phone": "+0123456789"}, {"phone": "not a mobile number in international form (E.164, e.g. +4791234567)"}),
    ({"email": "kari@"}, {"email": "not an e-mail address"}),
    ({"address": {"line1": "Storgata 1", "postcode": "150", "city": "Oslo", "country": "NO"}},
     {"address.postcode": "not a postcode of NO"}),
    ({"address": {"line1": "Hauptstr. 1", "postcode": "0417", "city": "Leipzig", "country": "DE"}},
     {"address.postcode": "not a postcode of DE"}),
    ({"address": {"line1": "", "postcode": "0150", "city": "", "country": "XX"}},
     {"address.country": "a country code (ISO 3166, two letters: NO, DE, IE)", "address.line1": "required",
      "address.city": "required"}),
    ({"address": "Storgata 1, Oslo"}, {"address": "an object with line1, line2, postcode, city, country"}),
    ({"preferred_channel": "fax"}, {"preferred_channel": "one of sms, email, letter, or none"}),
    ({"preferred_locale": "fr"}, {"preferred_locale": "one of en, nb, de"}),
    ({"time_zone": "Mars/Olympus"}, {"time_zone": "a time zone name (Europe/Oslo)"}),
    ({"sms_allowed": "no"}, {"sms_allowed": "true or false"}),
    ({"phone": "123", "email": "x", "fax": "1"}, {"contact": "unknown fields: fax", "email": "not an e-mail address",
                                                 "phone": "not a mobile number in international form (E.164, e.g. "
                                                          "+4791234567)"}),
])
def test_bad_contact_points_are_refused_by_field_and_nothing_changes(person, data, errors):
    before = (person.phone, person.email, person.postcode, person.preferred_channel, person.sms_allowed)
    with pytest.raises(InvalidData) as caught:
        services.update_contact_points(person, data)
    assert caught.value.errors == errors
    assert (person.phone, person.email, person.postcode, person.preferred_channel, person.sms_allowed) == before


def test_good_contact_points_are_cleaned_and_kept(person):
    services.update_contact_points(person, {
        "phone": "+47 (912) 34-568", "email": " kari@example.test ", "preferred_channel": "email",
        "address": {"line1": "Kirkegata 2", "postcode": "0153", "city": "Oslo", "country": "no"},
        "electronic_notices_allowed": True, "time_zone": "Europe/Oslo", "preferred_locale": "nb-NO"})
    assert (person.phone, person.email, person.preferred_channel) == ("+4791234568", "kari@example.test", "email")
    assert (person.address_line1, person.postcode, person.country, person.electronic_notices_allowed) == (
        "Kirkegata 2", "0153", "NO", True)
    assert (person.time_zone, person.preferred_locale) == ("Europe/Oslo", "nb")
    services.update_contact_points(person, {"preferred_channel": None, "address": {
        "line1": "Main St 1", "postcode": "D02 X285", "city": "Dublin", "country": "IE"}})
    assert person.preferred_channel is None and person.postcode == "D02 X285"
