"""`wire_email` writes the bytes `smtplib`'s `send_message` sends for `build_email`'s message, without
the `email` package's objects: the two are held to the same bytes here (the same Date and boundary),
for the shared notice layout in every language, for headers that fold or need encoded words, for
bodies in 7bit, 8bit, quoted-printable and base64, and for random texts; and it declines (None) what
it does not write, so that `build_email` makes it (or refuses it) as before."""

from __future__ import annotations

import copy
import email.generator
import io
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.outbox.base import DeliveryError
from app.outbox.email import (
    _AS_IS,
    Notice,
    RenderedEmail,
    SmtpSettings,
    _boundary,
    _folded,
    _header_line,
    build_email,
    notice_email,
    unsubscribe_headers,
    wire_email,
)
from app.outbox.models import OutboxMessage

SETTINGS = SmtpSettings(host="127.0.0.1", port=25, sender="billing@pay.example.test")
DATE = datetime(2026, 12, 8, 9, 30, 5, tzinfo=UTC)
BOUNDARY = "===============0123456789012345678=="
LONG_URL = "https://pay.example.test/unsubscribe/WzUsNSwiZSJd.axUd_g.2phvdadWXYmTLlOSUm5a_svXzt-_1foU_LxItkb4rL0"


def message(recipient: str = "kari@example.test", locale: str | None = "nb", key: str = "dunning.message:7"):
    return OutboxMessage(recipient=recipient, idempotency_key=key, locale=locale)


def sent_by_smtplib(outbox_message: OutboxMessage, rendered: RenderedEmail) -> bytes:
    """What `SMTP.send_message` flattens for an ASCII envelope (smtplib.py: a copy, BytesGenerator, CRLF)."""
    mime = build_email(outbox_message, rendered, SETTINGS, date=DATE)
    mime.set_boundary(BOUNDARY)
    buffer = io.BytesIO()
    email.generator.BytesGenerator(buffer).flatten(copy.copy(mime), linesep="\r\n")
    return buffer.getvalue()


def same_bytes(outbox_message: OutboxMessage, rendered: RenderedEmail) -> None:
    wire = wire_email(outbox_message, rendered, SETTINGS, date=DATE, boundary=BOUNDARY)
    assert wire is not None
    assert wire == sent_by_smtplib(outbox_message, rendered)


def rendered(**fields) -> RenderedEmail:
    base = {"subject": "Reminder: invoice 100006", "text": "Hello Kari,\n\nplease pay.\n",
            "html": "<p>Hello Kari,</p>\n<p>please pay.</p>\n", "sender_name": "Acme AS", "reply_to": "help@acme.test"}
    return RenderedEmail(**{**base, **fields})


@pytest.mark.parametrize("locale", ["nb", "en", "de"])
@pytest.mark.parametrize("legal", [False, True])
def test_the_shared_notice_layout_in_every_language(app, locale, legal):
    notice = Notice(
        subject={"nb": "Purring: faktura 100006", "en": "Reminder: invoice 100006",
                 "de": "Zahlungserinnerung: Rechnung 100006 über 160,01 €"}[locale],
        heading="Påminnelse", paragraphs=["Hei Kari Bench 4,", "vi har ikke mottatt betaling for faktura 100006, "
                                          "som forfalt 24. november 2026. Et purregebyr på 35,00 kr er lagt til."],
        facts=[("Fakturanummer", "100006"), ("Å betale", "160,01\u00a0kr")],
        link_url="https://pay.example.test/l/bpkk5PqhVGBHiKTl25vnfw.axUd_g.pNUQVz9l75feachiUblicD-b0xKUy_FbtxMmK0CTMSc",
        link_label="Åpne regningen", why="Du får denne e-posten fordi du har en regning fra Fjordkraft Test AS.",
        reply_to="help@example.test",
        unsubscribe_url=None if legal else LONG_URL, unsubscribe_label=None if legal else "Stopp påminnelser",
        one_click_url=None if legal else f"{LONG_URL}/one-click",
    )
    with app.test_request_context():
        email_ = notice_email(notice, None, locale=locale)
    same_bytes(message(locale=locale), email_)


@pytest.mark.parametrize("fields", [
    {},
    {"subject": "Påminnelse: faktura 100006 – betal innen 22. desember"},  # an encoded word
    {"subject": "A long subject " * 12},  # folded over several lines
    {"subject": "Ærlig talt, " * 10},  # folded and encoded
    {"subject": "=?utf-8?q?looks_encoded?= but is not"},
    {"sender_name": ""},
    {"sender_name": "Fjordkraft, Test AS"},  # a comma: quoted
    {"sender_name": "Kåre & Søn AS"},  # not ASCII: an encoded word
    {"sender_name": 'The "Best" Energy'},
    {"reply_to": None},
    {"reply_to": "Help Desk <help@acme.test>"},
    {"headers": unsubscribe_headers(f"{LONG_URL}/one-click")},  # too long for a line: as the package folds it
    {"headers": unsubscribe_headers("https://pay.example.test/u/1")},
    {"text": "", "html": ""},
    {"text": "no line end at the end"},
    {"text": "Short lines, not ASCII: æøå\nÆØÅ\n"},  # 8bit
    {"text": "x" * 200},  # quoted-printable, one line
    {"text": "\n".join(["a line that is rather long, longer than seventy-eight characters, so it wraps"] * 15)},
    {"text": "日本語のテキスト" * 30},  # base64 is shorter
    {"text": "\n".join(["日本語のテキスト" * 10] * 14)},  # base64, more than the ten lines sniffed
    {"text": "=\n.\n..\nFrom here\n\r\nwindows\r\nline ends\rmac\n"},
    {"html": "<p>" + "ü" * 100 + "</p>"},
    {"text": "tab\tand trailing space \nnext "},
])
def test_the_same_bytes_as_the_email_package(fields):
    same_bytes(message(), rendered(**fields))


@pytest.mark.parametrize("locale", [None, "de"])
def test_with_and_without_a_language(locale):
    same_bytes(message(locale=locale), rendered())


@pytest.mark.parametrize(("outbox_message", "fields"), [
    (message(recipient="kåri@example.test"), {}),  # SMTPUTF8: send_message's own way
    (message(), {"attachments": (("invoice.pdf", "application/pdf", b"%PDF-1.7"),)}),
    (message(), {"headers": (("X-Other", "1"),)}),
    (message(), {"headers": (("List-Unsubscribe", "<a>"), ("List-Unsubscribe", "<b>"))}),
])
def test_what_it_does_not_write_is_left_to_the_email_package(outbox_message, fields):
    assert wire_email(outbox_message, rendered(**fields), SETTINGS) is None


def test_a_header_the_package_refuses_is_refused_as_before():
    bad = rendered(subject="two\nlines")
    assert wire_email(message(), bad, SETTINGS) is None
    with pytest.raises(DeliveryError) as refused:
        build_email(message(), bad, SETTINGS)
    assert refused.value.permanent


@pytest.mark.parametrize(("line_end", "renamed"), [("\n", True), ("\r\n", False)])
def test_the_boundary_is_made_as_the_generator_makes_it(line_end, renamed):
    """Random, and renamed when a line of the parts is it; with CRLF line ends the generator's check (a
    `$` before "\\n") never sees one, and neither does ours: the same bytes, quirk included."""
    state = random.getstate()
    try:
        random.seed(20261208)
        first = email.generator.BytesGenerator._make_boundary()
        text = f"--{first}{line_end}body{line_end}".encode()
        random.seed(20261208)
        theirs = email.generator.BytesGenerator._make_boundary(text)
        random.seed(20261208)
        assert _boundary(text) == theirs == (f"{first}.0" if renamed else first)
    finally:
        random.setstate(state)


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=400)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]), min_size=1,
                       max_size=120),
       sender_name=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=40),
       text=texts, html=texts)
def test_random_texts_give_the_same_bytes_or_the_same_refusal(subject, sender_name, text, html):
    fields = rendered(subject=subject, sender_name=sender_name, text=text, html=html)
    try:
        expected = sent_by_smtplib(message(), fields)
    except DeliveryError:
        assert wire_email(message(), fields, SETTINGS, date=DATE, boundary=BOUNDARY) is None
        return
    assert wire_email(message(), fields, SETTINGS, date=DATE, boundary=BOUNDARY) == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(_AS_IS)))
def test_headers_written_as_they_are_are_what_the_package_writes(data, name):
    value = data.draw(st.from_regex(_AS_IS[name], fullmatch=True).filter(lambda v: len(v) < 90))
    assert _header_line(name, value) == _folded(name, value)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_multipart_content_type_is_what_the_package_writes(seed):
    state = random.getstate()
    try:
        random.seed(seed)
        boundary = _boundary(b"")
    finally:
        random.setstate(state)
    value = f'multipart/alternative; boundary="{boundary}"'
    assert _header_line("Content-Type", value) == _folded("Content-Type", value)


def test_a_long_one_click_address_stays_a_uri_on_one_line():
    """RFC 8058: mail clients read List-Unsubscribe as <URI>. Folded by the default policy, a URI longer
    than a line became RFC 2047 encoded-words (=?utf-8?q?=3Chttps…), which no client reads as one."""
    url = f"{LONG_URL}/one-click"
    wire = wire_email(message(), rendered(headers=unsubscribe_headers(url)), SETTINGS, date=DATE, boundary=BOUNDARY)
    assert wire is not None
    assert f"\r\nList-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n".encode() in wire
    assert b"=?utf-8?" not in wire


@pytest.mark.parametrize("value", ["<https://pay.example.test/u/1>\r\nBcc: someone@example.test",
                                   "<https://pay.example.test/u/1>\nX: y", "<https://pay.example.test/ü>"])
def test_a_raw_header_cannot_carry_a_line_break_or_non_ascii(value):
    bad = rendered(headers=(("List-Unsubscribe", value),))
    assert wire_email(message(), bad, SETTINGS) is None
    with pytest.raises(DeliveryError) as refused:
        build_email(message(), bad, SETTINGS)
    assert refused.value.permanent
