"""What counts as a secret in names, flags and URLs, and the mask that replaces it.

The rules live here; :mod:`harness.helm` (Helm's logged command lines),
:mod:`harness.evidence` (bundles) and :mod:`harness.reporting` (reports) apply them.
Kept free of heavy imports, so that cluster records can use it too."""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "******"
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
