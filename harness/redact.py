"""What counts as a secret in names, flags and URLs, and the mask that replaces it.

The rules live here; :mod:`harness.helm.command` (Helm's logged command lines),
:mod:`harness.report.evidence` (bundles) and :mod:`harness.report.plugin` (reports) apply them.
Kept free of heavy imports, so that cluster records can use it too."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

MASK = "******"
MIN_SECRET_LENGTH = 4  # shorter strings ("1", "yes") are too common to scrub from text
# A name (key, env var, flag) whose value is treated as a secret.
SECRET_KEY = re.compile(r"(pass(word|wd)?|pwd|secret|token|key|credential|auth|cert)", re.I)
# Credentials inside a URL under any name: scheme://user:PASSWORD@host.
URL_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:)[^\s/@]+@")


# Options whose value is a URL that carries its token in the path or query (a webhook's,
# ``--notify``), on the command line or as an ini key given with ``-o``.
URL_TOKEN_OPTION = re.compile(r"(?P<head>(?:--notify|helm_harness_notify)=)(?P<urls>.*)", re.S)
URL_TOKEN_FLAGS = ("--notify",)


def looks_secret(name: str) -> bool:
    return bool(SECRET_KEY.search(name))


def url_origin(url: str) -> str:
    """A URL shown as ``scheme://host[:port]`` only: what it may carry in its user info,
    path or query (a webhook's token) left out; the mask for what is no URL."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port else "")


def _token_urls(text: str) -> str:
    """Each URL of ``text`` (separated by white space) as its origin and the mask."""
    return " ".join(f"{url_origin(url)}/{MASK}" for url in text.split())


def mask_url_credentials(text: str) -> str:
    """``scheme://user:password@host`` with the password masked, wherever it appears."""
    return URL_CREDENTIALS.sub(lambda m: f"{m['head']}{MASK}@", text)


def secret_flag_values(args: Sequence[str]) -> set[str]:
    """The values of ``--password=x`` and ``--token x`` style flags (secret-looking names)."""
    found: set[str] = set()
    for index, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if not flag.startswith("-") or not looks_secret(flag):
            continue
        if sep:
            found.add(value)
        elif index + 1 < len(args) and not args[index + 1].startswith("-"):
            found.add(args[index + 1])
    return found


SET_FLAGS = ("--set", "--set-string", "--set-json", "--set-file", "--set-literal")


def redact_args(args: Sequence[object]) -> list[str]:
    """A command line as text, fit for a record, a report or a log: the values of
    secret-looking flags (``--password=x``, ``--token x``, ``--kube-token x``), of Helm's
    ``--set key=value`` assignments whose key looks secret, and the passwords in URLs
    masked; ``--notify URL`` (also ``-o helm_harness_notify=URL``) as the URL's scheme and
    host; a multi-line argument (a script, a document) shown as ``<multi-line>``."""
    texts = [str(arg) for arg in args]
    secrets = secret_flag_values(texts)
    out = []
    for index, arg in enumerate(texts):
        flag, sep, value = arg.partition("=")
        previous = texts[index - 1] if index else ""
        if URL_TOKEN_OPTION.search(arg):
            out.append(URL_TOKEN_OPTION.sub(lambda m: m["head"] + _token_urls(m["urls"]), arg))
        elif previous in URL_TOKEN_FLAGS:
            out.append(_token_urls(arg))
        elif sep and flag in SET_FLAGS:
            out.append(f"{flag}={_redact_assignments(value)}")
        elif previous in SET_FLAGS:
            out.append(_redact_assignments(arg))
        elif sep and flag.startswith("-") and looks_secret(flag):
            out.append(f"{flag}={MASK}")
        elif index and arg in secrets and looks_secret(previous):
            out.append(MASK)
        elif "\n" in arg:
            out.append("<multi-line>")
        else:
            out.append(mask_url_credentials(arg))
    return out


def _redact_assignments(text: str) -> str:
    """``a=1,auth.token=x`` -> ``a=1,auth.token=******``."""
    parts = []
    for item in text.split(","):
        key, sep, _value = item.partition("=")
        parts.append(f"{key}={MASK}" if sep and looks_secret(key) else mask_url_credentials(item))
    return ",".join(parts)


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


def value_secrets(
    values: Any = None, set_values: Any = None, values_files: Iterable[Any] = ()
) -> set[str]:
    """What an app gives Helm under secret-looking keys: inline values, ``--set`` values
    (whole dotted keys) and the values files' (unreadable files are skipped: Helm says
    what is wrong with them)."""
    from pathlib import Path

    from harness.kube.manifests import load

    found = secret_values(values or {}) | secret_values(dict(set_values or {}))
    for path in values_files:
        try:
            found |= secret_values(load(Path(path).read_text()) or {})
        except Exception:  # unreadable or not YAML: nothing to find there
            continue
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
