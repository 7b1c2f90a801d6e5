"""`KeyCachingSigner`'s HMAC in one call gives itsdangerous's own signatures, and refuses what it refuses."""

import hashlib
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.security import KeyCachingSigner, UncompressedSerializer

KEYS = ["old-" + "o" * 40, "new-" + "n" * 40]


@pytest.fixture
def frozen(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.75)


@pytest.mark.parametrize("digest", [hashlib.sha1, hashlib.sha256])
def test_signatures_are_itsdangerous_own(frozen, digest):
    ours = KeyCachingSigner(KEYS, salt="portal.link.bill", digest_method=digest)
    theirs = TimestampSigner(KEYS, salt="portal.link.bill", digest_method=digest)
    for value in (b"", b"abc", "æøå.token".encode()):
        assert ours.sign(value) == theirs.sign(value)
        assert ours.get_signature(value) == theirs.get_signature(value)
        assert ours.unsign(theirs.sign(value)) == value
        assert theirs.unsign(ours.sign(value)) == value


def test_an_old_key_still_verifies_and_a_wrong_one_does_not(frozen):
    signed_old = TimestampSigner(KEYS[:1], salt="s").sign(b"v")
    assert KeyCachingSigner(KEYS, salt="s").verify_signature(*signed_old.rsplit(b".", 1))
    other = TimestampSigner(["x" * 44], salt="s").sign(b"v")
    assert not KeyCachingSigner(KEYS, salt="s").verify_signature(*other.rsplit(b".", 1))
    assert not KeyCachingSigner(KEYS, salt="s").verify_signature(b"v.AAAA", b"!!not base64!!")
    head, _, signature = signed_old.rpartition(b".")
    assert not KeyCachingSigner(KEYS, salt="s").verify_signature(head, signature[:-1] + b"A")


def test_the_session_serializer_writes_what_itsdangerous_writes(frozen):
    kwargs = {"salt": "cookie-session", "signer_kwargs": {"key_derivation": "hmac", "digest_method": hashlib.sha1}}
    ours = UncompressedSerializer(KEYS, signer=KeyCachingSigner, **kwargs)
    theirs = URLSafeTimedSerializer(KEYS, **kwargs)
    data = {"grants": {"aB3": {"l": 1, "t": 1_800_000_000, "v": False}}, "locale": "nb"}
    written = ours.dumps(data)
    payload, _, _ = written.rpartition(".")[0].rpartition(".")
    # the payload uncompressed (itsdangerous would try zlib), signed as itsdangerous signs it
    assert written.encode() == TimestampSigner(KEYS, salt="cookie-session", key_derivation="hmac",
                                               digest_method=hashlib.sha1).sign(payload.encode())
    assert theirs.loads(written) == data
    assert ours.loads(theirs.dumps(data)) == data
