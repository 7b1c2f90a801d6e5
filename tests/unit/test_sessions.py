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
