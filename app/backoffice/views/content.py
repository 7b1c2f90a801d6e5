"""Content blocks in the creditor console (docs/content.md): a content editor or a creditor admin writes
the creditor's blocks (texts per language, image, call to action, schedule, placements, targeting),
adds and stops variants, reads each variant's results and the leads.

Every route names its creditor and needs one of those roles there (another creditor: 404; an agent of
this one: 403). Every change is audited (the fields changed, before and after; texts by language);
bad input is shown next to its field, translated, and changes nothing (422)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from app.backoffice.models import Role
from app.backoffice.views import CONTENT_ROLES, bp, console_creditor, me, record
from app.content import results as content_results
from app.content import services as content
from app.content.models import Action, Block, Kind, Placement, Variant
from app.content.targeting import STATUSES
from app.core.dates import parse_date
from app.creditors.models import Creditor
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow
from app.money import parse_amount, to_decimal


def _creditor(creditor_id: int) -> Creditor:
    """The creditor, if the signed-in agent writes its content (a content editor or a creditor admin)."""
    return console_creditor(creditor_id, CONTENT_ROLES)


def _block(creditor: Creditor, public_id: str) -> Block:
    found = content.find_block(creditor.id, public_id)
    if found is None:
        abort(404)
    return found


def _page(template: str, creditor: Creditor, status: int = 200, **context):
    return render_template(f"backoffice/console/{template}", creditor=creditor, section="content",
                           content_only=me().role_for(creditor.id) == Role.CONTENT_EDITOR,
                           locales=content.LOCALES, **context), status


def _words() -> dict[str, Any]:
    return {
        "kinds": Kind.words(), "placements": Placement.words(), "actions": Action.words(),
        "statuses": {"not_due": _("Not due yet"), "due_soon": _("Due within a week"), "overdue": _("Overdue"),
                     "paid": _("Paid"), "plan": _("In an instalment plan")},
        "locales": {"en": _("English"), "nb": _("Norwegian"), "de": _("German")},
        "channels": {"sms": _("A link in an SMS"), "email": _("A link in an e-mail"),
                     "letter": _("A letter's link or code"), "api": _("A link your systems sent")},
    }


def _problem(name: str, code: str) -> str:
    if name == "name":
        return _("Please give the block a name of at most 100 characters, without markup.")
    if name.endswith("_title"):
        return _("Please write a title of at most 120 characters, as plain text (no HTML).")
    if name.endswith("_body"):
        return _("Please keep the text to at most 2,000 characters of plain text with **bold**, *italic*, lists and "
                 "links starting with https://; HTML and other links are not allowed.")
    if name.endswith("_cta"):
        return _("Please write the button's words (at most 40 characters, plain text) in each language you fill in.")
    if name == "texts":
        return _("Please write the title in at least one language.")
    if name == "target_url":
        if code == "no_link":
            return _("Only a block whose call to action is a link has an address.")
        return _("Please enter the address of your site, starting with https://.")
    if name == "ends_on":
        return _("Please enter dates such as 2026-12-31, the last day on or after the first.")
    if name == "cap_days":
        return _("Please enter a number of days from 1 to 365, or leave it empty.")
    if name == "priority":
        return _("Please enter a whole number from -1000 to 1000.")
    if name in ("amount_min", "amount_max"):
        return _("Please enter an amount, such as 125.50, the highest at least the lowest.")
    if name in ("bills_min", "bills_max"):
        return _("Please enter a whole number, zero or more, the highest at least the lowest.")
    if name in ("countries", "tags", "product_codes", "statuses", "languages", "channels"):
        return _("Please list codes of letters, digits and _.:- separated by commas (countries as two capital "
                 "letters, such as NO, DE).")
    if name == "image":
        return _("Please choose a PNG or JPEG image of at most 2 MB.")
    if name == "variant_name":
        return _("Please name the variant with letters, digits, spaces, _ or - (at most 40), a name not used yet.")
    if name == "weight":
        return _("Please enter a weight from 1 to 100.")
    if name == "content_max_blocks":
        return _("Please choose from 0 to %(most)s.", most=content.MAX_BLOCKS_PER_PAGE)
    return _("Please choose one of the options.")


def _problems(errors: dict[str, str]) -> dict[str, str]:
    return {name: _problem(name, code) for name, code in errors.items()}


def _whole(text: str | None, errors: dict[str, str], name: str, *, signed: bool = False) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    digits = text[1:] if signed and text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 9):
        errors[name] = "number"
        return None
    return int(text)


def _codes(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").replace(";", ",").split(",") if part.strip()]


def _texts(form: MultiDict) -> dict[str, dict[str, str]]:
    return {locale: {"title": form.get(f"{locale}_title", ""), "body": form.get(f"{locale}_body", ""),
                     "cta": form.get(f"{locale}_cta", "")} for locale in content.LOCALES}


def _given(form: MultiDict, creditor: Creditor) -> dict[str, Any]:
    """What the form says, in the services' terms; a number or date that is none is an error at once."""
    errors: dict[str, str] = {}
    given: dict[str, Any] = {
        "name": form.get("name", ""), "kind": form.get("kind"), "placements": form.getlist("placements"),
        "action": form.get("action") or Action.NONE, "target_url": form.get("target_url", ""),
        "languages": form.getlist("languages"), "statuses": form.getlist("statuses"),
        "channels": form.getlist("channels"),
        "countries": [c.upper() for c in _codes(form.get("countries"))], "tags": _codes(form.get("tags")),
        "product_codes": _codes(form.get("product_codes")),
        "texts": _texts(form),
    }
    given["priority"] = _whole(form.get("priority"), errors, "priority", signed=True) or 0
    given["cap_days"] = _whole(form.get("cap_days"), errors, "cap_days")
    for name in ("bills_min", "bills_max"):
        given[name] = _whole(form.get(name), errors, name)
    for name in ("amount_min", "amount_max"):
        text = (form.get(name) or "").strip()
        try:
            given[name] = parse_amount(text, creditor.currency) if text else None
        except ValueError:
            errors[name] = "amount"
    for name in ("starts_on", "ends_on"):
        text = (form.get(name) or "").strip()
        given[name] = parse_date(text) if text else None
        if text and given[name] is None:
            errors["ends_on"] = "date"
    if errors:
        raise InvalidData(errors)
    return given


def _values(block: Block | None, creditor: Creditor) -> dict[str, Any]:
    """The form's values for a block (a new one: the defaults)."""
    if block is None:
        return {"kind": Kind.INFORMATION, "placements": [Placement.BILL], "action": Action.NONE, "priority": 0,
                "languages": [], "statuses": [], "channels": []}
    rules = block.targeting or {}
    values: dict[str, Any] = {
        "name": block.name, "kind": block.kind, "placements": block.placements, "priority": block.priority,
        "starts_on": block.starts_on.isoformat() if block.starts_on else "",
        "ends_on": block.ends_on.isoformat() if block.ends_on else "",
        "action": block.action, "target_url": block.target_url or "", "cap_days": block.cap_days or "",
        "languages": rules.get("languages", []), "statuses": rules.get("statuses", []),
        "channels": rules.get("channels", []),
        "bills_min": rules.get("bills_min", ""), "bills_max": rules.get("bills_max", ""),
    }
    for name in ("countries", "tags", "product_codes"):
        values[name] = ", ".join(rules.get(name, []))
    for name in ("amount_min", "amount_max"):
        values[name] = "" if rules.get(name) is None else str(to_decimal(rules[name], creditor.currency))
    for locale, text in (block.variants[0].texts or {}).items():
        for field in ("title", "body", "cta"):
            values[f"{locale}_{field}"] = text.get(field, "")
    return values


def _form_values(form: MultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {name: form.get(name, "") for name in form}
    for name in ("placements", "languages", "statuses", "channels"):
        values[name] = form.getlist(name)
    return values


# --- the list ------------------------------------------------------------------------------------------


@bp.get("/console/<int:creditor_id>/content")
@login_required
def console_content(creditor_id: int):
    """The creditor's blocks, newest settings first, with the most blocks a page shows."""
    creditor = _creditor(creditor_id)
    blocks = content.blocks_of(creditor.id)
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id, page="content")
    db.session.commit()
    return _page("content.html", creditor, blocks=blocks, words=_words(), problems={},
                 most=content.MAX_BLOCKS_PER_PAGE)


@bp.post("/console/<int:creditor_id>/content/settings")
@login_required
def console_content_settings(creditor_id: int):
    creditor = _creditor(creditor_id)
    before = creditor.content_max_blocks
    errors: dict[str, str] = {}
    most = _whole(request.form.get("content_max_blocks"), errors, "content_max_blocks")
    try:
        if errors or most is None:
            raise InvalidData({"content_max_blocks": "max_blocks"})
        content.set_max_blocks(creditor, most)
    except InvalidData as exc:
        db.session.rollback()
        creditor = _creditor(creditor_id)
        return _page("content.html", creditor, 422, blocks=content.blocks_of(creditor.id), words=_words(),
                     problems=_problems(exc.errors), most=content.MAX_BLOCKS_PER_PAGE)
    record("console_content_settings_changed", creditor_id=creditor.id, record_type="creditor",
           record_id=creditor.id, changes={"content_max_blocks": [before, most]} if before != most else {})
    db.session.commit()
    flash(_("The settings are saved."), "done")
    return redirect(url_for(".console_content", creditor_id=creditor.id), code=303)


# --- one block -----------------------------------------------------------------------------------------


def _block_page(creditor: Creditor, block: Block | None, values: dict[str, Any],
                problems: dict[str, str] | None = None, status: int = 200):
    found = content_results.results(block) if block is not None else []
    return _page("content_block.html", creditor, status, block=block, values=values, problems=problems or {},
                 words=_words(), statuses=STATUSES, results=found, image_max_mb=content.IMAGE_MAX_BYTES // 2**20)


@bp.get("/console/<int:creditor_id>/content/new")
@login_required
def console_content_new(creditor_id: int):
    creditor = _creditor(creditor_id)
    return _block_page(creditor, None, _values(None, creditor))


@bp.post("/console/<int:creditor_id>/content/new")
@login_required
def console_content_create(creditor_id: int):
    """A new block (live: test blocks come through a test API key)."""
    creditor = _creditor(creditor_id)
    try:
        block = content.create_block(creditor, _given(request.form, creditor))
    except InvalidData as exc:
        db.session.rollback()
        creditor = _creditor(creditor_id)
        return _block_page(creditor, None, _form_values(request.form), _problems(exc.errors), 422)
    record("console_content_created", creditor_id=creditor.id, record_type="content_block", record_id=block.public_id,
           name=block.name, kind=block.kind, placements=block.placements, languages=sorted(block.variants[0].texts))
    db.session.commit()
    flash(_("The block is saved."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.get("/console/<int:creditor_id>/content/<public_id>")
@login_required
def console_content_block(creditor_id: int, public_id: str):
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    record("console_viewed", creditor_id=creditor.id, record_type="content_block", record_id=block.public_id,
           page="content_block")
    db.session.commit()
    return _block_page(creditor, block, _values(block, creditor))


@bp.post("/console/<int:creditor_id>/content/<public_id>")
@login_required
def console_content_save(creditor_id: int, public_id: str):
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    try:
        changes = content.update_block(creditor, block, _given(request.form, creditor))
    except InvalidData as exc:
        db.session.rollback()
        creditor = _creditor(creditor_id)
        block = _block(creditor, public_id)
        return _block_page(creditor, block, _form_values(request.form), _problems(exc.errors), 422)
    record("console_content_changed", creditor_id=creditor.id, record_type="content_block",
           record_id=block.public_id, changes=changes)
    db.session.commit()
    flash(_("The block is saved.") if changes else _("Nothing changed."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.post("/console/<int:creditor_id>/content/<public_id>/stop")
@login_required
def console_content_stop(creditor_id: int, public_id: str):
    """Stop the block (shown nowhere from the next request) or run it again."""
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    stop = request.form.get("stop") == "1"
    changed = content.set_stopped(creditor, block, stop, utcnow())
    record("console_content_stopped" if stop else "console_content_resumed", creditor_id=creditor.id,
           record_type="content_block", record_id=block.public_id, changed=changed)
    db.session.commit()
    flash(_("The block is stopped.") if stop else _("The block runs again."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.post("/console/<int:creditor_id>/content/<public_id>/image")
@login_required
def console_content_image(creditor_id: int, public_id: str):
    """The block's image: checked by its content (a whole PNG or JPEG), drawn again smaller, served by us."""
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    if request.form.get("remove"):
        removed = content.remove_image(creditor, block)
        record("console_content_image_removed", creditor_id=creditor.id, record_type="content_block",
               record_id=block.public_id, changed=removed)
        db.session.commit()
        flash(_("The image is removed."), "done")
        return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id),
                        code=303)
    upload = request.files.get("image")
    data = upload.read(content.IMAGE_MAX_BYTES + 1) if upload else b""
    try:
        content.set_image(creditor, block, data)
    except InvalidData as exc:
        db.session.rollback()
        record("console_content_image_refused", creditor_id=creditor.id, record_type="content_block",
               record_id=public_id, bytes=len(data))
        db.session.commit()
        creditor = _creditor(creditor_id)
        block = _block(creditor, public_id)
        return _block_page(creditor, block, _values(block, creditor), _problems(exc.errors), 422)
    record("console_content_image_changed", creditor_id=creditor.id, record_type="content_block",
           record_id=block.public_id, image_version=block.image_version, image_mime=block.image_mime)
    db.session.commit()
    flash(_("The image is saved."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.post("/console/<int:creditor_id>/content/<public_id>/variants")
@login_required
def console_content_variant(creditor_id: int, public_id: str):
    """Another variant of the block's texts: an experiment (each customer always sees the same one)."""
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    form = request.form
    errors: dict[str, str] = {}
    weight = _whole(form.get("weight"), errors, "weight")
    try:
        if errors:
            raise InvalidData(errors)
        variant = content.add_variant(creditor, block, form.get("variant_name", ""), weight or 0,
                                      {locale: {"title": form.get(f"v_{locale}_title", ""),
                                                "body": form.get(f"v_{locale}_body", ""),
                                                "cta": form.get(f"v_{locale}_cta", "")} for locale in content.LOCALES})
    except InvalidData as exc:
        db.session.rollback()
        creditor = _creditor(creditor_id)
        block = _block(creditor, public_id)
        problems = {(f"v_{name}" if name[:3] in ("en_", "nb_", "de_") else name): text
                    for name, text in _problems(exc.errors).items()}
        values = {**_values(block, creditor), **{name: form.get(name, "") for name in form}}
        return _block_page(creditor, block, values, problems, 422)
    record("console_content_variant_added", creditor_id=creditor.id, record_type="content_block",
           record_id=block.public_id, variant=variant.name, weight=variant.weight, languages=sorted(variant.texts))
    db.session.commit()
    flash(_("The variant is added."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.post("/console/<int:creditor_id>/content/<public_id>/variants/<int:variant_id>/stop")
@login_required
def console_content_variant_stop(creditor_id: int, public_id: str, variant_id: int):
    creditor = _creditor(creditor_id)
    block = _block(creditor, public_id)
    variant = db.session.get(Variant, variant_id)
    if variant is None or variant.block_id != block.id:
        abort(404)
    stop = request.form.get("stop") == "1"
    changed = content.set_variant_stopped(creditor, variant, stop, utcnow())
    record("console_content_variant_stopped" if stop else "console_content_variant_resumed", creditor_id=creditor.id,
           record_type="content_block", record_id=block.public_id, variant=variant.name, changed=changed)
    db.session.commit()
    flash(_("The variant is stopped.") if stop else _("The variant runs again."), "done")
    return redirect(url_for(".console_content_block", creditor_id=creditor.id, public_id=block.public_id), code=303)


@bp.get("/console/<int:creditor_id>/content/leads")
@login_required
def console_content_leads(creditor_id: int):
    """The customers who said "I am interested", newest first: which block, which bill, when."""
    creditor = _creditor(creditor_id)
    leads = content.leads_of(creditor.id)
    record("console_viewed", creditor_id=creditor.id, record_type="creditor", record_id=creditor.id,
           page="content_leads", shown=len(leads))
    db.session.commit()
    return _page("content_leads.html", creditor, leads=leads)
