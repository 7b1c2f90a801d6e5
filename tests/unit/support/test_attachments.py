"""Attachments are checked by their content, never by their name, and kept outside static/."""

from __future__ import annotations

import io
import stat

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from app.errors import InvalidData
from app.support.attachments import attachment_path, read_upload, sniff, store_attachment
from tests.factories import make_creditor, make_invoice

LIMIT = 5 * 1024 * 1024
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def padded_pdf(size: int) -> bytes:
    """A PDF of exactly `size` bytes."""
    return PDF[:-6] + b"\0" * (size - len(PDF)) + b"%%EOF\n"


def upload(content: bytes, name: str = "file.pdf"):
    return FileStorage(stream=io.BytesIO(content), filename=name)


@pytest.mark.parametrize(("content", "mime", "extension"), [
    (PDF, "application/pdf", "pdf"), (image("PNG"), "image/png", "png"), (image("JPEG"), "image/jpeg", "jpg"),
])
def test_pdf_png_and_jpeg_are_recognised_by_content(content, mime, extension):
    assert sniff(content) == mime
    found = read_upload(upload(content, "whatever.exe"), LIMIT)
    assert (found.mime, found.filename, found.content) == (mime, f"whatever.{extension}", content)


@pytest.mark.parametrize("content", [
    b"\x7fELF\x02\x01\x01\x00" + b"\0" * 100,  # a Linux executable
    b"MZ\x90\x00" + b"\0" * 100,  # a Windows one
    b"%PDF-1.4 but never ends",  # a PDF cut short
    b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,  # a PNG signature on garbage
    b"\xff\xd8\xff\xe0" + b"garbage" * 10,  # and a JPEG one
    b"<html><script>alert(1)</script></html>",
    image("GIF"),  # a real picture, of a type we do not take
    b"%PDF-1.4\n" + image("PNG"),  # a PDF's first line on a picture
])
def test_anything_else_is_refused_whatever_its_name(content):
    with pytest.raises(InvalidData) as error:
        read_upload(upload(content, "receipt.pdf"), LIMIT)
    assert error.value.errors == {"attachment": "type"}


def test_a_file_over_the_limit_and_an_empty_one_are_refused():
    with pytest.raises(InvalidData) as error:
        read_upload(upload(padded_pdf(6 * 1024 * 1024)), LIMIT)
    assert error.value.errors == {"attachment": "size"}
    with pytest.raises(InvalidData) as error:
        read_upload(upload(b""), LIMIT)
    assert error.value.errors == {"attachment": "empty"}


def test_a_file_of_exactly_the_limit_is_taken():
    content = padded_pdf(LIMIT)
    assert len(content) == LIMIT and read_upload(upload(content), LIMIT).mime == "application/pdf"
    with pytest.raises(InvalidData):
        read_upload(upload(padded_pdf(LIMIT + 1)), LIMIT)


def test_no_file_is_no_attachment():
    assert read_upload(None, LIMIT) is None
    assert read_upload(FileStorage(stream=io.BytesIO(b""), filename=""), LIMIT) is None


def test_names_lose_their_path_and_odd_characters_and_are_cut():
    assert read_upload(upload(PDF, "Квитанция.pdf"), LIMIT).filename == "attachment.pdf"
    assert read_upload(upload(PDF, "C:\\Users\\kari\\kvittering.pdf"), LIMIT).filename == "kvittering.pdf"
    long_name = read_upload(upload(image("PNG"), "x" * 500 + ".png"), LIMIT).filename
    assert long_name.endswith(".png") and len(long_name) <= 200


def test_files_are_stored_by_a_random_key_readable_by_the_app_only(session, tmp_path):
    invoice = make_invoice(make_creditor("NO"))
    found = read_upload(upload(PDF, "../../etc/passwd kvittering.PDF"), LIMIT)
    assert found.filename == "passwd_kvittering.pdf"
    attachment = store_attachment(found, invoice, str(tmp_path))
    path = attachment_path(attachment, str(tmp_path))
    assert path.parent == tmp_path / str(invoice.creditor_id) and path.name == attachment.storage_key
    assert path.read_bytes() == PDF and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert attachment.size == len(PDF) and len(attachment.sha256) == 64 and attachment.id is not None
    other = store_attachment(found, invoice, str(tmp_path))
    assert other.storage_key != attachment.storage_key and other.public_ref != attachment.public_ref
