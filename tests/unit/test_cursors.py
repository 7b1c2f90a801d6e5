"""The API lists' opaque cursors: they round-trip, and anything else (another list's, forged, too long,
not base64, negative or oversized numbers) is refused with ValueError, never decoded into a query."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core import cursors


@given(st.lists(st.integers(min_value=0, max_value=2 ** 63 - 1), min_size=1, max_size=3))
def test_a_cursor_round_trips(numbers):
    text = cursors.encode("evc", *numbers)
    assert text.startswith("evc_") and cursors.decode("evc", text, len(numbers)) == tuple(numbers)


@pytest.mark.parametrize("text", [
    "", "evc", "evc_", "inc_MTI", "evc_!!!", "evc_" + "A" * 300, "evc_LTEuMg",  # "-1.2"
    cursors.encode("evc", 1), cursors.encode("evc", 1, 2, 3), "evc_MS4yLjM", "evc_MS4",  # "1.2.3", "1."
    "evc_" + cursors.encode("x", 10 ** 20, 1)[2:],
])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError):
        cursors.decode("evc", text, 2)


@given(st.text(max_size=80))
def test_no_text_decodes_into_anything_but_numbers(text):
    try:
        found = cursors.decode("evc", "evc_" + text, 2)
    except ValueError:
        return
    assert all(isinstance(n, int) and 0 <= n < 10 ** 19 for n in found)
