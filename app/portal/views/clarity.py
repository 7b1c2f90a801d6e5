""""Was this bill clear?": the one-tap form at the end of the bill page and on a receipt posts here
(CSRF; no script needed), then the customer sees a thank-you page. The form is static HTML in the
cached bill page (its CSRF token is the page cache's stand-in, replaced per response), so the bill
page reads nothing more for it. docs/analytics.md."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _

from app.access.guard import bill_required, load_bill_or_404
from app.access.services import BillAccess
from app.analytics import clarity as service
from app.errors import InvalidData
from app.extensions import db, limiter
from app.i18n import select_locale
from app.portal.views import bp


def _limit() -> str:
    return current_app.config["SELF_SERVICE_RATE_LIMIT"]


def _problems(errors: dict[str, str]) -> list[str]:
    words = {"place": _("Please answer yes or no."), "clear": _("Please answer yes or no."),
             "comment": _("Please keep your comment under %(n)s characters.", n=format_number(service.COMMENT_MAX))}
    said: list[str] = []
    for name in errors:
        if words[name] not in said:
            said.append(words[name])
    return said


@bp.post("/b/<public_id>/clear")
@limiter.limit(_limit, methods=["POST"])
@bill_required
def clarity(public_id: str, access: BillAccess):
    """Record the customer's answer and comment, then thank them (POST-redirect-GET)."""
    invoice = load_bill_or_404(public_id)
    form = request.form
    try:
        place, clear, comment = service.check(form.get("place"), form.get("clear"), form.get("comment"))
        service.answer(invoice, place=place, clear=clear, comment=comment, locale=select_locale(),
                       session_key=form.get("csrf_token", ""), attachment_dir=current_app.config["ATTACHMENT_DIR"])
    except InvalidData as exc:
        db.session.rollback()
        shown = form.get("place", "") if form.get("place") in service.PLACES else "bill"
        return render_template("portal/clarity.html", invoice=invoice, creditor=invoice.creditor, place=shown,
                               problems=_problems(exc.errors),
                               comment=(form.get("comment") or "")[:service.COMMENT_MAX]), 422
    db.session.commit()
    return redirect(url_for(".clarity_thanks", public_id=public_id, said="yes" if clear else "no",
                            commented="1" if comment else "0"), code=303)


@bp.get("/b/<public_id>/clear")
@bill_required
def clarity_thanks(public_id: str, access: BillAccess):
    """Thank you, and the way back to the bill."""
    invoice = load_bill_or_404(public_id)
    return render_template("portal/clarity.html", invoice=invoice, creditor=invoice.creditor, problems=[],
                           said=request.args.get("said"), commented=request.args.get("commented") == "1")
