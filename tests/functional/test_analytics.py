"""The back office's analytics page, its CSV and `flask analytics rollup`, over the history of
tests/unit/analytics/history.py (its figures are worked out there)."""

from __future__ import annotations

import csv
import io

import pytest

from app.extensions import db
from tests.factories import make_creditor
from tests.functional.agents import EN, actions, enrol, make_agent
from tests.unit.analytics.history import TOTAL, build

PERIOD = "from=2026-11-02&to=2026-11-22"


@pytest.fixture
def history(app, session):
    with app.test_request_context():
        h = build()
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["analytics", "rollup"])
    assert result.exit_code == 0, result.output
    assert "rebuilt: 3 message(s) given a payment" in result.output
    return h


@pytest.fixture
def agent(app, client, history):
    agent = make_agent(app, history.creditor, "ola@example.test", "agent")
    enrol(client, "ola@example.test")
    return agent


def test_the_page_shows_the_funnel_by_channel_and_what_became_of_the_bills(client, history, agent):
    page = client.get(f"/backoffice/analytics?creditor={history.creditor.id}&{PERIOD}&by=channel", headers=EN)
    assert page.status_code == 200
    text = page.text
    assert "<svg" in text and 'role="img"' in text
    assert "Sent: 7. Delivered: 6. Opened: 5. Paid: 3." in text  # the chart's description: the totals
    for channel in ("SMS", "e-mail", "letter"):
        assert f'<th scope="row">{channel}</th>' in text
    assert "42.9" in text  # 3 of 7 paid
    assert "Paid before the first reminder" in text and "44.4" in text  # 4 of 9 bills
    assert "To the collection partner" in text
    assert "1 of 2 said the bill was clear · comments: 1" in text
    assert actions(agent).count("analytics_viewed") == 1


def test_the_csv_has_a_line_per_row_and_the_total(client, history, agent):
    answer = client.get(f"/backoffice/analytics.csv?creditor={history.creditor.id}&{PERIOD}&by=channel", headers=EN)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert rows[0][:4] == ["Creditor", "Dimension", "Value", "Sent"]
    by_value = {row[2]: row for row in rows[1:]}
    assert by_value["SMS"][3:11] == ["3", "3", "2", "0", "1", "1", "NOK", str(TOTAL)]
    assert by_value["Total"][3:11] == ["7", "6", "5", "1", "3", "3", "NOK", str(3 * TOTAL)]
    assert by_value["Total"][11] == "2"
    assert actions(agent).count("analytics_exported") == 1


def test_filters_and_other_dimensions(client, history, agent):
    base = f"/backoffice/analytics?creditor={history.creditor.id}&{PERIOD}"
    by_variant = client.get(f"{base}&by=variant", headers=EN).text
    assert '<th scope="row">No variant</th>' in by_variant and '<th scope="row">A</th>' in by_variant
    only_none = client.get(f"{base}&by=channel&variant=-", headers=EN).text  # m3, m4, m6, m8
    assert "Sent: 4. Delivered: 3. Opened: 3. Paid: 2." in only_none
    by_week = client.get(f"{base}&by=week", headers=EN).text
    assert "Week of Nov 2, 2026" in by_week and "Week of Nov 9, 2026" in by_week


def test_bad_input_is_said_and_nothing_breaks(client, history, agent):
    base = f"/backoffice/analytics?creditor={history.creditor.id}"
    for query, words in (("&from=yesterday", "Please enter the dates as 2026-12-31."),
                         ("&from=2026-12-01&to=2026-11-01", "The period must end after it begins"),
                         ("&by=colour", "Please choose one of the ways to split the figures."),
                         ("&step=two", "A reminder step or plan version is a number.")):
        page = client.get(base + query, headers=EN)
        assert page.status_code == 422 and words in page.text
    assert client.get(f"/backoffice/analytics.csv?creditor={history.creditor.id}&by=colour").status_code == 422


def test_another_creditors_figures_are_a_404(app, client, history, agent):
    with app.test_request_context():
        other = make_creditor("DE")
    db.session.commit()
    assert client.get(f"/backoffice/analytics?creditor={other.id}", headers=EN).status_code == 404
    assert client.get(f"/backoffice/analytics.csv?creditor={other.id}", headers=EN).status_code == 404
    assert client.get("/backoffice/analytics?creditor=x", headers=EN).status_code == 404


def test_the_page_needs_a_signed_in_agent(client, history):
    answer = client.get("/backoffice/analytics", headers=EN)
    assert answer.status_code in (302, 303) and "/sign-in" in answer.headers["Location"]


# --- the creditor API ----------------------------------------------------------------------------------


def test_the_api_answers_the_same_figures_as_documented(client, history):
    from app.creditors.services import create_api_key
    from tests.functional.test_openapi import conforms, response_schema

    headers = {"Authorization": f"Bearer {create_api_key(history.creditor)}"}
    test_key = {"Authorization": f"Bearer {create_api_key(history.creditor, mode='test')}"}
    other = {"Authorization": f"Bearer {create_api_key(make_creditor('DE'))}"}
    db.session.commit()
    document = client.get("/api/v1/openapi.json").json
    answer = client.get(f"/api/v1/analytics/funnel?{PERIOD}&by=channel", headers=headers)
    assert answer.status_code == 200, answer.text
    assert conforms(answer.json, response_schema(document, "/analytics/funnel", "get", "200"), document) == []
    body = answer.json
    assert (body["from"], body["to"], body["by"], body["attribution_window_days"]) == (
        "2026-11-02", "2026-11-22", "channel", 7)
    rows = {row["key"]: row for row in body["rows"]}
    assert (rows["sms"]["sent"], rows["sms"]["opened"], rows["sms"]["paid"]) == (3, 2, 1)
    total = body["total"]
    assert (total["sent"], total["delivered"], total["opened"], total["failed"], total["paid"]) == (7, 6, 5, 1, 3)
    assert total["paid_amounts"] == [{"currency": "NOK", "amount": 3 * TOTAL}]
    assert total["median_days_to_pay"] == 2 and total["rates"]["paid"] == round(3 / 7, 4)
    assert body["payments"]["partner"] == [{"currency": "NOK", "count": 1, "amount": 5000}]
    assert body["bills"]["due"] == 9 and body["bills"]["paid_before_first_reminder"] == 4
    assert body["bills"]["promises"] == {"made": 3, "kept": 1, "broken": 1}
    assert body["clarity"] == {"answers": 2, "clear": 1, "comments": 1, "score": 0.5}
    by_week = client.get(f"/api/v1/analytics/funnel?{PERIOD}&by=week&variant=-", headers=headers).json
    assert [(row["key"], row["sent"]) for row in by_week["rows"]] == [("2026-11-02", 2), ("2026-11-09", 2)]
    # Another creditor's key sees its own (empty) figures; a test key none; bad input is named.
    assert client.get(f"/api/v1/analytics/funnel?{PERIOD}", headers=other).json["total"]["sent"] == 0
    refused = client.get("/api/v1/analytics/funnel", headers=test_key)
    assert refused.status_code == 403 and refused.json["error"] == "live_only"
    bad = client.get("/api/v1/analytics/funnel?by=colour&from=x&step=-1", headers=headers)
    assert bad.status_code == 422
    assert conforms(bad.json, response_schema(document, "/analytics/funnel", "get", "422"), document) == []
    assert set(bad.json["errors"]) == {"by", "from", "step"}
