"""What counts as a secret in names, flags and URLs, and the mask that replaces it.

The rules live here; :mod:`harness.helm` (Helm's logged command lines),
:mod:`harness.evidence` (bundles) and :mod:`harness.reporting` (reports) apply them.
Kept free of heavy imports, so that cluster records can use it too."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MASK = "******"
MIN_SECRET_LENGTH = 4  # shorter strings ("1", "yes") are too common to scrub from text
# A name (key, env var, flag) whose value is treated as a secret.
SECRET_KEY = re.compile(r"(pass(word|wd)?|pwd|secret|token|key|credential|auth|cert)", re.I)
# Credentials inside a URL under any name: scheme://user:PASSWORD@host.
URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)[^\s/@]+@")


def looks_secret(name: str) -> bool:
    return bool(SECRET_KEY.search(name))


def mask_url_credentials(text: str) -> str:
    """``scheme://user:password@host`` with the password masked, wherever it appears."""
    return URL_CREDENTIALS.sub(lambda m: f"{m['head']}{MASK}@", text)


def mask_flag_values(argv: Sequence[str]) -> list[str]:
    """``--password=x`` (any secret-looking flag) with the value masked, and URL
    credentials masked everywhere: a command line fit for a record or a log."""
    out = []
    for arg in argv:
        flag, sep, _value = arg.partition("=")
        if sep and flag.startswith("-") and looks_secret(flag):
            arg = f"{flag}={MASK}"
        out.append(mask_url_credentials(arg))
    return out


def secret_values(values: Any, *, secret: bool = False) -> set[str]:
    """The strings in a values tree that sit under a secret-looking key (at any depth, and
    whole dotted ``--set`` keys such as ``auth.apiToken``)."""
    found: set[str] = set()
    if isinstance(values, Mapping):
        for key, value in values.items():
            found |= secret_values(value, secret=secret or looks_secret(str(key)))
    elif isinstance(values, list | tuple):
        for value in values:
            found |= secret_values(value, secret=secret)
    elif secret and isinstance(values, str | int | float) and not isinstance(values, bool):
        found.add(str(values))
    return found


class Scrubber:
    """Replaces known secret strings (and their base64 forms) in text with the mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        strings = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        strings |= {base64.b64encode(s.encode()).decode() for s in set(strings)}
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(strings, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        text = self.pattern.sub(MASK, text) if self.pattern is not None else text
        return mask_url_credentials(text)
