from __future__ import annotations

import pytest

from harness.units import normalize_k8s_version, parse_duration


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
        (" 5 m ", 300.0),
        # Go's compound durations (kubectl, kind and kwok write them)
        ("1m30s", 90.0),
        ("1h2m", 3720.0),
        ("1h2m3.5s", 3723.5),
        ("1m0.5s", 60.5),
        ("1.5h", 5400.0),
        ("+5s", 5.0),
        (".5s", 0.5),
        ("250us", 0.00025),
        ("2µs", 0.000002),
        (" 1m30s ", 90.0),
    ],
)
def test_parse_duration_accepts_what_users_write(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "5 minutes",
        "-1s",
        "1d",
        "s",
        "1m30",
        "1m 30s",
        "1d2h",
        "1.2.3s",
        "1e3s",
        "-1m30s",
    ],
)
def test_parse_duration_rejects_nonsense_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_a_bad_duration_shows_the_text_and_an_example() -> None:
    with pytest.raises(ValueError, match=r"'1m30' \(write e\.g\. 90s, 500ms, 5m, 1m30s"):
        parse_duration("1m30")


@pytest.mark.parametrize("value", ["-1s", "-1m30s", -1, -0.5])
def test_negative_durations_say_so(value: str | float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


def test_a_go_duration_too_large_for_python_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a duration: '9999999999999h1s'"):
        parse_duration("9999999999999h1s")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.36", "v1.36"),
        ("v1.36", "v1.36"),
        ("v1.36.4", "v1.36.4"),
        (" 1.36.4 ", "v1.36.4"),
        ("1.36.4-k3s2", "v1.36.4-k3s2"),
        ("v1.36.4-k3s1", "v1.36.4-k3s1"),
    ],
)
def test_k8s_versions_are_normalized(text: str, version: str) -> None:
    assert normalize_k8s_version(text) == version


@pytest.mark.parametrize("text", ["latest", "newest", "", "1", "v1", "1.36.x", "1.36.4.1", "k1.36"])
def test_other_version_text_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a Kubernetes version: .*1\.36, v1\.36\.4"):
        normalize_k8s_version(text)


def test_a_k3s_build_needs_the_patch() -> None:
    with pytest.raises(ValueError, match="a k3s build needs the patch"):
        normalize_k8s_version("1.36-k3s1")
