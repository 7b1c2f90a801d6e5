"""Helpers for the letters' tests: a customer's letter decided by the run, the print run, and reading a
PDF back (its text where it stands on the page, its QR codes decoded from the rendered page)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta

import pypdf
import pypdfium2
import zxingcpp

from app.dunning import services
from app.dunning.letters import batch
from tests.unit.dunning.conftest import TODAY, bill, run

BASE = "https://pay.example.test"
MM = 25.4 / 72  # millimetres in a point


def letter_bills(creditor, plan, *, count: int = 1, due: date = TODAY - timedelta(days=14), ref: str = "C-1",
                 on: date = TODAY, **customer_fields) -> list:
    """`count` bills of one customer, due from `due` back, whose next step goes by letter on `on`."""
    invoices = [bill(creditor, plan, due=due - timedelta(days=i), ref=ref, **customer_fields) for i in range(count)]
    services.update_contact_points(invoices[0].customer, {"preferred_channel": "letter"})
    report = run(creditor, on)
    assert report.by_channel == {"letter": 1}, report
    return invoices


def print_day(on: date = TODAY, **kw) -> list:
    return list(batch.print_batch(on, base_url=BASE, ttl_days=60, **kw))


@dataclass(frozen=True)
class Text:
    text: str
    x: float  # mm from the sheet's left edge
    y: float  # the baseline, mm from the sheet's top edge
    size: float  # mm


def texts(pdf: bytes, page: int = 0) -> list[Text]:
    """Each run of text on the page with where it stands (pypdf's text matrix times the page's)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    found: list[Text] = []
    height = float(reader.pages[page].mediabox.height)

    def visit(text, cm, tm, _font, size):
        if text.strip():
            x = cm[0] * tm[4] + cm[2] * tm[5] + cm[4]
            y = cm[1] * tm[4] + cm[3] * tm[5] + cm[5]
            found.append(Text(text.strip(), x * MM, (height - y) * MM, size * abs(cm[3] * tm[3]) * MM))

    reader.pages[page].extract_text(visitor_text=visit)
    return found


def plain(pdf: bytes) -> str:
    """The whole text, every page, with its line breaks as spaces (words wrap anywhere)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def qr_codes(pdf: bytes) -> list[str]:
    """The QR codes on every page, decoded from the pages rendered at 300 dpi (zxing-cpp)."""
    found = []
    for page in pypdfium2.PdfDocument(pdf):
        image = page.render(scale=300 / 72).to_pil()
        found += [code.text for code in zxingcpp.read_barcodes(image) if code.format == zxingcpp.BarcodeFormat.QRCode]
    return found


def find(found: list[Text], text: str) -> Text:
    matches = [t for t in found if t.text.startswith(text)]
    assert matches, f"{text!r} not on the page: {[t.text for t in found]}"
    return matches[0]
