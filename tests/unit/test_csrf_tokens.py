"""The CSRF token (`app.security.csrf_token`): Flask-WTF's token, given again to the same session for a
minute, never to another session, and checked by Flask-WTF as its own."""

import secrets

import pytest
from flask import g, session
from flask_wtf.csrf import CSRFError, ValidationError, generate_csrf, validate_csrf

import app.security as security
from app import create_app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "c" * 40,
                       "PORTAL_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance"))})


def token_for(app, secret):
    with app.test_request_context("/"):
        session["csrf_token"] = secret
        token = security.csrf_token()
        validate_csrf(token)  # Flask-WTF's own check, with this session
        g.pop("csrf_token")
        assert generate_csrf().split(".")[0] == token.split(".")[0]  # the same payload Flask-WTF signs
        return token


def test_the_same_session_gets_the_same_token_for_a_minute_then_a_new_one(app, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(security.time, "time", lambda: now[0])
    secret = secrets.token_hex(20)  # as Flask-WTF makes them
    first = token_for(app, secret)
    now[0] += security.CSRF_TOKEN_REUSE_SECONDS - 1
    assert token_for(app, secret) == first
    now[0] += 2
    later = token_for(app, secret)
    assert later != first


def test_another_session_never_gets_the_token_and_cannot_use_it(app):
    other = secrets.token_hex(20)
    mine, theirs = token_for(app, secrets.token_hex(20)), token_for(app, other)
    assert mine != theirs
    with app.test_request_context("/"):
        session["csrf_token"] = other
        with pytest.raises((ValidationError, CSRFError)):
            validate_csrf(mine)
