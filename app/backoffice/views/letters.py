"""A customer's letters (dunning messages by post): the PDF of one as it was printed, and "print again".

- The PDF is the letter's latest print made again from what was stored, byte for byte (its SHA-256 is
  the one in the print batch's manifest): supervisors and admins only, since it carries the letter's
  live short code, and audited.
- "Print again" puts the letter into the next print batch: it is printed with a new link, and the
  link of the copy printed before stops working (it was lost, or did not arrive). Every agent of the
  creditor may ask, as every agent may send a new link; audited.
"""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import login_required

from app.backoffice.models import CASEWORK
from app.backoffice.views import SUPERVISING, bp, me, need, record, scoped
from app.dunning.letters.batch import copy_of, latest_print, request_reprint
from app.dunning.models import Letter
from app.errors import Conflict
from app.extensions import db

PRINTING = CASEWORK  # every case-working role at the letter's creditor may have it printed again


@bp.get("/letters/<int:letter_id>.pdf")
@login_required
def letter_pdf(letter_id: int):
    """The letter as it was last printed (supervisors and admins: it holds a working short code)."""
    found = scoped(Letter, letter_id)
    need(found.creditor_id, SUPERVISING)
    printed = latest_print(found)
    copy = copy_of(printed, current_app.config["PORTAL_BASE_URL"]) if printed is not None else None
    if copy is None or copy.pdf is None:
        abort(404)
    record("letter_downloaded", creditor_id=found.creditor_id, record_type="letter", record_id=found.id,
           batch=copy.print.batch.isoformat(), same=copy.same)
    db.session.commit()
    return Response(copy.pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{copy.print.file_name}"'})


@bp.post("/letters/<int:letter_id>/reprint")
@login_required
def reprint_letter(letter_id: int):
    """Print the letter again in the next batch, with a new link (the earlier copy's link then stops)."""
    found = scoped(Letter, letter_id)
    need(found.creditor_id, PRINTING)
    back = url_for(".customer", customer_id=found.customer_id)
    try:
        request_reprint(found, actor=f"agent:{me().id}")
    except Conflict:
        db.session.rollback()
        flash(_("Only a printed letter can be printed again: this one waits for the next batch, or was "
                "not printed because its bills were settled."), "problem")
        return redirect(back, code=303)
    record("letter_reprint_requested", creditor_id=found.creditor_id, record_type="letter", record_id=found.id)
    db.session.commit()
    flash(_("The letter will be printed again in the next print batch, with a new address to the bill; the "
            "address in the earlier copy stops working then."), "done")
    return redirect(back, code=303)
