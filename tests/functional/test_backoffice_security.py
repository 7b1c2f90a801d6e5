"""The back office's sign-in under attack: signing out ends the session on the server; an admin of
one creditor cannot lock out an agent who works for others, and a reset factor is enrolled again only
with a one-time code; second-factor secrets are encrypted and never in the cookie; unknown and known
addresses answer alike, in the same time, and hammering an address slows the attacker, not the agent."""

from __future__ import annotations

import json
import re
import statistics
import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, text, update

from app.backoffice import services
from app.backoffice.models import AgentSession
from app.crypto import decrypt
from app.extensions import db
from app.models import utcnow
from app.outbox.email import render
from app.outbox.models import OutboxMessage
from tests.factories import make_creditor
from tests.functional.agents import (
    CSRF,
    EN,
    actions,
    cli,
    code_step,
    enrol,
    key_of,
    make_agent,
    password_step,
    post,
    token,
)

COOKIE = "portal_session"


@pytest.fixture
def creditor(app, session):
    creditor = make_creditor("NO")
    db.session.commit()
    return creditor


@pytest.fixture
def agent(app, creditor):
    return make_agent(app, creditor, "ola@example.test")


def from_address(client, ip: str):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def copy_of(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    copy = app.test_client()
    copy.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return copy


# --- 3. signing out ends the session on the server ----------------------------------------------------


def test_a_copy_of_the_cookie_taken_before_signing_out_signs_nobody_in(app, client, agent):
    enrol(client)
    copy = copy_of(app, client)
    assert copy.get("/backoffice/", headers=EN).status_code == 200  # a copy works while the session does
    assert client.post("/backoffice/sign-out", data={"csrf_token": token(client, "/backoffice/")}).status_code == 303
    assert copy.get("/backoffice/").status_code == 302
    assert db.session.scalar(select(AgentSession.ended_at).where(AgentSession.agent_id == agent.id)) is not None


def test_signing_out_here_leaves_the_agents_other_sessions_alone(app, agent):
    first, second = app.test_client(), app.test_client()
    secret = enrol(first)
    password_step(second)
    assert code_step(second, pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))).status_code == 303
    first.post("/backoffice/sign-out", data={"csrf_token": token(first, "/backoffice/")})
    assert first.get("/backoffice/").status_code == 302 and second.get("/backoffice/").status_code == 200


def test_sign_out_everywhere_on_the_command_line_ends_copies_too(app, client, agent):
    enrol(client)
    copy = copy_of(app, client)
    assert cli(app, "sign-out", "ola@example.test").exit_code == 0
    assert copy.get("/backoffice/").status_code == 302 and client.get("/backoffice/").status_code == 302


def test_a_session_ends_on_the_server_after_its_hours(app, client, agent):
    enrol(client)
    db.session.execute(update(AgentSession).values(created_at=utcnow() - timedelta(
        hours=app.config["BACKOFFICE_SESSION_HOURS"], seconds=1)))
    db.session.commit()
    # the cookie's own clock is not what decides: the server's row is too old
    assert client.get("/backoffice/").status_code == 302


# --- 4. an admin's reach, and resets with a one-time enrolment code ------------------------------------


@pytest.fixture
def two_creditors(app, session):
    first, second = make_creditor("NO"), make_creditor("DE")
    db.session.commit()
    return first, second


def test_an_admin_of_one_creditor_cannot_disable_or_reset_an_agent_who_works_for_others(app, client, two_creditors):
    first, second = two_creditors
    make_agent(app, first, "admin@example.test", "admin")
    enrol(client, "admin@example.test")
    shared = make_agent(app, first, "kari@example.test", "agent", name="Kari")
    assert cli(app, "grant", "kari@example.test", "--creditor", second.slug, "--role", "agent").exit_code == 0
    victim = app.test_client()
    enrol(victim, "kari@example.test")

    page = client.get("/backoffice/agents", headers=EN)
    assert 'value="disable"' not in page.text and 'value="reset_mfa"' not in page.text
    for action in ("disable", "reset_mfa"):
        answer = post(client, f"/backoffice/agents/{shared.id}", {"creditor_id": first.id, "action": action},
                      page="/backoffice/agents", follow_redirects=True)
        assert "also works for creditors you are not an admin of" in answer.text
    assert shared.disabled_at is None and shared.has_second_factor and not shared.enrolment_code_required
    assert victim.get("/backoffice/").status_code == 200  # still signed in
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == services.ENROLMENT_KIND)) is None

    # the admin's own creditor is the admin's to change: the role there, or taking it away
    post(client, f"/backoffice/agents/{shared.id}", {"creditor_id": first.id, "action": "role:supervisor"},
         page="/backoffice/agents")
    assert shared.role_for(first.id) == "supervisor" and shared.role_for(second.id) == "agent"
    post(client, f"/backoffice/agents/{shared.id}", {"creditor_id": first.id, "action": "remove"},
         page="/backoffice/agents")
    assert shared.role_for(first.id) is None and shared.disabled_at is None
    # ... and the operator changes the agent everywhere
    assert cli(app, "disable", "kari@example.test").exit_code == 0 and shared.disabled_at is not None
    assert cli(app, "enable", "kari@example.test").exit_code == 0 and shared.disabled_at is None


def test_an_admin_of_every_creditor_of_the_agent_may_disable_them(app, client, two_creditors):
    first, second = two_creditors
    make_agent(app, first, "admin@example.test", "admin")
    assert cli(app, "grant", "admin@example.test", "--creditor", second.slug, "--role", "admin").exit_code == 0
    enrol(client, "admin@example.test")
    shared = make_agent(app, first, "kari@example.test", "agent", name="Kari")
    assert cli(app, "grant", "kari@example.test", "--creditor", second.slug, "--role", "agent").exit_code == 0
    post(client, f"/backoffice/agents/{shared.id}", {"creditor_id": second.id, "action": "disable"},
         page="/backoffice/agents")
    assert shared.disabled_at is not None


def enrolment_code_step(client, code):
    page = client.get("/backoffice/sign-in/enrolment-code", headers=EN)
    return client.post("/backoffice/sign-in/enrolment-code",
                       data={"csrf_token": CSRF.search(page.text).group(1), "code": code}, headers=EN)


def test_after_a_reset_the_password_alone_does_not_enrol_a_new_factor(app, client, creditor):
    make_agent(app, creditor, "admin@example.test", "admin")
    enrol(client, "admin@example.test")
    agent = make_agent(app, creditor, "kari@example.test", "agent", name="Kari")
    kari = app.test_client()
    enrol(kari, "kari@example.test")
    post(client, f"/backoffice/agents/{agent.id}", {"creditor_id": creditor.id, "action": "reset_mfa"},
         page="/backoffice/agents")
    assert not agent.has_second_factor and agent.enrolment_code_required
    assert kari.get("/backoffice/").status_code == 302  # every session ended

    # whoever has the password is asked for the code, and cannot skip to the enrolment
    thief = app.test_client()
    assert password_step(thief, "kari@example.test").headers["Location"].endswith("/sign-in/enrolment-code")
    assert thief.get("/backoffice/sign-in/enrol").headers["Location"].endswith("/sign-in/enrolment-code")
    assert enrolment_code_step(thief, "AAAA-BBBB-CCCC").status_code == 422
    assert agent.totp_pending_encrypted is None  # nothing to scan was ever shown

    # the code goes to the agent's own address, made when the e-mail goes out
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == services.ENROLMENT_KIND))
    assert message.recipient == "kari@example.test" and "code" not in json.dumps(message.payload)
    with app.test_request_context():
        mail = render(message)
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", mail.text).group(0)
    assert agent.enrolment_code_hash and code not in agent.enrolment_code_hash

    assert password_step(kari, "kari@example.test").status_code == 303
    done = enrolment_code_step(kari, code.lower().replace("-", " "))
    assert done.status_code == 303 and done.headers["Location"].endswith("/sign-in/enrol")
    page = kari.get("/backoffice/sign-in/enrol", headers=EN)
    secret = key_of(page.text)
    signed_in = kari.post("/backoffice/sign-in/enrol", data={"csrf_token": CSRF.search(page.text).group(1),
                                                             "code": pyotp.TOTP(secret).now()})
    assert signed_in.status_code == 200 and kari.get("/backoffice/").status_code == 200
    assert agent.has_second_factor and not agent.enrolment_code_required and agent.enrolment_code_hash is None
    assert {"enrolment_code_refused", "enrolment_code_accepted", "mfa_enrolled"} <= set(actions(agent))

    # the code is used up: a later reset needs a new one
    services.reset_second_factor(agent)
    db.session.commit()
    password_step(thief, "kari@example.test")
    assert enrolment_code_step(thief, code).status_code == 422


def test_the_operator_resets_a_factor_and_sees_the_code_once(app, client, agent):
    enrol(client)
    result = cli(app, "reset-second-factor", "ola@example.test")
    assert result.exit_code == 0, result.output
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", result.output).group(0)
    assert client.get("/backoffice/").status_code == 302
    password_step(client)
    assert enrolment_code_step(client, code).headers["Location"].endswith("/sign-in/enrol")


def test_an_expired_enrolment_code_is_refused(app, client, agent):
    enrol(client)
    result = cli(app, "reset-second-factor", "ola@example.test")
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", result.output).group(0)
    agent.enrolment_code_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    password_step(client)
    refused = enrolment_code_step(client, code)
    assert refused.status_code == 422 and "no longer valid" in refused.text


# --- 5. second-factor secrets encrypted, never in the cookie --------------------------------------------


def test_the_secret_being_enrolled_is_never_in_the_cookie_and_is_stored_encrypted(app, client, agent):
    assert password_step(client).headers["Location"].endswith("/sign-in/enrol")
    page = client.get("/backoffice/sign-in/enrol", headers=EN)
    secret = key_of(page.text)
    with client.session_transaction() as cookie:
        assert secret not in json.dumps(dict(cookie))
    assert agent.totp_pending_encrypted and secret not in agent.totp_pending_encrypted
    assert key_of(client.get("/backoffice/sign-in/enrol", headers=EN).text) == secret  # the same on a reload
    client.post("/backoffice/sign-in/enrol", data={"csrf_token": CSRF.search(page.text).group(1),
                                                   "code": pyotp.TOTP(secret).now()})
    stored = db.session.execute(text("SELECT totp_secret, totp_secret_encrypted, totp_pending_encrypted FROM agents "
                                     "WHERE id = :id"), {"id": agent.id}).one()
    assert stored[0] is None and stored[2] is None and secret not in stored[1]
    with app.test_request_context():
        assert decrypt(stored[1]) == secret
    with client.session_transaction() as cookie:
        assert secret not in json.dumps(dict(cookie))


def test_a_secret_stored_in_clear_before_is_encrypted_at_the_next_sign_in(app, client, agent):
    secret = pyotp.random_base32()
    agent.totp_secret, agent.totp_last_step = secret, 1  # as migration 0009 found it
    db.session.commit()
    password_step(client)
    assert code_step(client, pyotp.TOTP(secret).now()).status_code == 303
    assert agent.totp_secret is None and secret not in agent.totp_secret_encrypted
    with app.test_request_context():
        assert decrypt(agent.totp_secret_encrypted) == secret


def test_the_command_encrypts_every_secret_still_in_clear(app, creditor):
    agents = [make_agent(app, creditor, f"a{n}@example.test") for n in range(2)]
    for agent in agents:
        agent.totp_secret = pyotp.random_base32()
    db.session.commit()
    clear = [agent.totp_secret for agent in agents]
    result = cli(app, "encrypt-secrets")
    assert result.exit_code == 0 and "2 second-factor secret(s) encrypted" in result.output
    with app.test_request_context():
        assert [decrypt(agent.totp_secret_encrypted) for agent in agents] == clear
    assert all(agent.totp_secret is None for agent in agents)


# --- 7. the same answer, in the same time, for every address; slowing the attacker, not the agent --------


def wrong(client, email):
    return password_step(client, email=email, password="wrong password!")


def test_after_five_wrong_passwords_known_and_unknown_addresses_answer_alike(app, agent):
    answers = {}
    for email, ip in (("ola@example.test", "10.0.0.1"), ("nobody@example.test", "10.0.0.2")):
        attacker = from_address(app.test_client(), ip)
        first = [wrong(attacker, email) for _ in range(services.ACCOUNT_BACKOFF.free)]
        assert {(a.status_code, "do not match" in a.text) for a in first} == {(422, True)}
        answers[email] = wrong(attacker, email)
    known, unknown = answers["ola@example.test"], answers["nobody@example.test"]
    assert known.status_code == unknown.status_code == 429
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]
    problem = re.compile(r'role="alert"><p>([^<]*)</p>')
    assert problem.search(known.text).group(1) == problem.search(unknown.text).group(1)
    assert "Too many failed attempts" in known.text
    assert agent.locked_until is None and agent.failed_attempts == 0  # nothing was counted on the agent


def test_an_attacker_hammering_an_address_does_not_lock_the_agent_out_of_their_own_client(app, agent):
    agent_client = from_address(app.test_client(), "192.0.2.10")
    secret = enrol(agent_client)
    agent_client.post("/backoffice/sign-out", data={"csrf_token": token(agent_client, "/backoffice/")})

    attacker = from_address(app.test_client(), "198.51.100.7")
    statuses = [wrong(attacker, "ola@example.test").status_code for _ in range(9)]
    assert statuses[:5] == [422] * 5 and set(statuses[5:]) == {429}
    # even the right password waits, from the attacker's client
    assert password_step(attacker).status_code == 429

    assert password_step(agent_client).headers["Location"].endswith("/backoffice/sign-in/code")
    assert code_step(agent_client, pyotp.TOTP(secret).generate_otp(agent.totp_last_step + 1)).status_code == 303
    assert agent_client.get("/backoffice/").status_code == 200


def test_the_wait_grows_with_each_failure(app):
    from app.extensions import limiter
    from app.ratelimit import Backoff

    backoff, waits = Backoff(free=2, base=30, cap=100, window=3600), []
    with app.app_context():
        limiter.reset(app)
        storage = app.extensions["rate_limiter"].storage
        for _ in range(5):
            storage.clear("backoff/growing/wait")  # as if each wait had passed: the failures stay counted
            limiter.backoff_failed("growing", backoff)
            waits.append(limiter.backoff_wait("growing"))
        limiter.backoff_clear("growing")
        assert limiter.backoff_wait("growing") == 0
    assert waits[0] == 0 and 29 <= waits[1] <= 30 and 59 <= waits[2] <= 60 and 99 <= waits[3] <= 100
    assert 99 <= waits[4] <= 100  # capped


def _alike(a: list[float], b: list[float]) -> bool:
    """Medians within a third of the larger, plus 5 ms: loose enough for a shared machine, far tighter
    than a verified hash (tens of milliseconds) against none."""
    ma, mb = statistics.median(a), statistics.median(b)
    return abs(ma - mb) <= 0.35 * max(ma, mb) + 0.005


def _measure(app, rounds: int, run: int) -> dict[str, list[float]]:
    """Each round, interleaved so that the machine's load weighs on both alike: a first wrong password
    for the known and the unknown address, then the attempt after five (each from a fresh client)."""
    times: dict[str, list[float]] = {"known first": [], "unknown first": [], "known sixth": [], "unknown sixth": []}
    for n in range(rounds):
        for who, email in (("known", "ola@example.test"), ("unknown", "nobody@example.test")):
            net = "10.2" if who == "known" else "10.3"
            fresh = from_address(app.test_client(), f"{net}.{run}.{n}")
            started = time.perf_counter()
            wrong(fresh, email)
            times[f"{who} first"].append(time.perf_counter() - started)

            attacker = from_address(app.test_client(), f"{net}.{run + 100}.{n}")
            for _ in range(services.ACCOUNT_BACKOFF.free):
                wrong(attacker, email)
            form = {"csrf_token": token(attacker, "/backoffice/sign-in"), "email": email, "password": "wrong password!"}
            started = time.perf_counter()
            answer = attacker.post("/backoffice/sign-in", data=form)
            times[f"{who} sixth"].append(time.perf_counter() - started)
            assert answer.status_code == 429
    return times


def test_known_and_unknown_addresses_take_the_same_time(app, agent):
    """Statistically, with a tolerance: the medians of a wrong password for a known and an unknown
    address, and of the (throttled) attempt after five. Once measured again if the machine was busy:
    a real difference (a hash verified against none) is ten times the tolerance and fails both."""
    wrong(from_address(app.test_client(), "10.1.255.1"), "warm@example.test")  # the dummy hash, made once
    for run in range(2):
        times = _measure(app, rounds=6, run=run)
        first = _alike(times["known first"], times["unknown first"])
        sixth = _alike(times["known sixth"], times["unknown sixth"])
        if first and sixth:
            break
    medians = {name: round(statistics.median(values) * 1000, 1) for name, values in times.items()}
    assert first and sixth, medians
