"""`flask creditors …`: create, update and list creditors; issue API keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.commands import cli_transaction
from app.creditors.commands import creditor_or_fail
from app.creditors.models import REFERENCE_SCHEMES, STEP_UP_MODES, Creditor
from app.creditors.services import (
    CreditorInput,
    create_api_key,
    create_creditor,
    set_logo,
    sniff_logo,
    update_creditor,
)
from app.errors import InvalidData
from app.extensions import db

# (option, CreditorInput field, help, extra click.option arguments), in the order --help shows them.
FIELD_OPTIONS: tuple[tuple[str, str, str, dict], ...] = (
    ("--slug", "slug", "Short unique name used in commands and logo URLs, e.g. fjordlys.", {}),
    ("--name", "name", "Name shown to customers.", {}),
    ("--country", "country", "ISO 3166 country code, e.g. NO.", {}),
    ("--locale", "default_locale", "Default language of the bill page: en, nb or de.", {}),
    ("--currency", "currency", "ISO 4217 currency code, e.g. NOK.", {}),
    ("--legal-name", "legal_name", "Legal name for the footer, if it differs from --name.", {}),
    ("--primary", "brand_primary", "Brand colour #rrggbb; darkened if white text on it fails WCAG AA.", {}),
    ("--accent", "brand_accent", "Accent colour #rrggbb; darkened like --primary.", {}),
    ("--support-email", "support_email", "Support e-mail address.", {}),
    ("--support-phone", "support_phone", "Support phone, E.164 (spaces allowed), e.g. '+47 22 33 44 55'.", {}),
    ("--support-hours", "support_hours", "Opening hours as customers should read them.", {}),
    ("--callback-hours", "callback_hours", "When the support desk calls customers back, e.g. 'mon-fri "
     "07:00-19:00, sat 09:00-13:00' (public holidays closed unless 'holidays 10:00-14:00' is given; default "
     "mon-fri 08:00-20:00).", {}),
    ("--support-url", "support_url", "Support web page.", {}),
    ("--sender-name", "email_sender_name", "Display name of the e-mails' From (default: --name).", {}),
    ("--reply-to", "email_reply_to", "Reply-To of the e-mails (default: --support-email).", {}),
    ("--org-number", "org_number", "Organisation or company register number.", {}),
    ("--vat-id", "vat_id", "VAT id with its country prefix (DE136695976; Norway: NO923609016MVA, which also "
     "prints 'MVA' after the org number). Printed on invoices, letters and the bill page.", {}),
    ("--tax-number", "tax_number", "Germany: the Steuernummer, printed where there is no --vat-id (UStG § 14(4)).",
     {}),
    ("--address", "address", "Postal address for the footer.", {}),
    ("--iban", "iban", "IBAN for bank transfers (needed by --reference-scheme rf).", {}),
    ("--bic", "bic", "BIC of the IBAN's bank.", {}),
    ("--account-no", "bank_account_no", "Norwegian account number, 11 digits (needed by KID schemes).", {}),
    ("--reference-scheme", "reference_scheme", "Payment reference scheme.",
     {"type": click.Choice(REFERENCE_SCHEMES)}),
    ("--portal-base-url", "portal_base_url", "The creditor's own portal host, e.g. https://pay.example.com "
     "(default: PORTAL_BASE_URL).", {}),
    ("--step-up", "step_up_mode", "What the customer confirms before the bill is shown.",
     {"type": click.Choice(STEP_UP_MODES)}),
)
REQUIRED_TO_CREATE = frozenset({"slug", "name", "country", "default_locale", "currency"})
OPTION_OF_FIELD = {name: flag for flag, name, _help, _extra in FIELD_OPTIONS} | {"logo": "--logo"}


def creditor_options(*, for_update: bool) -> Callable:
    """Add one option per CreditorInput field (and --logo) to a command."""

    def decorate(command: Callable) -> Callable:
        # click lists options in the reverse order of decoration: --logo last.
        command = click.option(
            "--logo", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
            help="Logo file: PNG, JPEG or SVG, at most 200 KB.",
        )(command)
        for flag, name, help_text, extra in reversed(FIELD_OPTIONS):
            if for_update and name == "slug":
                continue
            required = not for_update and name in REQUIRED_TO_CREATE
            default = None if for_update else CreditorInput.__dataclass_fields__[name].default
            if isinstance(default, str):
                help_text = f"{help_text}  [default: {default}]"
            command = click.option(flag, name, required=required, help=help_text, **extra)(command)
        return command

    return decorate


def _save(apply: Callable[[CreditorInput], Creditor], data: CreditorInput, logo_path: Path | None) -> Creditor:
    """Create or update through `apply`, then set the logo; a bad logo is listed with the other problems."""
    logo = logo_path.read_bytes() if logo_path else None
    errors: dict[str, str] = {}
    if logo is not None:
        try:
            sniff_logo(logo)
        except InvalidData as exc:
            errors = exc.errors
    try:
        creditor = apply(data)
    except InvalidData as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise InvalidData(errors)
    if logo is not None:
        set_logo(creditor, logo)
    return creditor


def given_fields(options: dict[str, str | None]) -> dict[str, str | None]:
    """The options given on the command line, stripped; an empty optional field becomes None (cleared)."""
    given = {}
    for name, value in options.items():
        if value is None:
            continue
        value = value.strip()
        optional = CreditorInput.__dataclass_fields__[name].default is None
        given[name] = None if optional and not value else value
    return given


def _warn_notes(data: CreditorInput) -> None:
    for note in data.notes:
        click.secho(f"Warning: {note}", fg="yellow", err=True)


@click.group(cls=AppGroup, help="Create, update and list creditors; issue API keys.")
def creditors():
    pass


@creditors.command("create", help="Create a creditor. Every problem with the input is listed at once.")
@creditor_options(for_update=False)
def create(logo: Path | None, **fields):
    given = given_fields(fields)
    data = CreditorInput(**given)
    with cli_transaction("Creditor not created", OPTION_OF_FIELD):
        creditor = _save(create_creditor, data, logo)
    _warn_notes(data)
    click.echo(f"Created creditor {creditor.slug} ({creditor.name}).")
    click.echo(f"Next: 'flask creditors api-key {creditor.slug}' for an API key.")


@creditors.command(
    "update",
    help="Change a creditor: only the options given change. An empty value (--support-url '') clears a field.",
)
@click.argument("slug")
@creditor_options(for_update=True)
def update(slug: str, logo: Path | None, **fields):
    given = given_fields(fields)
    if not given and logo is None:
        raise click.UsageError("Nothing to change: give at least one option (see --help).")
    with cli_transaction("Creditor not updated", OPTION_OF_FIELD):
        creditor = creditor_or_fail(slug)
        current = {name: getattr(creditor, name) for name in CreditorInput.__dataclass_fields__ if name != "notes"}
        data = CreditorInput(**{**current, **given})
        _save(lambda d: update_creditor(creditor, d), data, logo)
    _warn_notes(data)
    changed = ", ".join([OPTION_OF_FIELD[name] for name in given] + (["--logo"] if logo else []))
    click.echo(f"Updated creditor {slug}: {changed}.")


@creditors.command("list", help="List the creditors: slug, name, country and currency.")
def list_creditors():
    rows = db.session.execute(
        select(Creditor.slug, Creditor.name, Creditor.country, Creditor.currency).order_by(Creditor.slug)
    ).all()
    if not rows:
        click.echo("No creditors yet ('flask creditors create --help' or 'flask demo').")
        return
    table = [("SLUG", "NAME", "COUNTRY", "CURRENCY"), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


@creditors.command(
    "api-key",
    help="Create an API key for the creditor. The key alone goes to stdout, shown this once; "
    "only its hash is stored.",
)
@click.argument("slug")
@click.option("--label", help="What the key is for, e.g. 'billing system'.")
@click.option("--mode", type=click.Choice(["live", "test"]), default="live", show_default=True,
              help="A test key (pk_test_…) sees and makes only test invoices, paid only in test mode.")
def api_key(slug: str, label: str | None, mode: str):
    with cli_transaction("API key not created", {"label": "--label", "mode": "--mode"}):
        key = create_api_key(creditor_or_fail(slug), label=label, mode=mode)
    click.echo(key)
    click.secho(
        "Store this key now: it is shown only once and cannot be recovered (only its hash is kept).",
        fg="yellow", err=True,
    )
