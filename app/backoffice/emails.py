"""The e-mail that brings an agent the one-time code to set up their second factor again, after an
admin reset it ("agent.enrolment_code" outbox messages, to the agent's own address).

Rendered by the dispatcher in the message's locale. The code is made here, at delivery: only its
hash is stored, so it cannot wait in the outbox, and it is committed only if the e-mail went out."""

from __future__ import annotations

from flask_babel import gettext as _

from app.backoffice.models import Agent
from app.backoffice.services import ENROLMENT_CODE_HOURS, issue_enrolment_code
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.outbox.base import DeliveryError
from app.outbox.email import Notice, RenderedEmail, notice_email
from app.outbox.models import OutboxMessage


def render_email(message: OutboxMessage) -> RenderedEmail:
    agent = db.session.get(Agent, (message.payload or {}).get("agent_id") or 0)
    if agent is None:
        raise DeliveryError("the agent of this e-mail no longer exists", permanent=True)
    if agent.email != (message.recipient or "").strip().lower():
        raise DeliveryError("the agent's address changed since the reset", permanent=True)
    try:
        code = issue_enrolment_code(agent, utcnow())
    except InvalidData:
        raise DeliveryError("no reset of this agent's second factor waits for a code", permanent=True) from None
    notice = Notice(
        subject=_("Your code to set up the second sign-in step again"),
        heading=_("Set up the second sign-in step again"),
        paragraphs=[
            _("An admin has reset the second step of your sign-in to the back office. At your next sign-in, "
              "enter your password, then this one-time code, then set up your authenticator app again."),
            _("The code works once, for %(hours)d hours. If you did not ask for this, tell your admin at once.",
              hours=ENROLMENT_CODE_HOURS),
        ],
        facts=[(_("One-time code"), code)],
        why=_("You receive this e-mail because you have an account in the back office."),
    )
    return notice_email(notice, None, locale=message.locale)
