"""Durations and quantities as users write them in options and suite files."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``"2s"``, ``"1500ms"``, ``"5m"``, ``"1h"`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"a duration must not be negative: {text}")
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (write e.g. 90s, 500ms, 5m)")
    return float(match.group(1)) * _FACTORS[match.group(2)]
