"""The benchmark's floor: one Flask route rendering a 5 KB template, nothing else.

No database, session, translations or security headers: it measures what gunicorn, the
WSGI stack and Jinja cost on this machine, so the portal's pages can be read as a ratio
to it. Served by bench/bill_page.py as `gunicorn 'floor_app:create_app()'`.
"""

from __future__ import annotations

import os

from flask import Flask, render_template

HERE = os.path.dirname(os.path.abspath(__file__))


def _items() -> list[dict]:
    """Ten table rows, about what a short bill shows."""
    return [
        {"description": f"Item {n}: monthly service", "quantity": "1", "amount": f"{100 + n},00 kr"}
        for n in range(1, 11)
    ]


def create_app() -> Flask:
    app = Flask(__name__, template_folder=os.path.join(HERE, "templates"))

    @app.get("/")
    def floor():
        """The floor page: one template, a ten-row loop."""
        return render_template(
            "floor.html", title="Benchmark floor", brand="Floor AS", email="help@example.test",
            phone="+4722334455", items=_items(),
        )

    return app
