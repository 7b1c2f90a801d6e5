"""Brand colours: WCAG contrast and the adjustment that makes a colour pass AA (4.5:1) on white."""

from __future__ import annotations

import re

HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
AA_NORMAL_TEXT = 4.5


def parse_hex(value: str) -> tuple[int, int, int]:
    match = HEX.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a hex colour: {value!r}")
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    la, lb = relative_luminance(parse_hex(a)), relative_luminance(parse_hex(b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def ensure_contrast(colour: str, background: str = "#ffffff", minimum: float = AA_NORMAL_TEXT) -> str:
    """Return `colour` (normalised) if it reaches `minimum` against `background`, else the
    closest darker shade of the same hue that does. The brand keeps its hue; text stays readable."""
    rgb = parse_hex(colour)
    normalised = to_hex(rgb)
    if contrast_ratio(normalised, background) >= minimum:
        return normalised
    for step in range(1, 101):
        factor = 1 - step / 100
        candidate = to_hex(tuple(c * factor for c in rgb))  # type: ignore[arg-type]
        if contrast_ratio(candidate, background) >= minimum:
            return candidate
    return "#000000"
