"""Objects another release holds: a cluster-scoped object (a ClusterRole, a CRD in
templates/, a webhook configuration) belongs to the one Helm release that made it, and
Helm refuses to install a second release rendering it ("exists and cannot be imported
into the current release"). When the holder is another app of this run that the clash
check put before this one, or another run on the same reused cluster, the object is
free again once that app is removed: the install waits for that, within its own
deadline, and says whose it was."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HELD = re.compile(
    r'(?P<kind>[A-Za-z]+) "(?P<name>[^"]+)"(?: in namespace "(?P<namespace>[^"]*)")? '
    r"exists and cannot be imported"
)
_HOLDER_RELEASE = re.compile(
    r'"meta\.helm\.sh/release-name" must equal "[^"]*": current value is "(?P<value>[^"]+)"'
)
_HOLDER_NAMESPACE = re.compile(
    r'"meta\.helm\.sh/release-namespace" must equal "[^"]*": current value is "(?P<value>[^"]+)"'
)
_RUN_NAMESPACE = re.compile(r"^h-(?P<run>[0-9a-f]{8})-")


@dataclass(frozen=True)
class Hold:
    """An object Helm would not take over, and the release holding it (when Helm says)."""

    kind: str
    name: str
    release: str | None
    namespace: str | None

    def describe(self, own_run: str = "") -> str:
        holder = f"release {self.release}" if self.release else "another release"
        if self.namespace:
            holder += f" in namespace {self.namespace}"
            match = _RUN_NAMESPACE.match(self.namespace)
            if match and match["run"] != own_run:
                holder += f" (helm-harness run {match['run']})"
            elif match:
                holder += " (an app of this run)"
        return f"{self.kind}/{self.name}, held by {holder}"


def hold_of(reason: str) -> Hold | None:
    """The held object in Helm's refusal, or None when the refusal is of another kind
    (an object without Helm's ownership annotations is never waited for)."""
    held = _HELD.search(reason)
    if held is None or "invalid ownership metadata" not in reason:
        return None
    release = _HOLDER_RELEASE.search(reason)
    namespace = _HOLDER_NAMESPACE.search(reason)
    return Hold(
        held["kind"],
        held["name"],
        release["value"] if release else None,
        namespace["value"] if namespace else None,
    )
