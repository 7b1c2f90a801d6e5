"""Customers' attachments: checked by content (PDF, JPEG, PNG), stored outside static/.

The bytes live on disk under ATTACHMENT_DIR/<creditor id>/<random key>, never under a name the
customer chose, and are only ever served as downloads."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path, PurePath

from werkzeug.utils import secure_filename

from app.billing.models import Invoice
from app.core.images import raster_kind
from app.errors import InvalidData
from app.extensions import db
from app.support.models import Attachment

EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


@dataclass(frozen=True)
class Upload:
    filename: str
    mime: str
    content: bytes


def sniff(content: bytes) -> str | None:
    """The file's type from its bytes, or None when it is not a PDF, JPEG or PNG we can open."""
    if content.startswith(b"%PDF-"):
        return "application/pdf" if b"%%EOF" in content[-1024:] else None
    return raster_kind(content)


def clean_filename(name: str, mime: str) -> str:
    """The customer's name for the file, safe anywhere (no path, ASCII), with the extension of its real type."""
    stem = secure_filename(PurePath((name or "").replace("\\", "/")).stem)[:150] or "attachment"
    return f"{stem}.{EXTENSIONS[mime]}"


def read_upload(storage, max_bytes: int) -> Upload | None:
    """The uploaded file checked, or None when none was sent. InvalidData({"attachment": size|empty|type})."""
    if storage is None or not getattr(storage, "filename", None):
        return None
    content = storage.stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise InvalidData({"attachment": "size"})
    if not content:
        raise InvalidData({"attachment": "empty"})
    mime = sniff(content)
    if mime is None:
        raise InvalidData({"attachment": "type"})
    return Upload(filename=clean_filename(storage.filename, mime), mime=mime, content=content)


def attachment_path(attachment: Attachment, directory: str) -> Path:
    """Where the attachment's bytes are: named by the random storage key, never by the customer."""
    return Path(directory) / str(attachment.creditor_id) / attachment.storage_key


def store_attachment(upload: Upload, invoice: Invoice, directory: str) -> Attachment:
    """Write the file (readable by the app only) and add its row."""
    attachment = Attachment(
        public_ref=secrets.token_urlsafe(12), creditor_id=invoice.creditor_id, invoice_id=invoice.id,
        filename=upload.filename, mime=upload.mime, size=len(upload.content),
        sha256=hashlib.sha256(upload.content).hexdigest(), storage_key=secrets.token_hex(16),
    )
    db.session.add(attachment)
    db.session.flush()  # first: a row that cannot be added leaves no file behind
    path = attachment_path(attachment, directory)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(upload.content)
    return attachment
