"""The session cookie: the same header werkzeug writes, plain JSON, loads what it writes."""

import pytest
from flask import Flask, Response

from app.sessions import CachedSerializerSessionInterface


def make_app(secure: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="s" * 40, SESSION_COOKIE_NAME="portal_session", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure)
    app.session_interface = CachedSerializerSessionInterface()
    return app


@pytest.mark.parametrize("secure", [False, True])
def test_set_cookie_header_is_werkzeugs(secure):
    app = make_app(secure)
    interface = app.session_interface
    with app.test_request_context("/"):
        session = interface.session_class({"grants": {"aB3-_x": {"l": 12, "t": 1763890000, "v": False}},
                                           "locale": "nb"})
        session.modified = True
        ours = Response()
        interface.save_session(app, session, ours)
        value = interface.get_signing_serializer(app).dumps(dict(session))
        theirs = Response()
        theirs.set_cookie("portal_session", value, httponly=True, samesite="Lax", secure=secure, path="/")
    # the signature carries a timestamp: compare the attributes and that the value loads back
    header = ours.headers["Set-Cookie"]
    assert header.split(";", 1)[1] == theirs.headers["Set-Cookie"].split(";", 1)[1]
    assert ours.headers["Vary"] == "Cookie"
    written = header.split(";", 1)[0].split("=", 1)[1]
    assert interface.get_signing_serializer(app).loads(written) == dict(session)


def test_reads_cookies_flask_wrote():
    from flask.sessions import SecureCookieSessionInterface

    app = make_app(False)
    flask_cookie = SecureCookieSessionInterface().get_signing_serializer(app).dumps({"locale": "de", "n": 1})
    assert app.session_interface.get_signing_serializer(app).loads(flask_cookie) == {"locale": "de", "n": 1}


def signed_cookie(app, data):
    with app.test_request_context("/"):
        return app.session_interface.get_signing_serializer(app).dumps(data)


def open_with(app, cookie):
    with app.test_request_context("/", headers={"Cookie": f"portal_session={cookie}"}):
        return app.session_interface.open_session(app, __import__("flask").request)


def test_a_verified_cookie_is_remembered_and_its_session_is_fresh_each_time(monkeypatch):
    app = make_app(False)
    cookie = signed_cookie(app, {"grants": {"aB3": {"l": 1, "v": False}}, "locale": "nb"})
    first = open_with(app, cookie)
    assert dict(first) == {"grants": {"aB3": {"l": 1, "v": False}}, "locale": "nb"}
    first["grants"]["aB3"]["v"] = True  # a request changing its session in place
    serializer = app.session_interface.get_signing_serializer(app)
    monkeypatch.setattr(serializer, "loads", lambda *a, **k: pytest.fail("checked again"))
    again = open_with(app, cookie)
    assert dict(again) == {"grants": {"aB3": {"l": 1, "v": False}}, "locale": "nb"}


def test_a_remembered_cookie_expires_with_the_session_lifetime(monkeypatch):
    app = make_app(False)
    cookie = signed_cookie(app, {"locale": "de"})
    assert dict(open_with(app, cookie)) == {"locale": "de"}
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    later = __import__("time").time() + lifetime + 5
    monkeypatch.setattr("time.time", lambda: later)
    assert dict(open_with(app, cookie)) == {}
    assert cookie not in app.session_interface._opened


def test_a_changed_cookie_or_new_keys_are_checked_again():
    app = make_app(False)
    cookie = signed_cookie(app, {"locale": "de"})
    assert dict(open_with(app, cookie)) == {"locale": "de"}
    head, _, signature = cookie.rpartition(".")
    assert dict(open_with(app, f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}")) == {}
    app.secret_key = "t" * 40  # the key rotated: the remembered cookie was verified with the old one
    assert dict(open_with(app, cookie)) == {}
    app.config["SECRET_KEY_FALLBACKS"] = ["s" * 40]
    assert dict(open_with(app, cookie)) == {"locale": "de"}
