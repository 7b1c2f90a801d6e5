"""Images checked by their content (app.core.images): a truncated file is refused even in a process where
WeasyPrint (imported to draw a PDF) made Pillow complete truncated images, and that setting is left as
WeasyPrint wants it."""

import io

import pytest
from PIL import Image, ImageFile

from app.core.images import raster_kind


def encoded(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (20, 60, 120)).save(out, fmt)
    return out.getvalue()


@pytest.fixture(params=[False, True], ids=["pillow-default", "after-weasyprint"])
def truncated_allowed(request):
    before = ImageFile.LOAD_TRUNCATED_IMAGES  # this process's, whatever ran here before
    if request.param:
        import weasyprint.images  # noqa: F401 - its import sets the flag, as drawing a PDF does

        ImageFile.LOAD_TRUNCATED_IMAGES = True
    else:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    yield request.param
    ImageFile.LOAD_TRUNCATED_IMAGES = before


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_a_whole_image_is_taken_and_a_truncated_one_refused(truncated_allowed, fmt, mime):
    whole = encoded(fmt)
    assert raster_kind(whole) == mime
    assert raster_kind(whole[: len(whole) // 2]) is None
    assert raster_kind(whole[:200]) is None
    assert ImageFile.LOAD_TRUNCATED_IMAGES is truncated_allowed  # the process's setting is left as it was


def test_what_is_not_an_image_is_refused():
    assert raster_kind(b"<script>alert(1)</script>") is None
    assert raster_kind(b"\xff\xd8\xff" + b"0" * 100) is None
