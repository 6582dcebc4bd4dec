"""Durations and Kubernetes versions as users write them in options and suite files: the
one parser of each (options, suite files, checks and cluster providers all use these)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
# Go's time.ParseDuration grammar (what kubectl, kind and kwok take): "1m30s", "1h2m",
# "1.5h", "250us". durationpy alone would also take d, w and y, which Go does not.
_GO_DURATION = re.compile(r"^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$")
_DURATION_HINT = "write e.g. 90s, 500ms, 5m, 1m30s or a number of seconds"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(-k3s\d+)?$")


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``"2s"``, ``"1500ms"``, ``"5m"``, ``"1h"``, a bare number of seconds,
    or a Go duration such as ``"1m30s"`` or ``"1h2m"``; ValueError for anything else,
    negatives included."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"a duration must not be negative: {text}")
        return float(text)
    match = _DURATION.match(str(text))
    if match:
        return float(match.group(1)) * _FACTORS[match.group(2)]
    compact = str(text).strip()
    if not _GO_DURATION.match(compact):
        raise ValueError(f"not a duration: {text!r} ({_DURATION_HINT})")
    if compact.startswith("-"):
        raise ValueError(f"not a duration: {text!r} (a duration must not be negative)")
    import durationpy  # here, not at the top: every pytest run imports this module

    try:
        return durationpy.from_str(compact).total_seconds()
    except durationpy.DurationError as exc:  # too large for a timedelta
        raise ValueError(f"not a duration: {text!r} ({exc}; {_DURATION_HINT})") from exc


def normalize_k8s_version(text: str) -> str:
    """``1.36``, ``v1.36.4`` or ``v1.36.4-k3s1`` as ``v1.36`` / ``v1.36.4`` /
    ``v1.36.4-k3s1``; ValueError for anything else."""
    match = _VERSION.match(text.strip())
    if match is None:
        raise ValueError(
            f"not a Kubernetes version: {text!r} (write it like 1.36, v1.36.4 or v1.36.4-k3s1)"
        )
    major, minor, patch, k3s = match.groups()
    if k3s and patch is None:
        raise ValueError(f"not a Kubernetes version: {text!r} (a k3s build needs the patch)")
    version = f"v{major}.{minor}" + (f".{patch}" if patch is not None else "")
    return version + (k3s or "")
