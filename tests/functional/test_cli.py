"""The command line through Flask's CLI runner: creditors, API keys, invoice import (all or
nothing), links, and the demo data. Commands commit; under the `session` fixture a commit
is a savepoint, so data a test sets up is committed first (a failing command rolls back)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.backoffice.services import find_agent
from app.billing.models import Customer, Invoice, InvoiceEvent, InvoiceLine
from app.billing.services import find_invoice
from app.creditors.models import Creditor
from app.creditors.services import creditor_for_api_key
from app.demo import DemoLink, demo_invoice_numbers, load_demo
from app.extensions import db
from app.links.models import AccessLink
from app.links.services import get_signer, resolve_token
from app.models import utcnow
from app.resolutions.models import Resolution
from app.support.models import SupportRequest
from tests.factories import invoice_payload, make_creditor, make_invoice

TABLES = (Creditor, Customer, Invoice, InvoiceLine, InvoiceEvent, AccessLink)
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
       b'<title>Acme</title><rect width="10" height="10"/></svg>')
TOKEN_URL = re.compile(r"https://pay\.example\.test/l/([A-Za-z0-9_.-]+)")


@pytest.fixture
def cli(app, session):
    """Run `flask <args>`; returns click's Result (output has stdout and stderr, also apart)."""
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=[str(a) for a in args])

    return invoke


def counts() -> dict[str, int]:
    return {m.__tablename__: db.session.scalar(select(func.count()).select_from(m)) for m in TABLES}


def committed_creditor(kind="NO", **overrides) -> Creditor:
    creditor = make_creditor(kind, **overrides)
    db.session.commit()
    return creditor


def creditor_by_slug(slug: str) -> Creditor | None:
    return db.session.scalar(select(Creditor).where(Creditor.slug == slug))


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


# --- --help -------------------------------------------------------------------------------

COMMANDS = [
    ("creditors",), ("creditors", "create"), ("creditors", "update"), ("creditors", "list"),
    ("creditors", "api-key"), ("invoices",), ("invoices", "import"), ("links",), ("links", "issue"),
    ("links", "revoke"), ("demo",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(app, command):
    result = app.test_cli_runner().invoke(args=[*command, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ") and f" {' '.join(command)} [OPTIONS]" in result.output
    assert "Show this message and exit." in result.output


def test_create_help_lists_every_creditor_field(app):
    output = app.test_cli_runner().invoke(args=["creditors", "create", "--help"]).output
    for option in ("--slug", "--name", "--country", "--locale", "--currency", "--legal-name", "--primary",
                   "--accent", "--support-email", "--support-phone", "--support-hours", "--support-url",
                   "--org-number", "--address", "--iban", "--bic", "--account-no", "--reference-scheme",
                   "--portal-base-url", "--step-up", "--logo"):
        assert option in output
    assert "kid_mod10|kid_mod11|rf" in output
    assert "none|postcode|customer_number|date_of_birth" in output


# --- creditors ----------------------------------------------------------------------------


def test_create_creditor(cli, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_bytes(SVG)
    result = cli(
        "creditors", "create", "--slug", "acme", "--name", "Acme Kraft AS", "--country", "no", "--locale", "nb",
        "--currency", "nok", "--legal-name", "Acme Kraft AS", "--primary", "#ffcc00", "--accent", "#0b6e4f",
        "--support-email", "hjelp@acme.example", "--support-phone", "+47 22 33 44 55",
        "--support-hours", "Hverdager 08–16", "--support-url", "https://acme.example/hjelp",
        "--org-number", "926 481 509", "--address", "Storgata 1, 0155 Oslo", "--account-no", "1503.20.80119",
        "--reference-scheme", "kid_mod11", "--portal-base-url", "https://betal.acme.example",
        "--step-up", "postcode", "--logo", logo,
    )
    assert result.exit_code == 0, result.output
    assert "Created creditor acme (Acme Kraft AS)." in result.stdout
    # The yellow primary fails WCAG AA on white: adjusted, and the user is told.
    assert "Warning: brand_primary #ffcc00" in result.stderr
    creditor = creditor_by_slug("acme")
    assert (creditor.country, creditor.currency, creditor.default_locale) == ("NO", "NOK", "nb")
    assert creditor.bank_account_no == "15032080119"
    assert creditor.reference_scheme == "kid_mod11" and creditor.step_up_mode == "postcode"
    assert creditor.brand_primary != "#ffcc00" and creditor.brand_accent == "#0b6e4f"
    assert creditor.support_hours == "Hverdager 08–16"
    assert creditor.portal_base_url == "https://betal.acme.example"
    assert creditor.logo == SVG and creditor.logo_mime == "image/svg+xml"


def test_create_creditor_lists_every_problem_and_writes_nothing(cli, tmp_path):
    logo = tmp_path / "logo.txt"
    logo.write_text("not an image")
    before = counts()
    result = cli(
        "creditors", "create", "--slug", "Bad Slug!", "--name", " ", "--country", "Norway", "--locale", "sv",
        "--currency", "XYZ", "--iban", "DE00 0000", "--support-email", "nobody", "--primary", "teal",
        "--logo", logo,
    )
    assert result.exit_code == 1
    assert "Creditor not created:" in result.output
    lines = result.output.splitlines()
    for option in ("--slug", "--name", "--country", "--locale", "--currency", "--iban", "--support-email",
                   "--primary", "--logo"):
        assert any(line.strip().startswith(f"{option}: ") for line in lines), f"{option} not reported"
    assert counts() == before


def test_create_needs_the_required_options(cli):
    result = cli("creditors", "create", "--slug", "acme")
    assert result.exit_code == 2
    assert "Missing option '--name'" in result.output


def test_create_rejects_a_taken_slug(cli):
    creditor = committed_creditor("DE")
    result = cli("creditors", "create", "--slug", creditor.slug, "--name", "Other", "--country", "DE",
                 "--locale", "de", "--currency", "EUR", "--iban", "DE89370400440532013000")
    assert result.exit_code == 1
    assert "--slug: already taken" in result.output


def test_update_changes_only_the_options_given(cli):
    creditor = committed_creditor("NO", support_url="https://old.example")
    name, email = creditor.name, creditor.support_email
    result = cli("creditors", "update", creditor.slug, "--support-hours", "Mon–Fri 09–15", "--support-url", "")
    assert result.exit_code == 0, result.output
    assert "--support-hours" in result.stdout
    db.session.refresh(creditor)
    assert creditor.support_hours == "Mon–Fri 09–15"
    assert creditor.support_url is None  # an empty value clears the field
    assert (creditor.name, creditor.support_email) == (name, email)


def test_update_reports_problems_and_changes_nothing(cli):
    creditor = committed_creditor("NO")
    hours = creditor.support_hours
    result = cli("creditors", "update", creditor.slug, "--support-hours", "24/7", "--currency", "ABC")
    assert result.exit_code == 1
    assert "--currency: an ISO 4217 currency code" in result.output
    db.session.refresh(creditor)
    assert creditor.support_hours == hours and creditor.currency == "NOK"


def test_update_without_options_or_of_unknown_creditor(cli):
    assert cli("creditors", "update", "nobody", "--name", "X").exit_code == 1
    creditor = committed_creditor("NO")
    result = cli("creditors", "update", creditor.slug)
    assert result.exit_code == 2 and "Nothing to change" in result.output


def test_list(cli):
    assert "No creditors yet" in cli("creditors", "list").output
    de, no = committed_creditor("DE"), committed_creditor("NO")
    result = cli("creditors", "list")
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines()]
    assert rows[0] == ["SLUG", "NAME", "COUNTRY", "CURRENCY"]
    slugs = [row[0] for row in rows[1:]]
    assert slugs == sorted([de.slug, no.slug])
    assert any(row[0] == de.slug and row[-2:] == ["DE", "EUR"] for row in rows)


def test_api_key_is_printed_once_and_works(cli):
    creditor = committed_creditor("IE")
    result = cli("creditors", "api-key", creditor.slug, "--label", "billing system")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("pk_") and "\n" not in key
    assert "shown only once" in result.stderr
    assert creditor_for_api_key(key).id == creditor.id
    assert creditor.api_keys[0].label == "billing system"
    assert key not in creditor.api_keys[0].key_hash


def test_api_key_for_unknown_creditor(cli):
    result = cli("creditors", "api-key", "nobody")
    assert result.exit_code == 1
    assert "No creditor with slug 'nobody'" in result.output


# --- invoices import ---------------------------------------------------------------------


def test_import_creates_then_is_idempotent(cli, tmp_path):
    creditor = committed_creditor("NO")
    rows = [invoice_payload("NOK", lines=n, number=f"77{n}") for n in (1, 2, 3)]
    path = write_jsonl(tmp_path / "invoices.jsonl", [rows[0], "", rows[1], "   ", rows[2]])
    result = cli("invoices", "import", path, "--creditor", creditor.slug)
    assert result.exit_code == 0, result.output
    assert "created 3, unchanged 0" in result.stdout
    for n in (1, 2, 3):
        invoice = find_invoice(creditor, f"77{n}")
        assert invoice is not None and len(invoice.lines) == n
        assert invoice.events[0].actor == "cli"

    before = counts()
    again = cli("invoices", "import", path, "--creditor", creditor.slug)
    assert again.exit_code == 0, again.output
    assert "created 0, unchanged 3" in again.stdout
    assert counts() == before


def test_import_with_a_bad_line_writes_nothing(cli, tmp_path):
    creditor = committed_creditor("NO")
    good = [invoice_payload("NOK", number=f"880{n}") for n in (1, 2, 4)]
    bad = invoice_payload("NOK", number="8803", total=1)
    bad["customer"]["email"] = "not-an-address"
    path = write_jsonl(tmp_path / "bad.jsonl", [good[0], good[1], bad, good[2], '{"number": "8805",'])
    before = counts()
    result = cli("invoices", "import", path, "--creditor", creditor.slug)
    assert result.exit_code == 1
    output = result.output
    assert "line 3:" in output
    assert "customer.email: not an e-mail address" in output
    assert "total: total is 1 but the lines add up to" in output
    assert "line 5: not valid JSON" in output
    assert "line 1" not in output and "line 4" not in output
    assert "2 of 5 invoice lines in bad.jsonl are bad; nothing was imported." in output
    assert counts() == before
    assert find_invoice(creditor, "8801") is None


def test_import_reports_a_conflict_with_a_stored_invoice(cli, tmp_path):
    creditor = committed_creditor("NO")
    make_invoice(creditor, number="9901")
    db.session.commit()
    changed = invoice_payload("NOK", lines=2, number="9901")
    path = write_jsonl(tmp_path / "conflict.jsonl", [invoice_payload("NOK", number="9902"), changed])
    result = cli("invoices", "import", path, "--creditor", creditor.slug)
    assert result.exit_code == 1
    assert "line 2: invoice 9901 exists with different content" in result.output
    assert find_invoice(creditor, "9902") is None


def test_import_reports_lines_that_are_not_invoices(cli, tmp_path):
    creditor = committed_creditor("NO")
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'[1, 2]\n\xff\xfe\n')
    result = cli("invoices", "import", str(path), "--creditor", creditor.slug)
    assert result.exit_code == 1
    assert "line 1:\n  body: a JSON object is expected" in result.output
    assert "line 2: not UTF-8 text" in result.output


def test_import_for_unknown_creditor(cli, tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [invoice_payload("NOK")])
    result = cli("invoices", "import", path, "--creditor", "nobody")
    assert result.exit_code == 1 and "No creditor with slug 'nobody'" in result.output


# --- links ---------------------------------------------------------------------------------


def test_issue_and_revoke_links(app, cli):
    creditor = committed_creditor("DE")
    invoice = make_invoice(creditor, number="L-1")
    db.session.commit()

    result = cli("links", "issue", "L-1", "--creditor", creditor.slug, "--channel", "email", "--ttl-days", "7")
    assert result.exit_code == 0, result.output
    token = TOKEN_URL.fullmatch(result.stdout.strip()).group(1)
    assert "Expires " in result.stderr
    with app.app_context():
        resolved = resolve_token(token, signer=get_signer())
    assert resolved.ok and resolved.invoice_id == invoice.id
    assert resolved.channel == "email"
    assert abs(resolved.expires_at - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)

    assert cli("links", "issue", "L-1", "--creditor", creditor.slug).exit_code == 0
    result = cli("links", "revoke", "L-1", "--creditor", creditor.slug)
    assert result.exit_code == 0, result.output
    assert "Revoked 2 links of invoice L-1." in result.output
    with app.app_context():
        assert not resolve_token(token, signer=get_signer()).ok
    assert "Revoked 0 links" in cli("links", "revoke", "L-1", "--creditor", creditor.slug).output


def test_issue_uses_the_creditors_portal_domain_and_the_default_ttl(app, cli):
    creditor = committed_creditor("NO", portal_base_url="https://betal.acme.example")
    make_invoice(creditor, number="5001")
    db.session.commit()
    result = cli("links", "issue", "5001", "--creditor", creditor.slug)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("https://betal.acme.example/l/")
    link = db.session.scalar(select(AccessLink).order_by(AccessLink.id.desc()))
    ttl = app.config["LINK_DEFAULT_TTL_DAYS"]
    assert abs(link.expires_at - (utcnow() + timedelta(days=ttl))) < timedelta(minutes=1)
    assert link.channel == "sms"


@pytest.mark.parametrize(
    "args, message",
    [
        (["999", "--creditor", "{slug}"], "has no invoice '999'"),
        (["5002", "--creditor", "nobody"], "No creditor with slug 'nobody'"),
        (["5002", "--creditor", "{slug}", "--ttl-days", "0"], "--ttl-days: a whole number of days from 1 to 365"),
    ],
)
def test_issue_errors(cli, args, message):
    creditor = committed_creditor("NO")
    make_invoice(creditor, number="5002")
    db.session.commit()
    before = counts()
    result = cli("links", "issue", *[a.format(slug=creditor.slug) for a in args])
    assert result.exit_code == 1
    assert message in result.output
    assert counts() == before


def test_revoke_unknown_invoice(cli):
    creditor = committed_creditor("NO")
    result = cli("links", "revoke", "404", "--creditor", creditor.slug)
    assert result.exit_code == 1 and "has no invoice '404'" in result.output


# --- demo ----------------------------------------------------------------------------------


def demo_invoice(role: str) -> Invoice:
    slug, number = demo_invoice_numbers()[role]
    return find_invoice(creditor_by_slug(slug), number)


def test_demo_twice(cli):
    first = cli("demo")
    assert first.exit_code == 0, first.output
    assert "Demo data loaded: 3 new creditors, 10 new invoices." in first.output
    after_first = counts()
    urls = TOKEN_URL.findall(first.output)
    assert len(urls) == after_first["invoices"] == 10
    for name in ("Fjordlys Energi AS (fjordlys)", "Stadtwerke Lindenau GmbH (lindenau)",
                 "Shamrock Mobile Ltd (shamrock)"):
        assert name in first.output

    assert "/backoffice/  as agent@demo.example" in first.output
    agent = find_agent("agent@demo.example")
    assert sorted(role.role for role in agent.roles) == ["admin"] * 3
    waiting = (db.session.scalar(select(func.count()).select_from(SupportRequest)),
               db.session.scalar(select(func.count()).select_from(Resolution)))
    assert waiting == (1, 1)

    second = cli("demo")
    assert second.exit_code == 0, second.output
    assert "nothing new" in second.output
    assert (db.session.scalar(select(func.count()).select_from(SupportRequest)),
            db.session.scalar(select(func.count()).select_from(Resolution))) == waiting
    after_second = counts()
    for table in ("creditors", "customers", "invoices", "invoice_lines"):
        assert after_second[table] == after_first[table], table
    assert after_second["access_links"] == 2 * after_first["access_links"]  # fresh links on every run
    assert set(TOKEN_URL.findall(second.output)).isdisjoint(urls)


def test_demo_content(app, session):
    today = date(2026, 3, 4)
    with app.app_context():
        links = load_demo(today)
        db.session.commit()

    numbers = demo_invoice_numbers()
    assert {"one_line", "ten_lines", "two_hundred_lines", "long", "overdue", "partly_paid"} <= set(numbers)
    assert [(link.creditor_slug, link.invoice_number) for link in links] == list(numbers.values())
    assert all(isinstance(link, DemoLink) and link.url.startswith("https://pay.example.test/l/") for link in links)

    ten = demo_invoice("ten_lines")
    assert len(ten.lines) == 10 and ten.creditor.slug == "fjordlys"
    assert ten.due_date == today + timedelta(days=5)
    assert any(line.quantity != line.quantity.to_integral() for line in ten.lines)  # decimal kWh
    assert {line.vat_rate for line in ten.lines} == {2500}
    assert ten.period_end < ten.issue_date
    assert len(demo_invoice("one_line").lines) == 1
    assert len(demo_invoice("long").lines) > 50
    assert len(demo_invoice("two_hundred_lines").lines) == 200

    overdue = demo_invoice("overdue")
    assert overdue.due_date < today
    kinds = {line.kind: line for line in overdue.lines}
    assert kinds["reminder_fee"].vat_rate == 0 and kinds["reminder_fee"].gross == 3500
    assert kinds["interest"].period_start is not None and kinds["interest"].gross > 0

    partly = demo_invoice("partly_paid")
    assert 0 < partly.amount_paid < partly.total
    assert partly.status == "partially_paid"
    assert partly.customer.preferred_locale is None

    lindenau = creditor_by_slug("lindenau")
    rates = {line.vat_rate for inv in db.session.scalars(select(Invoice).where(Invoice.creditor_id == lindenau.id))
             for line in inv.lines}
    assert {1900, 700} <= rates
    for slug, country, locale, currency in (("fjordlys", "NO", "nb", "NOK"), ("lindenau", "DE", "de", "EUR"),
                                             ("shamrock", "IE", "en", "EUR")):
        creditor = creditor_by_slug(slug)
        assert (creditor.country, creditor.default_locale, creditor.currency) == (country, locale, currency)
        assert creditor.step_up_mode == "none"
        assert creditor.logo_mime == "image/svg+xml" and b"<title>" in creditor.logo
        assert {link.locale for link in links if link.creditor_slug == slug} == {locale}

    described = {(link.creditor_slug, link.invoice_number): link.description for link in links}
    assert "due in 5 days" in described[numbers["ten_lines"]]
    assert "overdue by 20 days + reminder fee + interest" in described[numbers["overdue"]]
    assert "partly paid (40 %)" in described[numbers["partly_paid"]]
    assert "62 lines" in described[numbers["long"]]


def test_demo_on_a_later_day_keeps_what_exists(app, session):
    with app.app_context():
        load_demo(date(2026, 3, 4))
        db.session.commit()
        before = counts()
        due = demo_invoice("ten_lines").due_date
        links = load_demo(date(2026, 3, 24))
        db.session.commit()
    after = counts()
    assert after["invoices"] == before["invoices"] and after["creditors"] == before["creditors"]
    assert demo_invoice("ten_lines").due_date == due
    described = {(link.creditor_slug, link.invoice_number): link.description for link in links}
    assert "overdue by 15 days" in described[demo_invoice_numbers()["ten_lines"]]


def test_update_sets_the_emails_sender_name_and_reply_to(cli):
    creditor = committed_creditor("NO")
    result = cli("creditors", "update", creditor.slug, "--sender-name", "Fjordlys Kundeservice",
                 "--reply-to", "svar@example.test")
    assert result.exit_code == 0, result.output
    db.session.refresh(creditor)
    assert (creditor.sender_name, creditor.reply_address(creditor.support_email)) == (
        "Fjordlys Kundeservice", "svar@example.test")
    result = cli("creditors", "update", creditor.slug, "--reply-to", "not an address")
    assert result.exit_code == 1 and "--reply-to: not an e-mail address" in result.output


def test_update_refuses_an_svg_logo_with_a_script(cli, tmp_path):
    creditor = committed_creditor("NO")
    logo = tmp_path / "logo.svg"
    logo.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    result = cli("creditors", "update", creditor.slug, "--logo", str(logo))
    assert result.exit_code == 1 and "--logo: an SVG without scripts or outside references" in result.output
    db.session.refresh(creditor)
    assert creditor.logo is None
