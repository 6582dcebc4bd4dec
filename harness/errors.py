"""Errors raised by helm-harness.

Every error the harness raises on purpose derives from :class:`HarnessError`, carries the
objects involved as attributes, and chains the library error that caused it (``raise ...
from exc``)::

    HarnessError
    ├── UsageError                  bad input from the user: a file, an option, a name
    ├── ToolError                   an external program could not be found or failed
    │   ├── MissingBinariesError    binaries are missing; says how to install them
    │   └── CommandError            a program exited non-zero (argv, exit code, stderr)
    ├── ClusterError                a cluster could not be created, found or deleted
    │   └── ClusterExistsError      the cluster name is taken and reuse was not asked for
    ├── HelmError                   a Helm operation failed (release, namespace, Helm's reason),
    │   │                           one subclass per pyhelm3 error type:
    │   ├── HelmReleaseNotFound, HelmChartNotFound, HelmRenderError,
    │   └── HelmResourceExists, HelmInvalidResource, HelmConnectionError, HelmCancelled
    ├── KubeApiError                the Kubernetes API refused or failed a request
    │   │                           (HTTP status, Status reason, the API server's message)
    │   ├── NotFound                404
    │   ├── Conflict                409: exists already, or changed since it was read
    │   ├── Gone                    410: a resourceVersion too old to list or watch from
    │   ├── Forbidden               401, 403
    │   └── TransientApiError       429, 5xx, or no answer (also a TemporaryError)
    ├── WaitTimeout                 a condition did not hold before its deadline
    │                               (what was expected, what was last observed)
    ├── CheckFailed                 a health check found the app unhealthy
    │                               (expected, observed, evidence, runbook)
    ├── LintFailed                  ``lint`` found problems in an app's chart (one line each)
    ├── Stopped                     work done ahead in a thread was stopped: the run is
    │                               ending (a failure with -x, Ctrl-C); never an app's fault
    ├── portforward.PortForwardError  a pod port could not be reached (namespace, target,
    │                               port, the API server's or kubelet's reason)
    ├── notify.NotifyError          an alert did not reach its URL (shown as scheme and host)
    │   └── NotifyUnavailable       no connection, no answer, 429, 5xx (also a TemporaryError)
    └── kwok_sim.SimulationError    kwok did not take a simulated port/log setting up

The last three live beside the code that raises them.

``TemporaryError`` marks errors worth retrying (API server hiccups); everything else is
permanent. :func:`harness.kube.client.api_error` turns the Kubernetes client's exceptions
into the ``KubeApiError`` family, chained from them.
"""

from __future__ import annotations

from collections.abc import Sequence


class HarnessError(Exception):
    """Base of every error helm-harness raises on purpose."""


class TemporaryError(HarnessError):
    """A failure that may go away when retried (connection reset, 429, 5xx)."""


class UsageError(HarnessError):
    """Bad input: a malformed file, an unknown key, a bad option value."""


class ToolError(HarnessError):
    """An external program is missing or failed."""


class MissingBinariesError(ToolError):
    """Some binaries are missing; the message lists them and the command installing them."""

    def __init__(self, missing: Sequence[str], install_hint: str) -> None:
        self.missing = list(missing)
        self.install_hint = install_hint
        super().__init__(
            f"missing binaries: {', '.join(self.missing)}; install them with: {install_hint}"
        )


class CommandError(ToolError):
    """A program exited non-zero. ``argv`` is already redacted."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip()
        super().__init__(
            f"{self.argv[0]} exited with {returncode}: {' '.join(self.argv)}"
            + (f"\n{tail}" if tail else "")
        )


class ClusterError(HarnessError):
    """A cluster could not be created, found, reached or deleted."""

    def __init__(self, message: str, *, provider: str = "", name: str = "") -> None:
        self.provider = provider
        self.name = name
        super().__init__(message)


class ClusterExistsError(ClusterError):
    """The cluster name is already taken and reuse was not asked for."""


class HelmError(HarnessError):
    """A Helm operation failed; ``reason`` is Helm's own message."""

    def __init__(self, operation: str, release: str, namespace: str, reason: str) -> None:
        self.operation = operation
        self.release = release
        self.namespace = namespace
        self.reason = reason
        super().__init__(f"helm {operation} of {namespace}/{release} failed: {reason}")


class HelmReleaseNotFound(HelmError):
    """Helm knows no such release."""


class HelmChartNotFound(HelmError):
    """Helm found no such chart (or version) where it was told to look."""


class HelmRenderError(HelmError):
    """The chart's templates failed to render (a ``fail``, a missing value, bad YAML)."""


class HelmResourceExists(HelmError):
    """A rendered object already exists and belongs to no release of this name."""


class HelmInvalidResource(HelmError):
    """The API server refused a rendered object as invalid."""


class HelmConnectionError(HelmError):
    """Helm could not reach the cluster's API server."""


class HelmCancelled(HelmError):
    """The Helm call was cancelled before it finished."""


class KubeApiError(HarnessError):
    """A Kubernetes API request failed: ``status`` (HTTP; 0 when nothing answered),
    ``reason`` (the Status reason, e.g. ``NotFound``), ``message`` (the API server's words)."""

    def __init__(self, status: int, reason: str, message: str, what: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.what = what
        prefix = f"{what}: " if what else ""
        super().__init__(f"{prefix}{status or 'no answer'} {reason}: {message}".rstrip(": "))


class NotFound(KubeApiError):
    """The object (or the resource type) does not exist."""


class Conflict(KubeApiError):
    """The object exists already, or changed since it was read."""


class Gone(KubeApiError):
    """The resourceVersion to list or watch from is too old."""


class Forbidden(KubeApiError):
    """The credentials may not do this (401, 403)."""


class TransientApiError(KubeApiError, TemporaryError):
    """Worth retrying: throttled (429), a server error (5xx), or no answer at all."""


class WaitTimeout(HarnessError):
    """A condition did not hold before the deadline."""

    def __init__(self, expected: str, observed: str, timeout: float) -> None:
        self.expected = expected
        self.observed = observed
        self.timeout = timeout
        super().__init__(
            f"timed out after {timeout:g}s waiting for {expected}; last observed: {observed}"
        )


class CheckFailed(HarnessError):
    """A check found the app unhealthy: what it expected, what it saw."""

    def __init__(self, expected: str, observed: str, *, details: str = "") -> None:
        self.expected = expected
        self.observed = observed
        self.details = details
        text = f"expected {expected}; observed {observed}"
        super().__init__(text + (f"\n{details}" if details else ""))


class LintFailed(HarnessError):
    """``lint`` found problems in an app's chart (``helm lint`` errors, objects the API
    server refused): ``problems``, one line each."""

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        super().__init__("\n".join([summary, *(f"  {line}" for line in self.problems)]))


class Stopped(HarnessError):
    """Work a thread did ahead of its items was stopped because the run is ending
    (:mod:`harness.stopping`)."""
