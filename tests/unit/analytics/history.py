"""A small reminder history whose funnel is worked out by hand (docs/analytics.md's definitions), built
from the real tables: bills through the factories, the rest as the dunning run, the link opening and
the settle path leave their rows.

Creditor in Norway (Oslo time). Week 1 begins Monday 2 November 2026, week 2 on 9 November, week 3 on
16 November. Every bill totals 125.01 NOK (12501 øre) and is due Monday 2 November.

| message | week | channel | step | lang | variant | status | what follows |
|---|---|---|---|---|---|---|---|
| m1 | 1 | sms | 1 | nb | A | opened 4 Nov | paid 5 Nov 12:00: attributed to m1, 2 days |
| m2 | 1 | sms | 1 | nb | B | delivered | paid 6 Nov, no link opened: direct |
| m3 | 1 | email | 1 | en | - | opened 4 Nov | paid 20 Nov, the opening 16 days before: direct |
| m4 | 1 | email | 2 | en | - | bounced | - |
| m5 | 1 | sms | 1 | nb | A | queued | - (not sent) |
| m6 | 2 | letter | 2 | nb | - | opened 12 Nov (short code) | paid 13 Nov: m6, 3 days |
| m7 | 2 | sms | 1 | nb | A | opened 11 Nov | (bill X) |
| m8 | 2 | email | 2 | en | - | opened 12 Nov 08:00 | bill X paid 12 Nov 09:00: the last touch is m8, 1 day |

Step 1 of the shipped Norwegian plan is the nudge before the due date (pre_due), step 2 a reminder.

Besides: bill I8 paid 5 Nov without any reminder (direct, paid before the first reminder); bill I9 handed
to the collection partner, who reports 50.00 paid on 11 Nov (counted apart); a test bill with an opened
reminder and a payment (never counted). Promises made in week 1: kept, broken, running; one plan kept.
"Was this bill clear?": yes on I1, no with a comment on I2 (and no on the test bill, and a yes in December,
outside the period).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.analytics.models import ClarityAnswer
from app.billing.models import Invoice, InvoiceEvent
from app.debt_collection.models import Case, Partner
from app.debt_collection.services import PROVIDER as PARTNER_PROVIDER
from app.dunning import services as dunning_services
from app.dunning.models import Message, Notice, Step
from app.dunning.settings import save_settings
from app.extensions import db
from app.links.models import AccessLink
from app.payments.models import Payment
from app.resolutions.models import Resolution
from tests.factories import make_creditor, make_invoice

WEEK1, WEEK2, WEEK3 = date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)
TODAY = date(2026, 11, 18)
TOTAL = 12501


def at(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class History:
    creditor: object
    plan: object
    messages: dict[str, Message] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)

    def bill(self, name: str, *, livemode: bool = True) -> Invoice:
        invoice = make_invoice(self.creditor, livemode=livemode, issue_date="2026-10-20", due_date="2026-11-02",
                               customer={"external_ref": f"C-{name}", "name": f"Kari {name}",
                                         "email": f"{name.lower()}@example.test", "phone": "+4791234567"})
        self.invoices[name] = invoice
        return invoice

    def message(self, name: str, invoice: Invoice, *, sent: datetime, channel: str, position: int, locale: str,
                variant: str | None, status: str, opened: datetime | None = None) -> Message:
        step = db.session.query(Step).filter_by(plan_id=self.plan.id, position=position).one()
        link = AccessLink(key_hash=secrets.token_hex(32), invoice_id=invoice.id, channel=channel, created_at=sent,
                          expires_at=sent + timedelta(days=60))
        db.session.add(link)
        db.session.flush()
        message = Message(creditor_id=self.creditor.id, customer_id=invoice.customer_id, channel=channel,
                          locale=locale, link_id=link.id, status=status, variant=variant, created_at=sent,
                          status_at=opened or sent)
        db.session.add(message)
        db.session.flush()
        db.session.add(Notice(creditor_id=self.creditor.id, invoice_id=invoice.id, customer_id=invoice.customer_id,
                              plan_id=self.plan.id, step_id=step.id, position=position, kind=step.kind,
                              status="sent", channel=channel, message_id=message.id, decided_on=sent.date(),
                              sent_at=sent))
        if opened is not None:
            self.open(message, opened)
        self.messages[name] = message
        return message

    def open(self, message: Message, when: datetime) -> None:
        link = db.session.get(AccessLink, message.link_id)
        db.session.add(InvoiceEvent(invoice_id=link.invoice_id, kind="link_opened", actor="customer",
                                    data={"link_id": link.id, "channel": link.channel}, created_at=when))
        db.session.flush()

    def pay(self, name: str, invoice: Invoice, when: datetime, amount: int = TOTAL, *, provider: str = "simulator",
            settle: bool = True) -> Payment:
        payment = Payment(invoice_id=invoice.id, provider=provider, provider_payment_id=secrets.token_hex(8),
                          amount=amount, currency="NOK", received_at=when)
        db.session.add(payment)
        invoice.amount_paid += amount
        if settle and invoice.amount_paid >= invoice.total:
            invoice.status = "paid"
        db.session.flush()
        self.payments[name] = payment
        return payment


def build() -> History:
    creditor = make_creditor("NO")
    save_settings(creditor, languages=["en", "nb"])
    plan = dunning_services.save_plan(creditor, dunning_services.shipped_plan("NO"), actor="test", today=WEEK1)
    h = History(creditor, plan)
    i1, i2, i3, i4, i5, i6, x = (h.bill(n) for n in ("I1", "I2", "I3", "I4", "I5", "I6", "X"))
    m1 = h.message("m1", i1, sent=at(3), channel="sms", position=1, locale="nb", variant="A", status="opened",
                   opened=at(4, 9))
    h.message("m2", i2, sent=at(3), channel="sms", position=1, locale="nb", variant="B", status="delivered")
    h.message("m3", i3, sent=at(3), channel="email", position=1, locale="en", variant=None, status="opened",
              opened=at(4, 9))
    h.message("m4", i4, sent=at(3), channel="email", position=2, locale="en", variant=None, status="bounced")
    h.message("m5", i5, sent=at(3), channel="sms", position=1, locale="nb", variant="A", status="queued")
    h.message("m6", i6, sent=at(10), channel="letter", position=2, locale="nb", variant=None, status="opened",
              opened=at(12, 9))
    h.message("m7", x, sent=at(10), channel="sms", position=1, locale="nb", variant="A", status="opened",
              opened=at(11, 8))
    h.message("m8", x, sent=at(10), channel="email", position=2, locale="en", variant=None, status="opened",
              opened=at(12, 8))
    h.pay("P1", i1, at(5, 12))
    h.pay("P2", i2, at(6, 12))
    h.pay("P3", i3, at(20, 12))
    h.pay("P4", i6, at(13, 12))
    h.pay("P5", x, at(12, 9))
    i8 = h.bill("I8")
    h.pay("P8", i8, at(5, 15))
    i9 = h.bill("I9")
    partner = Partner(slug=f"partner-{secrets.token_hex(3)}", name="Nordcollect", endpoint_url="https://partner.test/")
    db.session.add(partner)
    db.session.flush()
    db.session.add(Case(public_id=f"case_{secrets.token_hex(6)}", creditor_id=creditor.id, invoice_id=i9.id,
                        partner_id=partner.id, status="sent", currency="NOK", principal=TOTAL, fees=0, interest=0,
                        case_file={}, handed_off_by="scheduler", handed_off_at=at(10)))
    i9.status = "in_collection"
    h.pay("P6", i9, at(11, 12), 5000, provider=PARTNER_PROVIDER)
    test_bill = h.bill("T", livemode=False)
    h.message("mT", test_bill, sent=at(3), channel="sms", position=1, locale="nb", variant="A", status="opened",
              opened=at(4, 9))
    h.pay("PT", test_bill, at(5, 12))
    for n, (kind, status) in enumerate((("promise", "kept"), ("promise", "broken"), ("promise", "active"),
                                        ("plan", "kept"), ("promise", "declined"))):
        db.session.add(Resolution(reference=f"R{secrets.token_hex(5)}", creditor_id=creditor.id,
                                  invoice_id=i4.id if n % 2 else i5.id, kind=kind, status=status, locale="nb",
                                  submission_key=secrets.token_hex(8), created_at=at(4)))
    for invoice, clear, comment, when in ((i1, True, None, at(5, 13)), (i2, False, "What is this fee?", at(6, 13)),
                                          (test_bill, False, None, at(6, 13)), (i3, True, None, at(2, 9, month=12))):
        db.session.add(ClarityAnswer(creditor_id=creditor.id, invoice_id=invoice.id, place="bill", clear=clear,
                                     comment=comment, locale="nb", created_at=when, updated_at=when))
    db.session.flush()
    assert m1.id
    return h
