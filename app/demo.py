"""Demo data: three creditors (Norway, Germany, Ireland) and bills that show what the bill page does.

`load_demo()` creates whatever is missing, through the real services, and issues one fresh
link per demo invoice; it does not commit. It is idempotent by creditor slug and invoice
number: dates are relative to the day it first runs ("due in 5 days", "overdue by 20 days"),
and on a later run existing creditors and invoices are kept as they are. `flask demo`
commits and prints the links grouped by creditor.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path

import click
from babel.dates import format_date
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from app.billing.models import Invoice
from app.billing.schemas import line_amounts
from app.billing.services import due_state, find_invoice, import_invoice, record_payment
from app.commands import cli_transaction
from app.core.dates import local_today
from app.creditors.models import Creditor
from app.creditors.services import CreditorInput, create_creditor, set_logo
from app.debt_collection.demo_partner import DEMO_PARTNER, DEMO_PARTNER_ENDPOINT
from app.extensions import db
from app.links.cli import plural
from app.links.services import get_signer, issue_link
from app.models import utcnow
from app.money import round_half_up
from app.payments.providers import offer_gateway

ACTOR = "demo"
LINK_CHANNEL = "sms"
# VAT rates in basis points. Fees and interest carry no VAT.
ZERO_VAT = 0
NORWAY_VAT = 2500
GERMANY_VAT, GERMANY_VAT_REDUCED = 1900, 700  # reduced: drinking water
IRELAND_VAT = 2300
NORWAY_LATE_INTEREST = Decimal("0.125")  # forsinkelsesrente, per year
NORWAY_INTEREST_DAYS = 14


@dataclass(frozen=True)
class DemoLink:
    """A fresh link to one demo bill, and what to expect there."""

    creditor_slug: str
    invoice_number: str
    description: str
    url: str
    locale: str  # the customer's language, else the creditor's (the browser's choice comes first then)


@dataclass(frozen=True)
class DemoInvoice:
    role: str  # the key in demo_invoice_numbers()
    creditor_slug: str
    number: str
    label: str  # what the bill is for, in a few words (for the terminal)
    payload: Callable[[str, date], dict]  # (number, today) -> the API's invoice payload
    paid_percent: int = 0  # a payment recorded when the invoice is created


# --- creditors ---------------------------------------------------------------------------


def demo_creditors() -> list[CreditorInput]:
    """The three demo creditors, fresh objects on every call (validation adjusts them)."""
    return [
        CreditorInput(
            slug="fjordlys", name="Fjordlys Energi AS", country="NO", default_locale="nb", currency="NOK",
            brand_primary="#0b5563", brand_accent="#b45309",
            support_email="kundeservice@fjordlys.example", support_phone="+47 21 49 30 00",
            support_hours="Hverdager 08–20, lørdag 10–15", callback_hours="mon-fri 08:00-20:00, sat 10:00-15:00",
            support_url="https://www.fjordlys.example/kundeservice",
            org_number="926 481 509", vat_id="NO 926 481 509 MVA", address="Dronning Eufemias gate 16, 0191 Oslo",
            bank_account_no="15032080119", reference_scheme="kid_mod10",
        ),
        CreditorInput(
            slug="lindenau", name="Stadtwerke Lindenau GmbH", country="DE", default_locale="de", currency="EUR",
            brand_primary="#1d4e89", brand_accent="#0f766e",
            support_email="service@stadtwerke-lindenau.example", support_phone="+49 341 4927 3000",
            support_hours="Mo–Fr 7–19 Uhr, Sa 9–13 Uhr", callback_hours="mon-fri 07:00-19:00, sat 09:00-13:00",
            support_url="https://www.stadtwerke-lindenau.example/service",
            org_number="HRB 31847, AG Leipzig", vat_id="DE318470211", address="Lützner Straße 179, 04179 Leipzig",
            iban="DE89370400440532013000", bic="COBADEFFXXX", reference_scheme="rf",
        ),
        CreditorInput(
            slug="shamrock", name="Shamrock Mobile Ltd", country="IE", default_locale="en", currency="EUR",
            brand_primary="#006b3f", brand_accent="#c2410c",
            support_email="help@shamrockmobile.example", support_phone="+353 1 903 4400",
            support_hours="Mon–Fri 8am–8pm, Sat 9am–5pm", callback_hours="mon-fri 08:00-20:00, sat 09:00-17:00",
            support_url="https://www.shamrockmobile.example/help",
            org_number="CRO 612345", vat_id="IE6388047V",
            address="Harcourt Centre, Harcourt Street, Dublin 2, D02 HW77",
            iban="IE29AIBK93115212345678", bic="AIBKIE2D", reference_scheme="rf",
        ),
    ]


def _logo(slug: str) -> bytes:
    return (Path(current_app.static_folder) / "img" / "demo" / f"{slug}.svg").read_bytes()


#: what each demo creditor offers; without keys the test-mode simulator plays these methods
DEMO_GATEWAYS = {
    "fjordlys": [("stripe", ["card", "apple_pay", "google_pay", "vipps", "klarna"], None)],
    "lindenau": [("stripe", ["card", "apple_pay", "google_pay", "klarna", "sepa_debit"], None)],
    "shamrock": [("adyen", ["card", "apple_pay", "google_pay", "ideal", "klarna"], "link")],
}


#: Each demo creditor's self-service rules (`flask resolutions rules`), set when it is created.
DEMO_RULES: dict[str, dict[str, int | bool]] = {
    # A Norwegian utility: a fee for more time and for a plan, 12 % a year on plans, kr 200 at least.
    "fjordlys": {"promise_max_days": 14, "grace_days": 3, "deferral_max_days": 14, "deferral_max_count": 1,
                 "deferral_fee": 3500, "plan_max_months": 6, "plan_min_instalment": 20000, "plan_fee": 9900,
                 "plan_interest_bp": 1200},
    # A German municipal utility: no fees, longer plans, € 25 at least; the undisputed part is held.
    "lindenau": {"promise_max_days": 21, "grace_days": 5, "deferral_max_days": 30, "deferral_max_count": 2,
                 "plan_max_months": 12, "plan_min_instalment": 2500, "dispute_partial_payable": False},
    # An Irish telecom: € 5 for more time, three months at most, arrears from € 30 spread (its late
    # fee's note says so), below the portal's € 100 default.
    "shamrock": {"promise_max_days": 10, "grace_days": 2, "deferral_max_days": 7, "deferral_fee": 500,
                 "plan_max_months": 3, "plan_min_instalment": 1000, "plan_min_balance": 3000},
}


def _ensure_creditor(data: CreditorInput) -> Creditor:
    creditor = db.session.scalar(select(Creditor).where(Creditor.slug == data.slug))
    if creditor is None:
        creditor = create_creditor(data)
        for column, value in DEMO_RULES.get(creditor.slug, {}).items():
            setattr(creditor, column, value)
        set_logo(creditor, _logo(creditor.slug))
        for provider, methods, flow in DEMO_GATEWAYS.get(creditor.slug, []):
            offer_gateway(creditor, provider, methods, flow=flow)
    return creditor


# --- customers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCustomer:
    ref: str
    name: str
    phone: str
    email: str
    street: str
    postcode: str
    city: str
    country: str
    locale: str | None  # None: the bill page follows the browser's Accept-Language
    born: str | None = None
    kind: str = "consumer"
    org_number: str | None = None  # a business's (app.core.orgnumbers)
    vat_id: str | None = None  # a business's, printed on its invoices (app.core.orgnumbers.vat_id)

    def payload(self) -> dict:
        body = {
            "external_ref": self.ref, "name": self.name, "kind": self.kind, "email": self.email,
            "phone": self.phone, "preferred_locale": self.locale, "date_of_birth": self.born,
            "address": {"line1": self.street, "postcode": self.postcode, "city": self.city, "country": self.country},
        }
        if self.org_number:
            body["org_number"] = self.org_number
        if self.vat_id:
            body["vat_id"] = self.vat_id
        return body


KARI = DemoCustomer("C-10017", "Kari Nordmann", "+4791234567", "kari.nordmann@example.com",
                    "Thereses gate 12B", "0358", "Oslo", "NO", "nb", born="1984-03-12")
OLA = DemoCustomer("C-10042", "Ola Hansen", "+4792345678", "ola.hansen@example.com",
                   "Kong Oscars gate 5", "5017", "Bergen", "NO", "nb", born="1971-11-02")
INGRID = DemoCustomer("C-10068", "Ingrid Berg", "+4793456789", "ingrid.berg@example.com",
                      "Sjøsiden 4", "0191", "Oslo", "NO", None, born="1990-06-24")
ANNA = DemoCustomer("K-200451", "Anna Schmidt", "+4915123456789", "anna.schmidt@example.com",
                    "Karl-Heine-Straße 27", "04229", "Leipzig", "DE", "de", born="1988-09-14")
LUKAS = DemoCustomer("K-200388", "Lukas Weber", "+4916098765432", "lukas.weber@example.com",
                     "Merseburger Straße 88", "04177", "Leipzig", "DE", "de", born="1979-02-27")
MEHMET = DemoCustomer("K-200467", "Mehmet Yılmaz", "+4917612345678", "mehmet.yilmaz@example.com",
                      "Gießerstraße 16", "04229", "Leipzig", "DE", "de", born="1992-12-01")
BAKERY = DemoCustomer("K-300502", "Bäckerei Krause GmbH", "+493414912345", "buchhaltung@baeckerei-krause.example",
                      "Lützner Straße 41", "04177", "Leipzig", "DE", "de", kind="business", org_number="HRB 24517",
                      vat_id="DE245170038")
COOPERATIVE = DemoCustomer("K-300530", "Wohnungsbaugenossenschaft Lindenau eG", "+493414987650",
                           "verwaltung@wbg-lindenau.example", "Henricistraße 12", "04177", "Leipzig", "DE", "de",
                           kind="business", org_number="GnR 318")
SIOBHAN = DemoCustomer("087-1234567", "Siobhán Murphy", "+353871234567", "siobhan.murphy@example.com",
                       "14 Ranelagh Road", "D06 C9P4", "Dublin", "IE", "en", born="1995-04-18")
CIARAN = DemoCustomer("086-1112233", "Ciarán O'Brien", "+353861112233", "ciaran.obrien@example.com",
                      "3 Mill Street", "T12 X8K2", "Cork", "IE", "en", born="1986-08-09")


# --- payload helpers ---------------------------------------------------------------------


def _line(description: str, unit_price: int, vat_rate: int, quantity: str | Decimal = "1", **extra) -> dict:
    return {"description": description, "quantity": str(quantity), "unit_price": unit_price, "vat_rate": vat_rate,
            **extra}


def _gross(lines: list[dict]) -> int:
    return sum(line_amounts(Decimal(line["quantity"]), line["unit_price"], line["vat_rate"])[2] for line in lines)


def _month_before(day: date) -> tuple[date, date]:
    """First and last day of the calendar month before `day`'s month."""
    end = day.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def _invoice(number: str, customer: DemoCustomer, lines: list[dict], *, issued: date, due: date, currency: str,
             summary: str, period: tuple[date, date] | None = None, kind: str = "standard") -> dict:
    payload = {
        "number": number, "issue_date": issued.isoformat(), "due_date": due.isoformat(), "currency": currency,
        "summary": summary, "customer": customer.payload(), "lines": lines, "total": _gross(lines), "kind": kind,
    }
    if period:
        payload["period_start"], payload["period_end"] = period[0].isoformat(), period[1].isoformat()
    return payload


def _period(start: date, end: date) -> dict:
    return {"period_start": start.isoformat(), "period_end": end.isoformat()}


def _month_name(day: date, locale: str) -> str:
    return format_date(day, "LLLL y", locale=locale)


# --- Fjordlys Energi (Norway, NOK, KID) ----------------------------------------------------


def _fjordlys_power(kwh: str, day_kwh: str, period: tuple[date, date], *, full: bool) -> list[dict]:
    """A month of electricity and grid rent (øre per kWh, 25 % VAT); `full` adds the optional extras."""
    total, day = Decimal(kwh), Decimal(day_kwh)
    p = _period(*period)
    lines = [
        _line("Strøm, spotpris NO1", 92, NORWAY_VAT, total, unit="kWh",
              note="Gjennomsnittet av timeprisene på Nord Pool for ditt forbruk, time for time.", **p),
        _line("Påslag", 4, NORWAY_VAT, total, unit="kWh", **p),
        _line("Fastbeløp strømavtale", 4900, NORWAY_VAT, unit="mnd", **p),
    ]
    if full:
        lines.append(_line("Opprinnelsesgaranti, fornybar strøm", 1, NORWAY_VAT, total, unit="kWh", **p))
    lines += [
        _line("Nettleie, energiledd dag (06–22)", 39, NORWAY_VAT, day, unit="kWh", **p),
        _line("Nettleie, energiledd natt og helg", 29, NORWAY_VAT, total - day, unit="kWh", **p),
        _line("Nettleie, kapasitetsledd 5–10 kW", 33500, NORWAY_VAT, unit="mnd",
              note="Trinnet settes av snittet av de tre døgnene med høyest timeforbruk i måneden.", **p),
        _line("Forbruksavgift på elektrisk kraft", 13, NORWAY_VAT, total, unit="kWh",
              note="Avgift til staten, fastsatt av Stortinget. Vi krever den inn på vegne av staten.", **p),
    ]
    if full:
        lines += [
            _line("Enova-avgift", 1, NORWAY_VAT, total, unit="kWh", **p),
            _line("Fjordlys Trygg, prisforsikring", 2900, NORWAY_VAT, unit="mnd", **p),
        ]
    return lines


def fjordlys_due_soon(number: str, today: date) -> dict:
    """Ten lines, due in 5 days: last month's electricity and grid rent."""
    due = today + timedelta(days=5)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    lines = _fjordlys_power("1284.375", "902.118", period, full=True)
    return _invoice(number, KARI, lines, issued=issued, due=due, currency="NOK", period=period,
                    summary=f"Strøm og nettleie for {_month_name(period[0], 'nb')}")


def fjordlys_overdue(number: str, today: date) -> dict:
    """Due 20 days ago: a reminder fee and 14 days of late-payment interest were added."""
    due = today - timedelta(days=20)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    lines = _fjordlys_power("968.402", "701.550", period, full=False)
    interest = round_half_up(_gross(lines) * NORWAY_LATE_INTEREST * NORWAY_INTEREST_DAYS / 365)
    lines += [
        _line("Purregebyr", 3500, ZERO_VAT, kind="reminder_fee",
              note="Vi sendte en betalingspåminnelse 14 dager etter forfall. Gebyret er fastsatt i "
                   "inkassoforskriften og er det høyeste vi kan kreve."),
        _line(f"Forsinkelsesrente 12,5 % per år, {NORWAY_INTEREST_DAYS} dager", interest, ZERO_VAT, kind="interest",
              note="Renten følger forsinkelsesrenteloven og regnes fra dagen etter forfall.",
              **_period(due + timedelta(days=1), due + timedelta(days=NORWAY_INTEREST_DAYS))),
    ]
    return _invoice(number, OLA, lines, issued=issued, due=due, currency="NOK", period=period,
                    summary=f"Strøm og nettleie for {_month_name(period[0], 'nb')}, med purring")


def fjordlys_partly_paid(number: str, today: date) -> dict:
    """Due in 10 days; 40 % is paid when the demo creates it."""
    due = today + timedelta(days=10)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    lines = _fjordlys_power("412.880", "296.310", period, full=False)
    return _invoice(number, INGRID, lines, issued=issued, due=due, currency="NOK", period=period,
                    summary=f"Strøm og nettleie for {_month_name(period[0], 'nb')}")


# --- Stadtwerke Lindenau (Germany, EUR, RF) ----------------------------------------------


def _lindenau_household(kwh: str, water_m3: str, period: tuple[date, date]) -> list[dict]:
    """A month of electricity (19 % VAT), water (7 %) and sewage (a municipal charge, no VAT)."""
    p = _period(*period)
    return [
        _line("Arbeitspreis Strom", 29, GERMANY_VAT, kwh, unit="kWh", **p),
        _line("Grundpreis Strom", 1150, GERMANY_VAT, unit="Monat", **p),
        _line("Arbeitspreis Trinkwasser", 212, GERMANY_VAT_REDUCED, water_m3, unit="m³", **p),
        _line("Grundpreis Trinkwasser", 850, GERMANY_VAT_REDUCED, unit="Monat", **p),
        _line("Schmutzwassergebühr", 265, ZERO_VAT, water_m3, unit="m³",
              note="Gebühr der Stadt für das Abwasser; wir ziehen sie für die Stadt ein, ohne Umsatzsteuer.", **p),
        _line("Messstellenbetrieb, moderne Messeinrichtung", 167, GERMANY_VAT, unit="Monat", **p),
    ]


def lindenau_due_soon(number: str, today: date) -> dict:
    due = today + timedelta(days=7)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    return _invoice(number, ANNA, _lindenau_household("238.400", "8.6", period), issued=issued, due=due,
                    currency="EUR", period=period, summary=f"Strom und Wasser, {_month_name(period[0], 'de')}")


def lindenau_overdue(number: str, today: date) -> dict:
    due = today - timedelta(days=18)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    lines = [
        *_lindenau_household("301.750", "11.2", period),
        _line("Mahngebühr", 250, ZERO_VAT, kind="reminder_fee",
              note="Pauschale für die Zahlungserinnerung, die wir nach Ablauf der Zahlungsfrist gesendet haben."),
    ]
    return _invoice(number, LUKAS, lines, issued=issued, due=due, currency="EUR", period=period,
                    summary=f"Strom und Wasser, {_month_name(period[0], 'de')}, mit Mahnung")


def lindenau_one_line(number: str, today: date) -> dict:
    due = today + timedelta(days=9)
    issued = due - timedelta(days=14)
    month = _month_name(due, "de")
    lines = [
        _line(f"Abschlag Strom {month}", 7479, GERMANY_VAT, unit="Monat",
              note="Monatlicher Abschlag; die Jahresabrechnung verrechnet ihn mit Ihrem tatsächlichen Verbrauch."),
    ]
    # An on-account payment: the yearly statement settles it, so it is never split into instalments.
    return _invoice(number, MEHMET, lines, issued=issued, due=due, currency="EUR",
                    summary=f"Abschlag Strom {month}", kind="on_account")


def lindenau_bakery(number: str, today: date) -> dict:
    """62 lines: 31 days of metered electricity, high and low tariff (bakers work at night)."""
    due = today + timedelta(days=14)
    issued = due - timedelta(days=14)
    start = issued - timedelta(days=35)
    rng = random.Random(number)
    lines = []
    for offset in range(31):
        day = start + timedelta(days=offset)
        sunday = day.weekday() == 6
        high = Decimal(rng.randint(18000, 26000) if sunday else rng.randint(62000, 108000)) / 1000
        low = Decimal(rng.randint(40000, 60000) if sunday else rng.randint(138000, 212000)) / 1000
        p = _period(day, day)
        lines += [
            _line(f"Strom HT (6–22 Uhr), {day:%d.%m.%Y}", 27, GERMANY_VAT, high, unit="kWh", **p),
            _line(f"Strom NT (22–6 Uhr), {day:%d.%m.%Y}", 21, GERMANY_VAT, low, unit="kWh", **p),
        ]
    period = (start, start + timedelta(days=30))
    return _invoice(number, BAKERY, lines, issued=issued, due=due, currency="EUR", period=period,
                    summary="Gewerbestrom nach Lastgang, Tageswerte Hoch- und Niedertarif")


def lindenau_cooperative(number: str, today: date) -> dict:
    """200 lines: cold water and heat for 100 flats in four buildings; issued three days ago, due in
    30 days (a business's terms), never issued in the future."""
    issued = today - timedelta(days=3)
    due = issued + timedelta(days=30)
    period = _month_before(issued)
    p = _period(*period)
    rng = random.Random(number)
    lines = []
    for house in (12, 14, 16, 18):
        for flat in range(1, 26):
            flat_id = f"Henricistr. {house}, Whg. {flat:02d}"
            water = Decimal(rng.randint(2500, 9800)) / 1000
            heat = Decimal(rng.randint(180000, 620000)) / 1000
            lines += [
                _line(f"{flat_id}, Kaltwasser (Zähler KW-{house}{flat:02d})", 212, GERMANY_VAT_REDUCED, water,
                      unit="m³", **p),
                _line(f"{flat_id}, Wärme (Zähler WMZ-{house}{flat:02d})", 12, GERMANY_VAT, heat,
                      unit="kWh", **p),
            ]
    return _invoice(number, COOPERATIVE, lines, issued=issued, due=due, currency="EUR", period=period,
                    summary=f"Wasser und Wärme je Wohnung, {_month_name(period[0], 'de')}")


# --- Shamrock Mobile (Ireland, EUR, RF) --------------------------------------------------


def shamrock_due_soon(number: str, today: date) -> dict:
    due = today + timedelta(days=6)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    p = _period(*period)
    lines = [
        _line("Unlimited 5G plan", 2439, IRELAND_VAT, unit="month", **p),
        _line("Calls to UK mobiles", 19, IRELAND_VAT, "46", unit="min", **p),
        _line("Roaming data, USA", 800, IRELAND_VAT, "1.25", unit="GB",
              note="Data used outside the EU is charged per GB; EU roaming is included in your plan.", **p),
        _line("Texts to short code 50300", 81, IRELAND_VAT, "3", unit="text", **p),
        _line("Pixel 8a instalment, 7 of 24", 1626, IRELAND_VAT, unit="month", **p),
        _line("Screen cover insurance", 406, IRELAND_VAT, unit="month", **p),
    ]
    return _invoice(number, SIOBHAN, lines, issued=issued, due=due, currency="EUR", period=period,
                    summary=f"Mobile bill for {_month_name(period[0], 'en')}")


def shamrock_overdue(number: str, today: date) -> dict:
    due = today - timedelta(days=25)
    issued = due - timedelta(days=14)
    period = _month_before(issued)
    p = _period(*period)
    lines = [
        _line("Essentials plan", 1625, IRELAND_VAT, unit="month", **p),
        _line("Calls to international numbers", 45, IRELAND_VAT, "32", unit="min", **p),
        _line("Late payment fee", 1000, ZERO_VAT, kind="reminder_fee",
              note="Added because the bill was not paid by its due date. If paying is hard right now, "
                   "contact us: we can spread the amount over a few months."),
    ]
    return _invoice(number, CIARAN, lines, issued=issued, due=due, currency="EUR", period=period,
                    summary=f"Mobile bill for {_month_name(period[0], 'en')}, with late fee")


# Grouped by creditor; within a creditor, the first bill is the one shown in its language.
DEMO_INVOICES: tuple[DemoInvoice, ...] = (
    DemoInvoice("ten_lines", "fjordlys", "4100217", "electricity", fjordlys_due_soon),
    DemoInvoice("overdue", "fjordlys", "4100188", "electricity", fjordlys_overdue),
    DemoInvoice("partly_paid", "fjordlys", "4100203", "electricity", fjordlys_partly_paid, paid_percent=40),
    DemoInvoice("due_soon_de", "lindenau", "SWL-10451", "electricity and water", lindenau_due_soon),
    DemoInvoice("overdue_de", "lindenau", "SWL-10388", "electricity and water", lindenau_overdue),
    DemoInvoice("one_line", "lindenau", "SWL-10467", "monthly on-account payment", lindenau_one_line),
    DemoInvoice("long", "lindenau", "SWL-10502", "bakery, daily metered electricity", lindenau_bakery),
    DemoInvoice("two_hundred_lines", "lindenau", "SWL-10530", "water and heat for 100 flats",
                lindenau_cooperative),
    DemoInvoice("due_soon_en", "shamrock", "SM-884120", "mobile bill", shamrock_due_soon),
    DemoInvoice("overdue_en", "shamrock", "SM-879455", "mobile bill", shamrock_overdue),
)


def demo_invoice_numbers() -> dict[str, tuple[str, str]]:
    """(creditor slug, invoice number) of each demo invoice by role: one_line, ten_lines,
    two_hundred_lines, long (over 50 lines), overdue, partly_paid, …"""
    return {spec.role: (spec.creditor_slug, spec.number) for spec in DEMO_INVOICES}


# --- loading -----------------------------------------------------------------------------


def _ensure_invoice(creditor: Creditor, spec: DemoInvoice, today: date) -> Invoice:
    invoice = find_invoice(creditor, spec.number)
    if invoice is not None:
        return invoice
    invoice, _created = import_invoice(creditor, spec.payload(spec.number, today), actor=ACTOR)
    if spec.paid_percent:
        record_payment(invoice, invoice.total * spec.paid_percent // 100, actor=ACTOR,
                       paid_on=today - timedelta(days=1), method="bank_transfer",
                       reference=invoice.payment_reference)
    return invoice


def describe(spec: DemoInvoice, invoice: Invoice, today: date) -> str:
    """One line for the terminal, e.g. 'electricity, overdue by 20 days + reminder fee + interest, 9 lines'."""
    state = due_state(invoice, today)
    when = {
        "due": f"due in {plural(state.days, 'day')}",
        "due_today": "due today",
        "overdue": f"overdue by {plural(state.days, 'day')}",
    }.get(state.kind, state.kind.replace("_", " "))
    kinds = {line.kind for line in invoice.lines}
    when += "".join(f" + {fee.replace('_', ' ')}" for fee in ("reminder_fee", "interest") if fee in kinds)
    parts = [spec.label, when]
    if 0 < invoice.amount_paid < invoice.total:
        parts.append(f"partly paid ({round(invoice.amount_paid * 100 / invoice.total)} %)")
    parts.append(plural(len(invoice.lines), "line"))
    if invoice.customer.preferred_locale is None:
        parts.append("language from the browser")
    return ", ".join(parts)


def load_demo(today: date | None = None) -> list[DemoLink]:
    """Create the demo creditors and invoices that are missing and issue one fresh link per
    invoice that is not cancelled or written off. Returns the links grouped by creditor.
    Does not commit. `today` defaults to each creditor's local date."""
    creditors = {data.slug: _ensure_creditor(data) for data in demo_creditors()}
    config = current_app.config
    links = []
    for spec in DEMO_INVOICES:
        creditor = creditors[spec.creditor_slug]
        day = today or local_today(creditor.country, utcnow())
        invoice = _ensure_invoice(creditor, spec, day)
        if invoice.is_closed:
            continue
        issued = issue_link(
            invoice, channel=LINK_CHANNEL, ttl_days=config["LINK_DEFAULT_TTL_DAYS"], signer=get_signer(),
            base_url=config["PORTAL_BASE_URL"], actor=ACTOR,
        )
        links.append(DemoLink(
            creditor_slug=creditor.slug, invoice_number=invoice.number, description=describe(spec, invoice, day),
            url=issued.url, locale=invoice.customer.preferred_locale or creditor.default_locale,
        ))
    return links


# --- reminders: each demo creditor's lawful default plan ------------------------------------------

#: Each demo creditor's dunning plan (the one the portal ships for its country) and its languages.
DEMO_DUNNING = {
    "fjordlys": ("NO", ["nb", "en", "de"]),  # Norway: nudge, purring with the purregebyr, inkassovarsel by letter
    "lindenau": ("DE", ["de", "en", "nb"]),  # Germany: nudge, Zahlungserinnerung, Mahnung with costs and interest
    "shamrock": ("none", ["en", "nb", "de"]),  # Ireland: "No rules" (nothing is checked)
}


def load_dunning_demo() -> int:
    """Give each demo creditor that has no dunning plan the lawful default plan of its country (texts in
    en, nb and de); Lindenau's invoices tell consumers when they are in default (§ 286(3) BGB).
    Idempotent. Returns how many plans were saved now. The next `flask dunning run` enrols the bills."""
    from app.dunning.services import plans_of, save_plan, shipped_plan
    from app.dunning.settings import save_settings

    saved = 0
    for creditor in db.session.scalars(select(Creditor).where(Creditor.slug.in_(DEMO_DUNNING))):
        jurisdiction, languages = DEMO_DUNNING[creditor.slug]
        if plans_of(creditor.id):
            continue
        save_settings(creditor, languages=languages, consumer_default_notice=creditor.country == "DE")
        save_plan(creditor, shipped_plan(jurisdiction), actor=ACTOR)
        saved += 1
    return saved


@dataclass(frozen=True)
class DunningWalk:
    """The days `flask dunning run --date` walks the Fjordlys demo through (see the README)."""

    nudge: date  # Kari's bill (4100217): the SMS before the due date
    other_nudge: date  # Ingrid's (4100203): her SMS; she pays after it
    reminder: date  # Kari's: the reminder by SMS, with the purregebyr
    warning: date  # Kari's: the inkassovarsel, by letter (no consent to electronic notices)
    hand_off: date  # the day after the inkassovarsel's 14 days: `flask collection run --date`


def dunning_walk() -> DunningWalk | None:
    """The walk's days for the demo as loaded (SMS and e-mail wait for a working day), or None."""
    from app.dunning.calendar import next_working_day

    fjordlys = db.session.scalar(select(Creditor).where(Creditor.slug == "fjordlys"))
    numbers = demo_invoice_numbers()
    kari = find_invoice(fjordlys, numbers["ten_lines"][1]) if fjordlys else None
    ingrid = find_invoice(fjordlys, numbers["partly_paid"][1]) if fjordlys else None
    if kari is None or ingrid is None:
        return None
    nudge = next_working_day(kari.due_date - timedelta(days=3), "NO")
    reminder = next_working_day(kari.due_date + timedelta(days=14), "NO")
    warning = reminder + timedelta(days=15)  # 15 days after the reminder, whose deadline is 14
    return DunningWalk(nudge, next_working_day(ingrid.due_date - timedelta(days=3), "NO"), reminder, warning,
                       warning + timedelta(days=15))


# --- the back office's demo ------------------------------------------------------------------

DEMO_AGENT_EMAIL = "agent@demo.example"
DEMO_AGENT_PASSWORD = "demo back office"  # noqa: S105  development only: `flask demo` makes no agent in production


def load_back_office_demo(today_for: Callable[[str], date] | None = None) -> bool:
    """An admin agent for the three demo creditors, a customer's question on a Fjordlys bill and a
    dispute of a line on a Shamrock bill, so that the inbox has something to answer. Idempotent;
    does nothing in production. Returns whether the agent was created now."""
    from app.backoffice.services import create_agent, find_agent, grant_role
    from app.resolutions.disputes import open_dispute
    from app.support.services import open_request

    if current_app.config["PORTAL_ENV"] == "production":
        return False
    creditors = {c.slug: c for c in db.session.scalars(select(Creditor).where(
        Creditor.slug.in_({spec.creditor_slug for spec in DEMO_INVOICES})))}
    agent, created = find_agent(DEMO_AGENT_EMAIL), False
    if agent is None:
        agent = create_agent(DEMO_AGENT_EMAIL, "Demo Agent", DEMO_AGENT_PASSWORD, creditors["fjordlys"], "admin")
        created = True
    for creditor in creditors.values():
        grant_role(agent, creditor, "admin")
    numbers = demo_invoice_numbers()
    attachments = current_app.config["ATTACHMENT_DIR"]
    question = find_invoice(creditors["fjordlys"], numbers["overdue"][1])
    today_for = today_for or (lambda country: local_today(country, utcnow()))
    if question is not None and not question.is_closed:
        open_request(question, topic="bill_question", message="Hvorfor er regningen så mye høyere enn i fjor? "
                     "Vi har ikke brukt mer strøm.", contact_method="email", contact_email=None, contact_phone=None,
                     callback_date=None, callback_window=None, upload=None, locale="nb",
                     submission_key="demo-question", attachment_dir=attachments, today=today_for("NO"))
    disputed = find_invoice(creditors["shamrock"], numbers["overdue_en"][1])
    if disputed is not None and disputed.status in ("open", "partially_paid"):
        calls = next((line for line in disputed.lines if "international" in line.description), disputed.lines[0])
        open_dispute(disputed, reason="wrong_amount", message="I never called international numbers last month.",
                     line_ids=[calls.id], upload=None, attachment_dir=attachments, locale="en",
                     submission_key="demo-dispute", today=today_for("IE"))
    return created


def load_collection_demo() -> bool:
    """A demo collection partner (its receiver: `flask collection demo-partner`) for Fjordlys, whose
    reminders the portal sends by its dunning plan: a bill goes once its inkassovarsel's deadline has
    passed (the README walks one there with `flask dunning run --date`). Idempotent; nothing in
    production. Returns whether the partner was created now."""
    from app.debt_collection.partners import add_partner, find_partner, set_policy

    if current_app.config["PORTAL_ENV"] == "production":
        return False
    partner, created = find_partner(DEMO_PARTNER), False
    if partner is None:
        partner = add_partner(DEMO_PARTNER, "Nord Collect AS (demo)", DEMO_PARTNER_ENDPOINT, phone="+47 21 00 00 00",
                              email="kundeservice@nordcollect.example", website="https://nordcollect.example",
                              case_page_url="https://nordcollect.example/sak/{reference}").partner
        created = True
    fjordlys = db.session.scalar(select(Creditor).where(Creditor.slug == "fjordlys"))
    set_policy(fjordlys, partner, min_balance=10000, days_past_due=14, days_after_final_reminder=7)
    return created


# --- flask demo --------------------------------------------------------------------------


def _row_counts() -> tuple[int, int]:
    return (db.session.scalar(select(func.count(Creditor.id))),
            db.session.scalar(select(func.count(Invoice.id))))


def _print_links(links: list[DemoLink]) -> None:
    slugs = {link.creditor_slug for link in links}
    names = dict(db.session.execute(select(Creditor.slug, Creditor.name).where(Creditor.slug.in_(slugs))).all())
    for slug, group in groupby(links, key=lambda link: link.creditor_slug):
        click.echo("")
        click.secho(f"{names[slug]} ({slug})", bold=True)
        for link in group:
            click.echo(f"  {link.invoice_number}  {link.description}  [{link.locale}]")
            click.echo(f"    {link.url}")


@click.command(
    help="Load the demo data (three creditors and their invoices) and print one fresh link per demo "
    "invoice, grouped by creditor. Idempotent: what exists is kept; every run issues new links."
)
@with_appcontext
def demo():
    with cli_transaction("Demo data not loaded"):
        before = _row_counts()
        links = load_demo()
        load_dunning_demo()
        load_back_office_demo()
        load_collection_demo()
        walk = dunning_walk()
        after = _row_counts()
    new_creditors, new_invoices = after[0] - before[0], after[1] - before[1]
    if new_creditors or new_invoices:
        click.echo(f"Demo data loaded: {new_creditors} new creditors, {new_invoices} new invoices.")
    else:
        click.echo("Demo data already there: nothing new.")
    ttl = current_app.config["LINK_DEFAULT_TTL_DAYS"]
    click.echo(f"{len(links)} fresh links, valid for {ttl} days (the step-up check is off for every demo creditor).")
    _print_links(links)
    if current_app.config["PORTAL_ENV"] != "production":
        base = current_app.config["PORTAL_BASE_URL"]
        click.echo("")
        click.secho("Back office", bold=True)
        click.echo(f"  {base}/backoffice/  as {DEMO_AGENT_EMAIL}, password \"{DEMO_AGENT_PASSWORD}\" "
                   "(admin of the three creditors);")
        click.echo("  at the first sign-in, add the account to an authenticator app (QR code or key).")
        click.echo("")
        click.secho("Reminders and debt collection", bold=True)
        click.echo("  The demo creditors' reminders follow their countries' default plans (flask dunning plans list "
                   "fjordlys).")
        if walk is not None:
            numbers = demo_invoice_numbers()
            click.echo(f"  Walk Fjordlys bill {numbers['ten_lines'][1]} through them (and see "
                       f"{numbers['partly_paid'][1]} paid after its SMS), as the README shows:")
            for day, what in ((walk.nudge, "the SMS before the due date"), (walk.other_nudge, "Ingrid's SMS"),
                              (walk.reminder, "the reminder by SMS, with the fee"),
                              (walk.warning, "the inkassovarsel, by letter")):
                click.echo(f"    flask dunning run --creditor fjordlys --date {day.isoformat()}   # {what}")
            click.echo(f"    flask collection run --date {walk.hand_off.isoformat()}   # the hand-off, after its "
                       "deadline")
        click.echo("  With `flask collection demo-partner` in another terminal, `flask outbox run --once` delivers the "
                   "case: it is acknowledged and paid through the partner API.")
