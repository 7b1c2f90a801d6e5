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


def upload(content: bytes, name: str = "file.pdf"):
    return FileStorage(stream=io.BytesIO(content), filename=name)


@pytest.mark.parametrize(("content", "mime"), [
    (PDF, "application/pdf"), (image("PNG"), "image/png"), (image("JPEG"), "image/jpeg"),
])
def test_pdf_png_and_jpeg_are_recognised_by_content(content, mime):
    assert sniff(content) == mime
    found = read_upload(upload(content, "whatever.exe"), LIMIT)
    assert found.mime == mime and found.filename == "whatever." + {"application/pdf": "pdf", "image/png": "png",
                                                                     "image/jpeg": "jpg"}[mime]


@pytest.mark.parametrize("content", [
    b"\x7fELF\x02\x01\x01\x00" + b"\0" * 100,  # a Linux executable
    b"MZ\x90\x00" + b"\0" * 100,  # a Windows one
    b"%PDF-1.4 but never ends",  # a PDF cut short
    b"\x89PNG\r\n\x1a\n" + b"garbage" * 10,  # a PNG signature on garbage
    b"\xff\xd8\xff\xe0" + b"garbage" * 10,
    b"<html><script>alert(1)</script></html>",
])
def test_anything_else_is_refused_whatever_its_name(content):
    with pytest.raises(InvalidData) as error:
        read_upload(upload(content, "receipt.pdf"), LIMIT)
    assert error.value.errors == {"attachment": "type"}


def test_a_file_over_the_limit_and_an_empty_one_are_refused():
    with pytest.raises(InvalidData) as error:
        read_upload(upload(PDF[:-7] + b"\0" * (6 * 1024 * 1024) + b"%%EOF\n"), LIMIT)
    assert error.value.errors == {"attachment": "size"}
    with pytest.raises(InvalidData) as error:
        read_upload(upload(b""), LIMIT)
    assert error.value.errors == {"attachment": "empty"}


def test_no_file_is_no_attachment():
    assert read_upload(None, LIMIT) is None
    assert read_upload(FileStorage(stream=io.BytesIO(b""), filename=""), LIMIT) is None


def test_names_are_cleaned_and_files_stored_by_a_random_key_readable_by_the_app_only(session, tmp_path):
    invoice = make_invoice(make_creditor("NO"))
    found = read_upload(upload(PDF, "../../etc/passwd kvittering.PDF"), LIMIT)
    assert found.filename == "etc_passwd_kvittering.pdf"
    attachment = store_attachment(found, invoice, str(tmp_path))
    path = attachment_path(attachment, str(tmp_path))
    assert path.parent == tmp_path / str(invoice.creditor_id) and path.name == attachment.storage_key
    assert path.read_bytes() == PDF and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert attachment.size == len(PDF) and len(attachment.sha256) == 64
