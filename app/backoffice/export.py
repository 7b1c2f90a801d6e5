"""CSV exports of the back office, safe to open in a spreadsheet.

A cell that begins with =, +, -, @, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets ("CSV injection": a customer named `=HYPERLINK(...)` would run when a
supervisor opens the file). Such cells get a leading apostrophe, which spreadsheets show as
text and do not evaluate; every cell is quoted."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from flask import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    """A download (UTF-8 with a byte order mark, so that Excel reads æøå right)."""
    body = "\ufeff" + csv_text(header, rows)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"})
