"""The back office's pages, one module per part, all on one blueprint (`bp`):

- auth: sign-in (password, then a second factor enrolled at the first sign-in), sessions;
- inbox: the one inbox, assigning and marking items, search, CSV export;
- cases: a customer's whole story, notes, a bill's page and what an agent does to it;
- letters: a customer's letters: the PDF as printed, and printing one again;
- answers: conversations (reply, close) and decisions (disputes, requests for time or a plan);
- money: payments recorded by hand, refunds, kept bank credits, dead letters;
- admin: the overview, reply templates, agents, the audit log;
- analytics: the reminders' funnel and what became of the bills, per creditor, and its CSV;
- console: the creditor console (creditor admins): brand, payments and keys, rules, API keys;
- webhooks: the console's webhook endpoints, their delivery log and replay.

Everything here is no-store, limited to the agent's creditors through one `Scope`, and recorded
in the audit log: every sign-in and refusal, every page that shows a customer's data, every
action. Actions need a role where it matters (`need`); a record of another creditor is a 404.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user

from app.audit import audit
from app.backoffice import services, words
from app.backoffice.models import CASEWORK, CONSOLE, CONTENT, Agent, Role
from app.creditors.models import Creditor
from app.extensions import db
from app.i18n import language_switch

bp = Blueprint("backoffice", __name__)
bp.context_processor(words.template_words)

SUPERVISING = services.SUPERVISING
ADMIN = (Role.ADMIN,)
CONSOLE_ROLES = CONSOLE
CONTENT_ROLES = CONTENT


@bp.before_request
def _session_limits():
    """No caching anywhere; an agent's session ends after BACKOFFICE_IDLE_MINUTES without a request
    and BACKOFFICE_SESSION_HOURS after signing in, whatever happens in between."""
    language_switch()  # ?lang=xx, as on the customer pages; sets no-store
    g.creditor_locale = "en"
    if not current_user.is_authenticated:
        return None
    now, config = int(time.time()), current_app.config
    since, seen = session.get("bo_since", 0), session.get("bo_seen", 0)
    if now - seen > config["BACKOFFICE_IDLE_MINUTES"] * 60 or now - since > config["BACKOFFICE_SESSION_HOURS"] * 3600:
        from app.backoffice.views.auth import end_session

        end_session()
        db.session.commit()
        return redirect(url_for("backoffice.sign_in", expired=1))
    session["bo_seen"] = now
    return None


def me() -> Agent:
    return current_user._get_current_object()


def scope(roles: tuple[str, ...] = CASEWORK) -> services.Scope:
    """The creditors the signed-in agent may see (with one of `roles`; by default a case-working one)."""
    return services.scope_of(me(), roles)


def scope_needing(roles: tuple[str, ...], refusal: int = 403) -> services.Scope:
    """The creditors where the agent holds one of `roles`; `refusal` (403) when there are none."""
    found = scope(roles)
    if not found.creditor_ids:
        abort(refusal)
    return found


def console_creditor(creditor_id: int, roles: tuple[str, ...] = CONSOLE) -> Creditor:
    """The creditor of a console page (`/console/<creditor_id>/...`), if the signed-in agent holds one of
    `roles` there (the console's: creditor admin; the content pages': content editor too): 404 for a
    creditor they do not work for, 403 for one where they hold another role."""
    if not scope(roles).allows(creditor_id):
        abort(403 if me().role_for(creditor_id) else 404)
    creditor = db.session.get(Creditor, creditor_id)
    if creditor is None:
        abort(404)
    return creditor


def need(creditor_id: int, roles: tuple[str, ...]) -> None:
    """403 unless the agent holds one of `roles` at this creditor (they can see it: a 404 came first)."""
    if me().role_for(creditor_id) not in roles:
        abort(403)


def may(creditor_id: int, roles: tuple[str, ...]) -> bool:
    return me().role_for(creditor_id) in roles


def client_ip() -> str | None:
    return request.remote_addr


def record(action: str, *, creditor_id: int | None = None, creditor_ids: Any = None, record_type: str | None = None,
           record_id: Any = None, **detail) -> None:
    """An audit entry for what the signed-in agent looked at or did, from this request's address: about
    one creditor (`creditor_id`), or several (`creditor_ids`: by default every creditor the agent may
    see, where an inbox, a search or an overview looked). Only a reader who may see every one of them
    reads it (`services.audit_entries`)."""
    if creditor_id is None and creditor_ids is None:
        creditor_ids = scope().creditor_ids
    audit(me(), action, creditor_id=creditor_id, creditor_ids=creditor_ids, record_type=record_type,
                   record_id=record_id, ip=client_ip(), **detail)


def scoped(model, ident):
    """The record of `model` with this id among the agent's creditors', or 404."""
    found = scope().get(model, ident)
    if found is None:
        abort(404)
    return found


def by_reference(model, reference: str):
    """The record of `model` with this reference among the agent's creditors', or 404."""
    if not reference or len(reference) > 16:
        abort(404)
    found = db.session.scalar(scope().select(model).where(model.reference == reference))
    if found is None:
        abort(404)
    return found


from app.backoffice.views import (  # noqa: E402,F401  (their routes)
    admin,
    analytics,
    answers,
    auth,
    cases,
    console,
    content,
    inbox,
    letters,
    money,
    plans,
    privacy,
    webhooks,
)
