import pytest

from app.creditors.brand import contrast_ratio, ensure_contrast, parse_hex


def test_contrast_of_black_and_white_is_21():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#fff", "#fff") == pytest.approx(1.0)


@pytest.mark.parametrize("colour", ["#ffcc00", "#7fdbff", "#ff851b", "#aaaaaa", "#01ff70"])
def test_light_colours_are_darkened_to_aa(colour):
    adjusted = ensure_contrast(colour)
    assert adjusted != colour
    assert contrast_ratio(adjusted, "#ffffff") >= 4.5
    # the hue is kept: the channels keep their order
    r, g, b = parse_hex(colour)
    r2, g2, b2 = parse_hex(adjusted)
    assert sorted(range(3), key=lambda i: (r, g, b)[i]) == sorted(range(3), key=lambda i: (r2, g2, b2)[i])


def test_passing_colour_is_kept():
    assert ensure_contrast("#1F4B99") == "#1f4b99"


@pytest.mark.parametrize("bad", ["blue", "#12345", "", None, "#gggggg"])
def test_bad_colours(bad):
    with pytest.raises(ValueError):
        parse_hex(bad)
