"""Helpers for the back office's functional tests: agents made with the CLI, signed in with a real
TOTP second factor through the test client, and the audit trail they leave."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select

from app.audit import AuditEntry
from app.backoffice.models import Agent
from app.extensions import db

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY = re.compile(r'<span class="mono key">([A-Z2-7 ]+)</span>')  # grouped by four for reading
PASSWORD = "correct horse battery staple"
EN = {"Accept-Language": "en"}


def cli(app, *args, input=None):
    return app.test_cli_runner().invoke(args=["agents", *args], input=input)


def key_of(page_text: str) -> str:
    """The authenticator key on the enrolment page, without the spaces that group it for reading."""
    return KEY.search(page_text).group(1).replace(" ", "")


def make_agent(app, creditor, email="ola@example.test", role="agent", name="Ola Nordmann") -> Agent:
    result = cli(app, "create", email, "--creditor", creditor.slug, "--name", name, "--role", role,
                 "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return db.session.scalar(select(Agent).where(Agent.email == email.lower()))


def token(client, path) -> str:
    return CSRF.search(client.get(path, headers=EN).text).group(1)


def password_step(client, email="ola@example.test", password=PASSWORD):
    return client.post("/backoffice/sign-in", data={"csrf_token": token(client, "/backoffice/sign-in"),
                                                    "email": email, "password": password}, headers=EN)


def enrol(client, email="ola@example.test") -> str:
    """First sign-in: the password, then the key from the enrolment page and a code from it."""
    assert password_step(client, email).headers["Location"].endswith("/backoffice/sign-in/enrol")
    page = client.get("/backoffice/sign-in/enrol", headers=EN)
    secret = key_of(page.text)
    assert "<svg" in page.text
    done = client.post("/backoffice/sign-in/enrol", data={"csrf_token": CSRF.search(page.text).group(1),
                                                          "code": pyotp.TOTP(secret).now()})
    # signed in, and the recovery codes shown once, on this answer
    assert done.status_code == 200 and "Your recovery codes" in done.text, done.text
    return secret


def code_step(client, code):
    return client.post("/backoffice/sign-in/code", data={"csrf_token": token(client, "/backoffice/sign-in/code"),
                                                         "code": code}, headers=EN)


def actions(agent) -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.agent_id == agent.id)
                                   .order_by(AuditEntry.id)))


def post(client, path, data=None, *, page=None, **kw):
    """A form POST with a CSRF token read from `page` (default: the inbox)."""
    return client.post(path, data={"csrf_token": token(client, page or "/backoffice/"), **(data or {})},
                       headers=EN, **kw)
