"""The events feed (`GET /api/v1/events`) and the invoice list (`GET /api/v1/invoices`): their order,
cursors, filters and refusals, each creditor's own only; and, on PostgreSQL, the feed while events are
written concurrently: a transaction that took a lower id and commits later is not skipped by a reader
who already passed the higher one, and a reader following next_cursor gets every committed event
exactly once and none of a rolled-back transaction."""

from __future__ import annotations

import random
import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select

from app.creditors.models import Creditor
from app.events import feed, services
from app.events.models import CreditorEvent
from app.extensions import db
from app.models import utcnow
from tests.factories import invoice_payload, make_creditor, make_invoice
from tests.functional.test_api import API, api_creditor
from tests.support.races import racing_app


def record(creditor_id: int, n: int) -> CreditorEvent:
    """An event recorded and flushed, its id taken, as by a transaction that goes on after it (`record`
    leaves the flush to the session's next one when no endpoint is to be sent the event)."""
    event = services.record(creditor_id, "promise.broken", {"promise": {"reference": f"P{n}"}})
    db.session.flush()
    return event


def read_all(client, headers, limit=2) -> list[dict]:
    found, cursor = [], None
    while True:
        answer = client.get(f"{API}/events", query_string={"after": cursor or "", "limit": limit}, headers=headers)
        assert answer.status_code == 200, answer.json
        found += answer.json["data"]
        if not answer.json["data"]:
            assert answer.json["next_cursor"] == cursor
            return found
        cursor = answer.json["next_cursor"]


# --- the feed ----------------------------------------------------------------------------------------


def test_the_feed_gives_each_event_once_oldest_first_and_only_the_creditors_own(client, session):
    creditor, headers = api_creditor("NO")
    other, other_headers = api_creditor("NO")
    empty = client.get(f"{API}/events", headers=headers)
    assert empty.status_code == 200 and empty.json == {"data": [], "next_cursor": None}
    mine = [record(creditor.id, n) for n in range(5)]
    theirs = record(other.id, 99)
    db.session.commit()
    got = read_all(client, headers)
    assert [e["id"] for e in got] == [e.public_id for e in mine]
    assert got[0] == {"id": mine[0].public_id, "type": "promise.broken", "timestamp": got[0]["timestamp"],
                      "livemode": True, "data": {"promise": {"reference": "P0"}}}
    assert [e["id"] for e in read_all(client, other_headers)] == [theirs.public_id]
    # A cursor of one creditor's feed shows another creditor nothing of the first's.
    first = client.get(f"{API}/events", query_string={"limit": 1}, headers=headers).json["next_cursor"]
    assert all(e["id"] != mine[1].public_id for e in
               client.get(f"{API}/events", query_string={"after": first}, headers=other_headers).json["data"])
    later = record(creditor.id, 5)
    db.session.commit()
    last = client.get(f"{API}/events", query_string={"limit": 5}, headers=headers).json["next_cursor"]
    assert [e["id"] for e in client.get(f"{API}/events", query_string={"after": last},
                                        headers=headers).json["data"]] == [later.public_id]


@pytest.mark.parametrize("query, field", [
    ({"after": "nonsense"}, "after"), ({"after": "inc_MQ"}, "after"), ({"after": "evc_" + "A" * 300}, "after"),
    ({"after": "evc_LTE"}, "after"), ({"after": "evc_MS4y"}, "after"), ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "x"}, "limit"), ({"limit": "-1"}, "limit"),
])
def test_the_feed_refuses_a_bad_cursor_or_limit_by_name(client, session, query, field):
    _creditor, headers = api_creditor("NO")
    answer = client.get(f"{API}/events", query_string=query, headers=headers)
    assert answer.status_code == 422 and field in answer.json["errors"]


# --- the invoice list ---------------------------------------------------------------------------------


def test_the_invoice_list_filters_and_pages_in_a_stable_order(client, session):
    _creditor, headers = api_creditor("NO")
    other, other_headers = api_creditor("NO")
    today = date.today()
    made = []
    for n in range(7):
        payload = invoice_payload("NOK", number=f"L-{n}", issue_date=(today - timedelta(days=20)).isoformat(),
                                  due_date=(today + timedelta(days=n)).isoformat())
        payload["customer"] = dict(payload["customer"], external_ref="C-A" if n % 2 else "C-B")
        answer = client.post(f"{API}/invoices", json=payload, headers=headers)
        assert answer.status_code == 201, answer.json
        made.append(answer.json["number"])
    client.post(f"{API}/invoices/L-3/cancel", json={"reason": "test"}, headers=headers)
    with client.application.test_request_context():
        make_invoice(other, number="L-0")
        db.session.commit()

    def numbers(**query) -> list[str]:
        found, cursor = [], None
        while True:
            answer = client.get(f"{API}/invoices", query_string={**query, "after": cursor or "", "limit": 3},
                                headers=headers)
            assert answer.status_code == 200, answer.json
            assert len(answer.json["data"]) <= 3
            found += [row["number"] for row in answer.json["data"]]
            cursor = answer.json["next_cursor"]
            if cursor is None:
                return found

    assert numbers() == made
    assert numbers(status="cancelled") == ["L-3"]
    assert numbers(status="open,cancelled") == made
    assert numbers(customer="C-A") == ["L-1", "L-3", "L-5"]
    assert numbers(customer="nobody") == []
    assert numbers(due_from=(today + timedelta(days=2)).isoformat(), due_to=(today + timedelta(days=4)).isoformat()) \
        == ["L-2", "L-3", "L-4"]
    assert numbers(updated_since=(utcnow() + timedelta(hours=1)).isoformat()) == []
    assert numbers(updated_since=(utcnow() - timedelta(hours=1)).isoformat()) == made
    row = client.get(f"{API}/invoices", query_string={"limit": 1}, headers=headers).json["data"][0]
    assert row["customer_ref"] == "C-B" and row["currency"] == "NOK" and isinstance(row["balance"], int)
    theirs = client.get(f"{API}/invoices", headers=other_headers).json["data"]
    assert [r["number"] for r in theirs] == ["L-0"] and theirs[0]["customer_ref"] != "C-B"


@pytest.mark.parametrize("query, field", [
    ({"status": "lost"}, "status"), ({"due_from": "2026-13-01"}, "due_from"), ({"due_to": "tomorrow"}, "due_to"),
    ({"due_from": "2026-12-10", "due_to": "2026-12-01"}, "due_to"),
    ({"updated_since": "2026-12-01T10:00"}, "updated_since"),
    ({"updated_since": "yesterday"}, "updated_since"), ({"after": "evc_MS4y"}, "after"), ({"limit": "201"}, "limit"),
])
def test_the_invoice_list_refuses_bad_filters_by_name(client, session, query, field):
    _creditor, headers = api_creditor("NO")
    answer = client.get(f"{API}/invoices", query_string=query, headers=headers)
    assert answer.status_code == 422 and field in answer.json["errors"]


# --- the feed under concurrent writes (PostgreSQL) ----------------------------------------------------

WRITERS = 4


@pytest.fixture
def race_app(app):
    yield from racing_app(app, WRITERS + 4)


@pytest.fixture
def committed_creditor(race_app):
    with race_app.app_context():
        creditor = make_creditor("NO")
        db.session.commit()
        creditor_id = creditor.id
        db.session.remove()
    yield creditor_id
    with race_app.app_context(), db.engine.begin() as conn:
        conn.execute(delete(CreditorEvent).where(CreditorEvent.creditor_id == creditor_id))
        conn.execute(delete(Creditor).where(Creditor.id == creditor_id))


def _page(app, creditor_id, after, limit=100):
    """One read of the feed as the API's view makes it: read, commit, then answer."""
    with app.app_context():
        try:
            events, cursor = feed.page(creditor_id, after=after, limit=limit)
            found = [e.public_id for e in events]
            db.session.commit()
            return found, cursor
        finally:
            db.session.remove()


def test_a_lower_id_committed_later_is_not_skipped(race_app, committed_creditor):
    """T1 takes an id and waits; T2 takes a higher id and commits first. The reader gets T2's event and
    moves on; T1's, committed later with the lower id, comes in the next read: nothing is skipped."""
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    ids: dict[str, tuple[int, str]] = {}

    def slow() -> None:
        with race_app.app_context():
            event = record(committed_creditor, 1)
            ids["slow"] = (event.id, event.public_id)
            holding.set()
            release.wait(30)
            db.session.commit()
            db.session.remove()
            done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    assert holding.wait(30)
    with race_app.app_context():
        event = record(committed_creditor, 2)
        ids["fast"] = (event.id, event.public_id)
        db.session.commit()
        db.session.remove()
    assert ids["slow"][0] < ids["fast"][0]  # the race is real: the lower id is not committed yet
    seen, cursor = _page(race_app, committed_creditor, None)
    assert seen == [ids["fast"][1]]
    release.set()
    thread.join(30)
    assert done.is_set()
    more, _cursor = _page(race_app, committed_creditor, cursor)
    assert more == [ids["slow"][1]]


def test_a_reader_following_the_cursor_during_concurrent_writes_gets_each_committed_event_once(
        race_app, committed_creditor):
    committed: list[str] = []
    rolled_back: list[str] = []
    errors: list[str] = []
    writing = threading.Event()
    writing.set()
    lock = threading.Lock()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        with race_app.app_context():
            try:
                for n in range(25):
                    events = [record(committed_creditor, n).public_id for _ in range(rng.randint(1, 3))]
                    if rng.random() < 0.2:
                        db.session.rollback()
                        with lock:
                            rolled_back.extend(events)
                    else:
                        if rng.random() < 0.5:  # hold the transaction open a little: commits out of id order
                            threading.Event().wait(rng.random() / 20)
                        db.session.commit()
                        with lock:
                            committed.extend(events)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc)[:300])
            finally:
                db.session.remove()

    seen: list[str] = []

    def reader() -> None:
        cursor = None
        try:
            while True:
                still_writing = any(t.is_alive() for t in writers)
                got, cursor = _page(race_app, committed_creditor, cursor, limit=7)
                seen.extend(got)
                if not got and not still_writing:
                    return
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc)[:300])

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    reading = threading.Thread(target=reader)
    reading.start()
    for thread in writers:
        thread.join(120)
    reading.join(120)
    assert errors == []
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(seen) == set(committed)  # nothing lost
    assert not set(seen) & set(rolled_back) and rolled_back  # nothing invented
    with race_app.app_context():
        stored = set(db.session.scalars(select(CreditorEvent.public_id).where(
            CreditorEvent.creditor_id == committed_creditor)))
        db.session.remove()
    assert stored == set(committed)
