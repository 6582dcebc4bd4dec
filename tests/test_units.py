from __future__ import annotations

import pytest

from harness.units import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2s", 2.0),
        ("1500ms", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("0", 0.0),
        ("2.5", 2.5),
        (3, 3.0),
    ],
)
def test_parse_duration_accepts_what_users_write(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1s", "1d", "s"])
def test_parse_duration_rejects_nonsense_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
