"""Images checked by their content: a PNG or JPEG is what its first bytes say only if Pillow decodes
the whole of it. Shared by customers' attachments (app.support.attachments) and creditors' logos
(app.creditors.services)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The magic bytes of the raster images we take, their MIME type and Pillow's name for the format
RASTER = ((b"\x89PNG\r\n\x1a\n", "image/png", "PNG"), (b"\xff\xd8\xff", "image/jpeg", "JPEG"))
MAX_PIXELS = 25_000_000
_STRICT = threading.Lock()


@contextmanager
def _strict_decoding() -> Iterator[None]:
    """Pillow as it is by default, whatever the process set: WeasyPrint's import sets Pillow's global
    `LOAD_TRUNCATED_IMAGES` (so that a PDF draws a damaged picture), after which Pillow completes a
    truncated file and hides decoder errors. A process that drew a PDF would take a truncated upload."""
    from PIL import ImageFile

    with _STRICT:
        before, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = before


def raster_kind(content: bytes) -> str | None:
    """"image/png" or "image/jpeg" when `content` is one whole image of that kind (every byte decoded,
    at most MAX_PIXELS), else None: a truncated, doctored or renamed file, or another format."""
    from PIL import Image  # only when an image is checked

    found = next(((mime, fmt) for magic, mime, fmt in RASTER if content.startswith(magic)), None)
    if found is None:
        return None
    mime, fmt = found
    try:
        with _strict_decoding(), Image.open(io.BytesIO(content)) as image:
            if image.format != fmt or image.width * image.height > MAX_PIXELS:
                return None
            image.load()  # decodes every byte: a truncated or doctored file fails here
    except Exception:  # noqa: BLE001 - Pillow raises many kinds (OSError, SyntaxError, struct.error, bombs…)
        return None
    return mime
