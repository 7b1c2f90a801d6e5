"""The codes stored as strings are StrEnums: members are their strings, groups are not members, and
the labelled ones have words for every member in every language, chosen when asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext

from app.audit import AuditActor, AuditScope
from app.backoffice.models import Role
from app.billing.models import InvoiceKind, InvoiceStatus, ReminderChannel
from app.content.models import Action as ContentAction
from app.content.models import Kind as ContentKind
from app.content.models import Placement
from app.core.enums import Codes, Labelled
from app.debt_collection.models import OPEN_CASES, CaseStatus
from app.dunning.models import (
    Anchor,
    ContactKind,
    Jurisdiction,
    LetterStatus,
    MessageStatus,
    NoticeStatus,
    StepKind,
)
from app.i18n import SUPPORTED_LOCALES
from app.outbox.models import OutboxStatus
from app.payments.bank.models import EntryStatus, KeptReason
from app.payments.gateways.base import PaymentStatus
from app.payments.models import PaymentMismatch
from app.privacy.models import MarkKind
from app.resolutions.models import Kind, Status
from app.support.models import RequestStatus

LABELLED = (InvoiceStatus, RequestStatus, Kind, Status, OutboxStatus, CaseStatus, Role, PaymentMismatch,
            ReminderChannel, StepKind, Jurisdiction, NoticeStatus, MessageStatus, InvoiceKind, ContentKind, Placement,
            ContentAction)
PLAIN = (EntryStatus, KeptReason, PaymentStatus, AuditActor, AuditScope, Anchor, LetterStatus, ContactKind, MarkKind)
ALL = (*LABELLED, *PLAIN)


def test_every_enum_of_codes_is_tested_here():
    assert set(Labelled.__subclasses__()) == set(LABELLED)
    assert set(Codes.__subclasses__()) - {Labelled} == set(PLAIN)


@pytest.mark.parametrize("enum", ALL, ids=lambda enum: enum.__name__)
def test_members_are_their_strings(enum):
    values = enum.values()
    assert values and all(type(value) is str for value in values)  # plain strings, for click and JSON
    assert list(enum) == [enum(value) for value in values]
    for member in enum:
        assert member == member.value and hash(member) == hash(member.value)
        assert f"{member}" == str(member) == member.value and json.dumps(member) == json.dumps(member.value)
        assert {member.value: True}[member]  # a value read from the database finds the member's entry


def test_groups_are_not_members():
    groups = [(InvoiceStatus, InvoiceStatus.CLOSED), (Status, Status.LIVE), (EntryStatus, EntryStatus.OPEN),
              (CaseStatus, CaseStatus.ACTIVE), (CaseStatus, CaseStatus.OPEN), (PaymentStatus, PaymentStatus.FINAL),
              (PaymentStatus, tuple(PaymentStatus.RANK)), (StepKind, StepKind.FINAL), (StepKind, StepKind.AFTER_DUE),
              (ReminderChannel, ReminderChannel.ELECTRONIC), (MessageStatus, MessageStatus.UNDELIVERED)]
    for enum, group in groups:
        assert isinstance(group, tuple) and set(group) <= set(enum.values()), (enum, group)
    assert set(PaymentStatus.RANK) == set(PaymentStatus)
    assert len(InvoiceStatus) == 8 and "CLOSED" not in InvoiceStatus.__members__
    assert [member.name for member in CaseStatus] == ["SENT", "ACKNOWLEDGED", "RECALL_REQUESTED", "RECALLED",
                                                      "CLOSED_PAID", "CLOSED_UNCOLLECTABLE", "RETURNED"]
    assert InvoiceStatus.OPEN == "open" and EntryStatus.OPEN == ("unmatched", "ambiguous")


def test_payment_statuses_have_no_words_in_the_pure_gateway_module():
    assert not hasattr(PaymentStatus.SUCCEEDED, "label")
    assert PaymentStatus.moves_forward(PaymentStatus.PENDING, "succeeded")
    assert not PaymentStatus.moves_forward("succeeded", PaymentStatus.FAILED)


def test_sql_in_lists_the_codes():
    assert RequestStatus.sql_in("status") == "status IN ('open', 'answered', 'closed')"
    assert OPEN_CASES == "status IN ('sent', 'acknowledged', 'recall_requested')"  # migration 0007's, word for word
    migration = (Path(__file__).parents[2] / "migrations/versions/0007_debt_collection.py").read_text()
    assert f'OPEN_CASES = "{OPEN_CASES}"' in migration
    with pytest.raises(ValueError):
        CaseStatus.sql_in("status", ["sent", "lost"])


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("enum", LABELLED, ids=lambda enum: enum.__name__)
def test_every_member_has_words_in_every_language(app, enum, locale):
    with app.test_request_context(), force_locale("en"):
        english = [member.label for member in enum]
    with app.test_request_context(), force_locale(locale):
        assert set(enum.words()) == set(enum)
        labels = [member.label for member in enum]
        assert all(label.strip() for label in labels), labels
        assert [enum.label_of(member.value) for member in enum] == labels
    # Distinct in the source language (German says "abgelehnt" for a rejected dispute and a declined request).
    assert len(set(english)) == len(english), f"two members of {enum.__name__} read the same: {english}"
    if locale != "en":
        assert labels != english, "labels are translated when asked for, in the reader's language"


def test_label_of_is_tolerant(app):
    with app.test_request_context(), force_locale("en"):
        assert InvoiceStatus.label_of("partially_paid") == InvoiceStatus.PARTIALLY_PAID.label == "partly paid"
        assert InvoiceStatus.label_of("no_such_status") == "no_such_status"  # an old or foreign code, as it is
        assert InvoiceStatus.label_of("") == "" and InvoiceStatus.label_of(None) == ""
        assert Role.label_of(None) == "" and Status.label_of("cancelled") == "ended"
        assert RequestStatus.label_of(RequestStatus.OPEN) == "Waiting for our answer"
    with app.test_request_context(), force_locale("nb"):
        assert InvoiceStatus.label_of("partially_paid") == gettext("partly paid") != "partly paid"
        assert CaseStatus.label_of("lost") == "lost"
