"""Suite files: the data model (this part is fixed), and loading with validation.

A suite file is YAML whose first document has ``kind: Suite`` (see the README's "Suite
file" section and ``harness/suite/schema/suite.schema.json``). :func:`load_suite` returns a
:class:`Suite` or raises :class:`SuiteError` naming the file, line and key.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast

import yaml

from harness.checks import CHECK_KINDS, KINDS
from harness.errors import UsageError
from harness.kube.manifests import KubeLoader
from harness.suite import matrix
from harness.suite.graph import find_cycle
from harness.units import parse_duration

if TYPE_CHECKING:
    from jsonschema import ValidationError

DEFAULT_TIMEOUT = 300.0  # seconds, for install + readiness of one app
# Every duration in a suite is a timeout: Helm gets an app's (and a helmTest check's) as
# --timeout, a Go time.Duration (int64 nanoseconds: 2562047h47m16.854775807s at most), and
# the harness counts whole seconds (it never waits less than one; Helm gets int seconds).
MIN_DURATION = 1.0  # seconds
MAX_DURATION = (2**63 - 1) / 1e9  # seconds: Go's largest time.Duration, about 292 years


_SUITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SET_PART = r"(?:[^.\[\]\\=,]|\\.)+(?:\[\d+\])*"
_SET_KEY = re.compile(rf"{_SET_PART}(?:\.{_SET_PART})*")


def _kind_of(value: Any) -> str:
    return {
        list: "a list",
        str: "text",
        int: "a number",
        float: "a number",
        bool: "true/false",
    }.get(type(value), type(value).__name__)


class DurationOutOfRange(ValueError):
    """A duration that parses but that Helm or the harness cannot take (see
    :func:`suite_duration`)."""


_DURATION_FORMS = "a number with a unit (90s, 5m, 1m30s, 1h) or a number of seconds"
_AT_LEAST = "give at least 1s"
_NEGATIVE = f"a duration cannot be negative; {_AT_LEAST}"
_ZERO = (
    "a duration of 0 is no time at all (Helm takes --timeout 0s as no limit, the harness "
    f"would give up at once); {_AT_LEAST}"
)
_TOO_SHORT = (
    "a duration under 1s is too short: Helm gets --timeout in whole seconds and the harness "
    f"waits at least 1s, so it would silently become 1s; {_AT_LEAST}"
)
_TOO_LARGE = (
    "a duration is too large: Helm's --timeout, a Go duration, holds at most "
    "2562047h47m16.854775807s (about 292 years)"
)


def suite_duration(value: Any) -> float:
    """Seconds of a duration as a suite file gives it (``90s``, ``5m``, ``1m30s``, ``1.5m``,
    a number of seconds), held to what Helm's ``--timeout`` and the harness can take: from
    1s to Go's largest duration. :class:`DurationOutOfRange` for a negative, zero,
    sub-second or too large one; ValueError for anything that is no duration."""
    grammar = _schema()["$defs"]["duration"]["anyOf"][0]["pattern"]
    text = value.strip() if isinstance(value, str) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise DurationOutOfRange(_NEGATIVE)
        if value > MAX_DURATION:  # before float(): an int of 400 digits overflows it
            raise DurationOutOfRange(_TOO_LARGE)
    if text is not None and text.startswith("-") and re.search(grammar, text[1:]):
        raise DurationOutOfRange(_NEGATIVE)
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        if text is not None and re.search(grammar, text):  # more than a timedelta holds
            raise DurationOutOfRange(_TOO_LARGE) from exc
        raise ValueError(f"a duration is {_DURATION_FORMS}") from exc
    if math.isnan(seconds):
        raise ValueError(f"a duration is {_DURATION_FORMS}")
    if seconds > MAX_DURATION:  # infinity included
        raise DurationOutOfRange(_TOO_LARGE)
    if seconds == 0 and not (text and re.search(r"[1-9]", text)):  # not 500ns either
        raise DurationOutOfRange(_ZERO)
    if seconds < MIN_DURATION:
        raise DurationOutOfRange(_TOO_SHORT)
    return seconds


def load_values_text(text: str) -> Any:
    """A values file's content, read as Helm reads it."""
    from harness.kube.manifests import load

    return load(text)


def name_collisions(suites: list[Suite]) -> list[str]:
    """Apps of different suite files that share a suite name and an app name, and so would
    share one namespace (``h-<run>-<suite>-<app>``) and release: one line per pair."""
    seen: dict[tuple[str, str], Path] = {}
    problems = []
    for suite in suites:
        for app in suite.apps:
            if app.namespace:
                continue  # placed by the suite itself
            first = seen.setdefault((suite.name, app.name), suite.path)
            if first != suite.path:
                problems.append(
                    f"{first} and {suite.path} both have suite {suite.name!r} with app "
                    f"{app.name!r}: they would share one namespace; give one of them another "
                    "metadata.name"
                )
    return problems


class SuiteError(UsageError):
    """A suite file is malformed: names the file, the line and the key."""

    def __init__(self, path: Path, line: int | None, key: str, message: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.problem = message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


@dataclass(frozen=True)
class Step:
    """One entry of a check's ``catch`` or ``finally`` list (:mod:`harness.checks.steps`)."""

    kind: str  # events, podLogs, get (catch); delete, apply (finally)
    spec: dict[str, Any]
    line: int = 0


@dataclass(frozen=True)
class Check:
    """One entry of an app's ``checks`` list."""

    kind: str  # one of CHECK_KINDS
    spec: dict[str, Any]  # the check's own mapping, without name/timeout/runbook
    name: str | None = None
    timeout: float | None = None  # seconds
    runbook: str | None = None
    line: int = 0
    catch: tuple[Step, ...] = ()  # evidence when it fails
    cleanup: tuple[Step, ...] = ()  # `finally`: always after it
    xfail: str | None = None  # expected to fail, and why

    @property
    def id(self) -> str:
        """The item id within its app: ``ready``, ``http[/healthz]``, or the given name."""
        if self.name:
            return self.name
        param = KINDS[self.kind].item_param(self.spec)
        return f"{self.kind}[{param}]" if param else self.kind


@dataclass(frozen=True)
class GitChart:
    """``upgrade.from: {git: REF, path: PATH}``: a chart as it was at a ref of the git
    repository holding the suite file (see :mod:`harness.helm.gitref`)."""

    ref: str
    path: str | None  # relative to the repository root; None: the app's own chart folder
    folder: Path  # the suite file's folder: the repository is the one holding it


@dataclass(frozen=True)
class ChartRef:
    """Where a chart comes from: a local folder or .tgz, a name in a repo, oci://, or (an
    upgrade's old chart) a ref of the suite's git repository."""

    chart: str  # as written (a local path is resolved to an absolute one)
    repo: str | None = None
    version: str | None = None
    git: GitChart | None = None  # chart is then "git:REF[:PATH]", for messages

    @property
    def is_local(self) -> bool:
        return self.git is None and self.repo is None and not self.chart.startswith("oci://")


@dataclass(frozen=True)
class App:
    name: str
    source: ChartRef
    release: str
    namespace: str | None  # None: a fresh namespace per run
    values: dict[str, Any] = field(default_factory=dict)
    values_files: tuple[Path, ...] = ()  # absolute
    set_values: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    runbook: str | None = None
    upgrade_from: ChartRef | None = None
    checks: tuple[Check, ...] | None = None  # None: the defaults (ready, helmTest if any)
    line: int = 0
    owners: tuple[str, ...] = ()  # who to tell when it fails: teams, handles, addresses
    xfail: str | None = None  # all its items are expected to fail, and why


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    apps: tuple[App, ...]
    upgrade: bool = False  # defaults.upgrade: true


# --- loading and validation -------------------------------------------------------------

SUITE_SUFFIXES = (".suite.yaml", ".suite.yml")
YAML_SUFFIXES = (".yaml", ".yml")
MAX_DEPTH = 64  # nesting levels of one suite document
MAX_NODES = 100_000  # YAML nodes once aliases are expanded (a guard against alias bombs)

Loc = tuple[str | int, ...]  # where a value sits in the document: ("apps", 0, "chart")

_STR_TAG = "tag:yaml.org,2002:str"
_KEY_TAGS = (_STR_TAG, "tag:yaml.org,2002:value")  # "=" as a key is read as a string
_MERGE_TAG = "tag:yaml.org,2002:merge"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def suite_schema() -> dict[str, Any]:
    """The JSON Schema of suite files (``harness/suite/schema/suite.schema.json``), a fresh copy."""
    return copy.deepcopy(_schema())


@functools.cache
def _schema() -> dict[str, Any]:
    text = (
        resources.files("harness.suite").joinpath("schema", "suite.schema.json").read_text("utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def is_suite_file(path: Path) -> bool:
    """Whether pytest and ``helm-harness validate`` should treat ``path`` as a suite file.

    A ``*.suite.yaml`` (or ``.suite.yml``) file is one unless its first document names
    another ``kind``: a broken or unreadable one still counts, so that loading it reports
    the problem instead of the file being silently skipped. Any other ``*.yaml``/``*.yml``
    file below a folder named ``suites`` is one only when its first document has
    ``kind: Suite`` (values files live there too). Never raises.
    """
    try:
        named = path.name.endswith(SUITE_SUFFIXES)
        below_suites = path.suffix in YAML_SUFFIXES and "suites" in path.absolute().parent.parts
        if not (named or below_suites) or not path.is_file():
            return False
        try:
            kind = _declared_kind(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError, RecursionError):
            return named
        return kind == "Suite" or (named and kind is None)
    except Exception:  # a path that cannot even be inspected is not a suite file
        return False


def find_suite_files(folder: Path) -> list[Path]:
    """The suite files below ``folder``, sorted; hidden folders are not searched."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            candidate = Path(root, name)
            if name.endswith(YAML_SUFFIXES) and is_suite_file(candidate):
                found.append(candidate)
    return found


def _declared_kind(text: str) -> str | None:
    """The ``kind`` of the first YAML document, if it is a mapping that has one."""
    loader = KubeLoader(text)
    try:
        root = loader.get_node() if loader.check_node() else None
    finally:
        loader.dispose()
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "kind":
            return str(value.value) if isinstance(value, yaml.ScalarNode) else "?"
    return None


def load_suite(path: Path) -> Suite:
    """Read, validate and build the suite in ``path``; raise :class:`SuiteError` on any problem.

    Only the first YAML document is read. Checks, in order: YAML syntax (duplicate keys and
    non-text keys included), the JSON Schema, then what a schema cannot say: local charts
    and values files exist, app names are unique, ``dependsOn`` names apps of this suite
    and has no cycle, no two checks of an app share an id, no two apps install the same
    release into the same namespace.

    ``defaults`` are merged under each app the way Helm merges values: mappings (``values``,
    ``set``) key by key and recursively, the app's own winning; anything else the app gives
    (a string, a number, a list such as ``valuesFiles`` or ``checks``) replaces the default.
    ``release`` defaults to the app name, ``metadata.name`` to the file name without
    ``.suite.yaml``; ``valuesFiles`` and local charts are resolved against the suite's folder.
    """
    doc = _Document.read(path)
    doc.validate()
    return _SuiteBuilder(doc).build()


def _dotted(loc: Loc) -> str:
    """``("apps", 1, "checks", 0, "wait", "for")`` as ``apps[1].checks[0].wait.for``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


class _Document:
    """A parsed suite document and the YAML node of every key and list item in it."""

    def __init__(self, path: Path, data: Any, root: yaml.Node) -> None:
        self.path = path
        self.data = data
        self.keys: dict[Loc, yaml.Node] = {}  # the key node of each mapping entry
        self.nodes: dict[Loc, yaml.Node] = {}  # the value node of each entry and list item
        self._record(root, ())

    @classmethod
    def read(cls, path: Path) -> _Document:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise SuiteError(
                path, None, "", f"cannot read the file: {exc.strerror or exc}"
            ) from exc
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise SuiteError(path, line, "", "the file is not UTF-8 text") from exc
        loader: yaml.SafeLoader | None = None
        try:
            loader = KubeLoader(text)
            root = loader.get_node() if loader.check_node() else None
            if root is None:
                raise SuiteError(path, None, "", f"the file is empty; {_SUITE_START}")
            _Inspector(path).inspect(root)
            data = loader.construct_document(root)
            if loader.check_node():
                extra = loader.get_node()
                if extra is not None and not (
                    isinstance(extra, yaml.ScalarNode) and extra.tag.endswith(":null")
                ):
                    raise SuiteError(
                        path,
                        extra.start_mark.line + 1,
                        "",
                        "a second YAML document: a suite file holds one suite (put the "
                        "other in a file of its own)",
                    )
        except yaml.MarkedYAMLError as exc:
            raise _yaml_error(path, exc) from exc
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "?"
            message = f"invalid YAML: character {char} is not allowed ({exc.reason})"
            raise SuiteError(path, line, "", message) from exc
        except yaml.YAMLError as exc:
            raise SuiteError(path, None, "", f"invalid YAML: {exc}") from exc
        except RecursionError as exc:
            raise SuiteError(path, None, "", "the YAML nests too deeply") from exc
        finally:
            if loader is not None:
                loader.dispose()
        if not isinstance(data, dict):
            line = root.start_mark.line + 1
            raise SuiteError(path, line, "", f"{_SUITE_START}; found {_describe(data, root)}")
        return cls(path, data, root)

    def _record(self, node: yaml.Node, loc: Loc, seen: set[int] | None = None) -> None:
        seen = set() if seen is None else seen
        if id(node) in seen:  # an alias: its parts are recorded where the anchor is
            return
        seen.add(id(node))
        self.nodes[loc] = node
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:  # merge keys are already flattened in
                self.keys[(*loc, key.value)] = key
                self._record(value, (*loc, key.value), seen)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._record(item, (*loc, index), seen)

    def node(self, loc: Loc) -> yaml.Node | None:
        return self.nodes.get(loc)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``'s key (or list item), else of its nearest recorded parent."""
        for end in range(len(loc), -1, -1):
            node = self.keys.get(loc[:end]) or self.nodes.get(loc[:end])
            if node is not None:
                return int(node.start_mark.line) + 1
        return None

    def error(self, loc: Loc, message: str) -> SuiteError:
        return SuiteError(self.path, self.line(loc), _dotted(loc), message)

    def validate(self) -> None:
        """Raise the schema error that comes first in the file, if there is one."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(_schema())
        problems = [_SchemaProblem(self, error) for error in validator.iter_errors(self.data)]
        if problems:
            first = min(problems, key=lambda p: p.order)
            raise first.error


_SUITE_START = (
    "a suite file is a mapping that starts with apiVersion: helm-harness/v1 and kind: Suite"
)


def _yaml_error(path: Path, exc: yaml.MarkedYAMLError) -> SuiteError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "not valid YAML"
    message = f"invalid YAML: {problem}"
    if mark is not None:
        message += f" (column {mark.column + 1})"
    if exc.context and exc.problem:
        message += f", {exc.context}"
    if "\\t" in problem or "\t" in problem:
        message += "; YAML indents with spaces, not tabs"
    elif "block" in problem or "mapping values are not allowed" in problem:
        message += "; check the indentation of this line and the lines above it"
    return SuiteError(path, mark.line + 1 if mark is not None else None, "", message)


class _Inspector:
    """Checks the YAML node graph before it becomes Python data: keys are text and unique,
    aliases do not contain themselves, and the expanded document stays a sane size."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()

    def fail(self, node: yaml.Node, loc: Loc, message: str) -> SuiteError:
        return SuiteError(self.path, node.start_mark.line + 1, _dotted(loc), message)

    def inspect(self, root: yaml.Node) -> None:
        if self.size(root, ()) > MAX_NODES:
            raise self.fail(root, (), f"the document is too large (over {MAX_NODES} values)")

    def size(self, node: yaml.Node, loc: Loc) -> int:
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if id(node) in self.active:
            raise self.fail(
                node,
                loc,
                f"the alias at {_dotted(loc)} refers to a node that contains it (its anchor is "
                f"at line {node.start_mark.line + 1})",
            )
        if len(loc) > MAX_DEPTH:
            raise self.fail(node, loc, f"nested more than {MAX_DEPTH} levels deep")
        self.active.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += self.mapping_size(node, loc)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(self.size(item, (*loc, i)) for i, item in enumerate(node.value))
        self.active.discard(id(node))
        self.sizes[id(node)] = total
        if total > MAX_NODES:
            raise self.fail(node, loc, f"the document is too large (over {MAX_NODES} values)")
        return total

    def mapping_size(self, node: yaml.MappingNode, loc: Loc) -> int:
        first_at: dict[str, int] = {}
        total = 0
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                total += self.size(value, loc)
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag not in _KEY_TAGS:
                shown = key.value if isinstance(key, yaml.ScalarNode) else "a list or mapping"
                raise self.fail(
                    key, loc, f"a key must be text, not {shown}; quote it if it is meant as text"
                )
            if key.value in first_at:
                raise self.fail(
                    key,
                    (*loc, key.value),
                    f"duplicate key (first given at line {first_at[key.value]})",
                )
            first_at[key.value] = key.start_mark.line + 1
            total += self.size(value, (*loc, key.value))
        return total


def _describe(value: Any, node: yaml.Node | None) -> str:
    """A value as the user wrote it, for messages: ``the number 1.10``, ``a list``."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    raw = node.value if isinstance(node, yaml.ScalarNode) else str(value)
    if len(raw) > 60:
        raw = raw[:57] + "..."
    if isinstance(value, str):
        return f"the text {raw!r}"
    if isinstance(value, bool):
        return raw
    if isinstance(value, (int, float)):
        return f"the number {raw}"
    return repr(raw)


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "an empty value",
}

_PRIORITY = {"additionalProperties": 0, "required": 1, "type": 2, "const": 2, "enum": 2}
_COMBINATORS = ("oneOf", "anyOf")
_CUSTOMISED = ("pattern", "anyOf", "oneOf", "minLength", "maxLength", "minimum", "maximum")


class _SchemaProblem:
    """One jsonschema error, turned into a SuiteError that a user can act on."""

    def __init__(self, doc: _Document, error: ValidationError) -> None:
        self.doc = doc
        # iter_errors sets every field that the stubs call maybe-Unset
        self.raw: Any = cast(Any, error)
        self.loc: Loc = tuple(error.absolute_path)
        self.error = self._translate()
        validator = self.raw.validator
        priority = 4 if validator in _COMBINATORS else _PRIORITY.get(validator, 3)
        self.order = (self._rank(), self.error.line or 0, priority, -len(self.loc))

    def _rank(self) -> int:
        """Whether a file is a suite at all comes first; then unknown keys (a misspelt key
        also makes a required one missing); then the rest, in file order."""
        if self.loc[:1] in (("apiVersion",), ("kind",)):
            return 0
        if not self.loc and self.raw.validator == "required":
            missing = set(self.raw.validator_value) - set(self.raw.instance)
            return 0 if missing & {"apiVersion", "kind"} else 2
        return 1 if self.raw.validator == "additionalProperties" else 2

    def _translate(self) -> SuiteError:
        error, loc, doc = self.raw, self.loc, self.doc
        validator, instance, schema = error.validator, error.instance, error.schema
        shown = _describe(instance, doc.node(loc))
        if validator == "additionalProperties":
            return self._unknown_key(instance, schema)
        if validator == "required":
            return self._missing(instance, error.validator_value)
        if validator == "type":
            return self._wrong_type(instance, error.validator_value)
        if validator == "oneOf" and loc and loc[-2:-1] == ("checks",):
            return self._check_kinds(instance)
        if validator == "anyOf" and schema == _schema()["$defs"]["duration"]:
            try:
                suite_duration(instance)
            except DurationOutOfRange as exc:  # say why, not just what a duration looks like
                return doc.error(loc, f"{exc}; got {shown}")
            except ValueError:
                pass
        if isinstance(schema, dict) and "errorMessage" in schema and validator in _CUSTOMISED:
            got = "" if isinstance(instance, (dict, list)) else f"; got {shown}"
            return doc.error(loc, f"{schema['errorMessage']}{got}")
        if validator == "const":
            return doc.error(loc, f"must be {error.validator_value!r}, not {shown}")
        if validator == "enum":
            choices = ", ".join(str(c) for c in error.validator_value)
            return doc.error(loc, f"must be one of {choices}; got {shown}")
        if validator in ("minItems", "minProperties", "minLength"):
            message = "must not be empty"
            if isinstance(schema, dict) and schema.get("properties"):
                message += f"; give {', '.join(schema['properties'])}"
            return doc.error(loc, message)
        if validator == "maxLength":
            return doc.error(loc, f"is too long: at most {error.validator_value} characters")
        if validator == "minimum":
            return doc.error(loc, f"must be at least {error.validator_value}, not {shown}")
        if validator == "maximum":
            return doc.error(loc, f"must be at most {error.validator_value}, not {shown}")
        if validator == "uniqueItems":
            twice = next((x for i, x in enumerate(instance) if x in instance[:i]), None)
            return doc.error(loc, f"lists {json.dumps(twice)} twice")
        return doc.error(loc, str(error.message)[:200])

    def _unknown_key(self, instance: dict[str, Any], schema: dict[str, Any]) -> SuiteError:
        allowed = list(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extras = [
            key
            for key in instance
            if key not in allowed and not any(re.search(p, key) for p in patterns)
        ]
        extra = min(extras, key=lambda key: self.doc.line((*self.loc, key)) or 0)
        message = f"unknown key {extra!r}"
        close = difflib.get_close_matches(extra, allowed, n=1, cutoff=0.6)
        lowered = {name.lower(): name for name in allowed}
        if extra.lower() in lowered:
            message += f" (did you mean {lowered[extra.lower()]!r}?)"
        elif close:
            message += f" (did you mean {close[0]!r}?)"
        owner = self._misplaced_in(instance, extra)
        if owner:
            message += f"; it belongs to {owner!r}: indent it under `{owner}:`"
        if extra in CHECK_KINDS and "checks" in allowed:
            message += f"; checks go in the `checks` list: `checks: [{{{extra}: {{}}}}]`"
        message += f"; allowed here: {', '.join(allowed)}" if allowed else "; it takes no keys"
        return self.doc.error((*self.loc, extra), message)

    def _misplaced_in(self, instance: dict[str, Any], extra: str) -> str | None:
        """The check kind of this check whose own field ``extra`` is, when misindented."""
        if self.loc[-2:-1] != ("checks",):
            return None
        defs = _schema()["$defs"]
        for kind in CHECK_KINDS:
            if kind in instance and extra in defs[kind].get("properties", {}):
                return kind
        return None

    def _missing(self, instance: dict[str, Any], required: list[str]) -> SuiteError:
        missing = next(name for name in required if name not in instance)
        message = f"missing required key {missing!r}"
        if not self.loc:
            message += f" ({_SUITE_START})"
        elif missing == "chart" and self.loc[:1] == ("apps",):
            message += " (give it here or in `defaults`)"
        return self.doc.error(self.loc, message)

    def _wrong_type(self, instance: Any, expected: str | list[str]) -> SuiteError:
        wanted = [expected] if isinstance(expected, str) else list(expected)
        names = " or ".join(_TYPE_NAMES.get(name, name) for name in wanted if name != "null")
        node = self.doc.node(self.loc)
        message = f"expected {names}, got {_describe(instance, node)}"
        if "string" in wanted and isinstance(node, yaml.ScalarNode) and node.value:
            message += f"; quote it: {json.dumps(node.value)}"
        if self.loc[-2:-1] == ("checks",) and instance in CHECK_KINDS:
            message += f"; write a check as a mapping: `- {instance}: {{}}`"
        if self.loc[-1:] == ("owners",) and isinstance(instance, str):
            message += f"; write a list, even of one: `owners: [{instance}]`"
        if instance is None and self.loc[-3:-2] == ("checks",) and self.loc[-1] in CHECK_KINDS:
            kind = self.loc[-1]
            message += f"; write `{kind}: {{...}}` with its fields indented under `{kind}:`"
        return self.doc.error(self.loc, message)

    def _check_kinds(self, instance: Any) -> SuiteError:
        if not isinstance(instance, dict):  # the "type" error says it better
            return self._wrong_type(instance, "object")
        kinds = [key for key in instance if key in CHECK_KINDS]
        if not kinds:
            message = f"a check needs one check kind: {', '.join(CHECK_KINDS)}"
        else:
            items = ", ".join(f"`- {kind}: ...`" for kind in kinds)
            message = (
                f"a check has exactly one kind, this one has {' and '.join(kinds)}: "
                f"give each its own list item ({items})"
            )
        return self.doc.error(self.loc, message)


class _SuiteBuilder:
    """Turns a schema-valid document into a :class:`Suite`, checking what a schema cannot."""

    def __init__(self, doc: _Document) -> None:
        self.doc = doc
        self.folder = doc.path.parent
        defaults = dict(doc.data.get("defaults") or {})
        self.upgrade = bool(defaults.pop("upgrade", False))
        self.defaults = defaults
        self.origins: list[dict[str, Loc]] = []  # per app: field -> where it was given

    def build(self) -> Suite:
        for loc, value in sorted(
            _durations(self.doc.data), key=lambda found: self.doc.line(found[0]) or 0
        ):
            self.duration(loc, value)  # defaults that every app overrides included
        apps = tuple(self.app(index, raw) for index, raw in enumerate(self.doc.data["apps"]))
        self.check_unique(apps)
        self.check_depends_on(apps)
        apps = self.values_matrix(apps)
        return Suite(path=self.doc.path, name=self.suite_name(), apps=apps, upgrade=self.upgrade)

    def values_matrix(self, apps: tuple[App, ...]) -> tuple[App, ...]:
        """Each app with a ``valuesMatrix`` as one app per matching file (:mod:`.matrix`)."""
        locs: dict[str, Loc] = {}
        files: dict[str, list[Path]] = {}
        for index, app in enumerate(apps):
            loc = self.origins[index].get("valuesMatrix")
            if loc is None:
                continue
            locs[app.name] = loc
            raw = self.doc.data["apps"][index]
            pattern = str(raw.get("valuesMatrix", self.defaults.get("valuesMatrix")))
            try:
                found = matrix.matrix_files(app.name, app.source, pattern)
            except matrix.MatrixError as exc:
                raise self.doc.error(loc, str(exc)) from exc
            files[app.name] = [self.values_file(loc, str(path)) for path in found]
        try:
            return matrix.expand(apps, files)
        except matrix.MatrixError as exc:
            raise self.doc.error(locs[exc.app], str(exc)) from exc

    def suite_name(self) -> str:
        name = (self.doc.data.get("metadata") or {}).get("name")
        if name:
            return str(name)
        file_name = derived = self.doc.path.name
        for suffix in (*SUITE_SUFFIXES, *YAML_SUFFIXES):
            if file_name.endswith(suffix):
                derived = file_name[: -len(suffix)]
                break
        # The same rule the schema holds metadata.name to: the name goes into labels.
        if not _SUITE_NAME.fullmatch(derived) or len(derived) > 63:
            raise SuiteError(
                self.doc.path,
                None,
                "metadata.name",
                f"the suite's name defaults to the file name, {derived!r}, which is not a valid "
                "suite name (letters, digits, '.', '_' and '-', starting with a letter or "
                "digit, at most 63): rename the file or set metadata.name",
            )
        return derived

    def app(self, index: int, raw: dict[str, Any]) -> App:
        fields = {**self.defaults, **raw}
        for key in ("values", "set"):
            if key in self.defaults and key in raw:
                fields[key] = _merge(self.defaults[key], raw[key])
        origin: dict[str, Loc] = {
            key: ("apps", index, key) if key in raw else ("defaults", key) for key in fields
        }
        self.origins.append(origin)
        name = str(raw["name"])
        source = self.chart_ref(
            origin, str(fields["chart"]), fields.get("repo"), fields.get("version")
        )
        checks = fields.get("checks")
        return App(
            name=name,
            source=source,
            release=str(fields.get("release", name)),
            namespace=fields.get("namespace"),
            values=copy.deepcopy(fields.get("values", {})),
            values_files=tuple(
                self.values_file((*origin["valuesFiles"], i), entry)
                for i, entry in enumerate(fields.get("valuesFiles", ()))
            ),
            set_values=self.set_values(origin.get("set", ()), fields.get("set", {})),
            depends_on=tuple(fields.get("dependsOn", ())),
            timeout=self.duration(origin["timeout"], fields["timeout"])
            if "timeout" in fields
            else DEFAULT_TIMEOUT,
            runbook=fields.get("runbook"),
            upgrade_from=self.upgrade_from(index, source, raw.get("upgrade")),
            checks=None if checks is None else self.checks(origin["checks"], checks),
            line=self.doc.line(("apps", index)) or 0,
            owners=self.owners(origin.get("owners", ()), fields.get("owners", [])),
            xfail=fields.get("xfail"),
        )

    def chart_ref(
        self, origin: dict[str, Loc], chart: str, repo: str | None, version: str | None
    ) -> ChartRef:
        ref = ChartRef(chart=chart, repo=repo, version=version)
        if chart.startswith("oci://") and repo is not None:
            raise self.doc.error(origin["repo"], "an oci:// chart takes no repo")
        if not ref.is_local:
            return ref
        if version is not None:
            raise self.doc.error(
                origin["version"],
                "version applies to charts from a repo or an OCI registry; a local chart's "
                "version is the one in its Chart.yaml",
            )
        where = self.local_path(origin["chart"], chart)
        if not where.exists():
            raise self.doc.error(
                origin["chart"],
                f"chart not found: {where} (a local chart is a folder or .tgz relative to the "
                "suite file; for a chart from a repository give `repo`)",
            )
        if where.is_dir() and not (where / "Chart.yaml").is_file():
            raise self.doc.error(origin["chart"], f"{where} is not a Helm chart: no Chart.yaml")
        if not where.is_dir() and not where.name.endswith((".tgz", ".tar.gz")):
            raise self.doc.error(
                origin["chart"], f"{where} is not a Helm chart: give a chart folder or a .tgz"
            )
        return ChartRef(chart=str(where), repo=None, version=None)

    def upgrade_from(self, index: int, source: ChartRef, upgrade: Any) -> ChartRef | None:
        if upgrade is None:
            return None
        given: dict[str, str] = upgrade["from"]
        loc: Loc = ("apps", index, "upgrade", "from")
        origin = {key: (*loc, key) for key in ("chart", "repo", "version")}
        if "git" in given:
            return self.git_chart(loc, source, given)
        if "path" in given:
            raise self.doc.error((*loc, "path"), "path goes with `git`: {git: REF, path: PATH}")
        if "chart" in given:
            return self.chart_ref(origin, given["chart"], given.get("repo"), given.get("version"))
        if source.is_local:
            raise self.doc.error(
                loc, "the app's chart is a local folder, so `from` needs its own `chart`"
            )
        ref = ChartRef(source.chart, given.get("repo", source.repo), given.get("version"))
        if ref == source:
            raise self.doc.error(loc, "this is the app's own chart and version: nothing to upgrade")
        return self.chart_ref(origin, ref.chart, ref.repo, ref.version)

    def git_chart(self, loc: Loc, source: ChartRef, given: dict[str, str]) -> ChartRef:
        """``{git: REF, path: PATH}``; the ref and path are looked up when the upgrade run
        installs it, so that a suite loads (and runs without --upgrade) anywhere."""
        others = [key for key in given if key not in ("git", "path")]
        if others:
            raise self.doc.error(
                (*loc, others[0]), "`git` takes only `path` beside it: {git: REF, path: PATH}"
            )
        ref, path = str(given["git"]), given.get("path")
        if ref.startswith("-") or any(c.isspace() or c == "\x00" for c in ref):
            raise self.doc.error((*loc, "git"), f"not a git ref: {ref!r}")
        if path is None and not source.is_local:
            raise self.doc.error(
                loc, "the app's chart is not a local folder, so `git` needs `path` beside it"
            )
        if path is None and not Path(source.chart).is_dir():
            raise self.doc.error(
                loc, "the app's chart is a packaged .tgz, so `git` needs `path` beside it"
            )
        if path is not None:
            parts = PurePosixPath(path).parts
            if "\x00" in path or "\\" in path or path.startswith("/") or ".." in parts:
                raise self.doc.error(
                    (*loc, "path"),
                    "a path relative to the root of the git repository, with '/' and no '..'",
                )
            path = str(PurePosixPath(path))
        label = f"git:{ref}:{path}" if path else f"git:{ref}"
        return ChartRef(chart=label, git=GitChart(ref=ref, path=path, folder=self.folder.resolve()))

    def local_path(self, loc: Loc, text: str) -> Path:
        if "\x00" in text:
            raise self.doc.error(loc, "a path cannot contain a NUL character")
        candidate = self.folder / text
        try:
            return candidate.resolve()
        except (OSError, RuntimeError):  # a symlink loop: report the path as written
            return candidate.absolute()

    def values_file(self, loc: Loc, text: str) -> Path:
        where = self.local_path(loc, text)
        if not where.exists():
            raise self.doc.error(
                loc, f"values file not found: {where} (relative to the suite file)"
            )
        if not where.is_file():
            raise self.doc.error(loc, f"{where} is not a file")
        # Helm takes only a mapping (or nothing) as a values file; say so now, not at install.
        try:
            content = load_values_text(where.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise self.doc.error(loc, f"cannot read the values file {where}: {exc}") from exc
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            at = f"{where}:{mark.line + 1}" if mark else str(where)
            raise self.doc.error(
                loc, f"the values file is not valid YAML ({at}: {exc.problem})"
            ) from exc
        except yaml.YAMLError as exc:
            raise self.doc.error(loc, f"the values file {where} is not valid YAML: {exc}") from exc
        if content is not None and not isinstance(content, dict):
            raise self.doc.error(
                loc,
                f"the values file {where} holds {_kind_of(content)}, not a mapping of values "
                "(Helm refuses it)",
            )
        return where

    def set_values(self, loc: Loc, raw: dict[str, Any]) -> dict[str, Any]:
        """``set`` keys as Helm's --set parses them: dotted names with [N] indexes."""
        for key in raw:
            if not _SET_KEY.fullmatch(str(key)):
                raise self.doc.error(
                    (*loc, key) if loc else ("set", key),
                    "not a key Helm's --set can parse (names joined by '.', each with "
                    "optional [N] list indexes, e.g. image.tag or args[0]; escape a dot in a "
                    "name as \\.)",
                )
        return copy.deepcopy(raw)

    def owners(self, loc: Loc, raw: list[str]) -> tuple[str, ...]:
        """What the schema's pattern lets through at the end of a line (Python's ``$``
        matches before a final line break, as in ``- |`` block text)."""
        for index, owner in enumerate(raw):
            if owner != owner.strip():
                rule = _schema()["$defs"]["owners"]["items"]["errorMessage"]
                raise self.doc.error((*loc, index), f"{rule}; got {json.dumps(owner)}")
        return tuple(raw)

    def duration(self, loc: Loc, value: str | float) -> float:
        try:
            return suite_duration(value)
        except ValueError as exc:
            shown = _describe(value, self.doc.node(loc))
            raise self.doc.error(loc, f"{exc}; got {shown}") from exc

    def checks(self, loc: Loc, raw_checks: list[dict[str, Any]]) -> tuple[Check, ...]:
        checks: list[Check] = []
        first_index: dict[str, int] = {}
        pod_security: int | None = None  # the index of the app's podSecurity check
        for index, raw in enumerate(raw_checks):
            check_loc = (*loc, index)
            kind = next(key for key in raw if key in CHECK_KINDS)
            check = Check(
                kind=kind,
                spec=self.check_spec((*check_loc, kind), kind, copy.deepcopy(raw[kind]) or {}),
                name=raw.get("name"),
                timeout=self.duration((*check_loc, "timeout"), raw["timeout"])
                if "timeout" in raw
                else None,
                runbook=raw.get("runbook"),
                line=self.doc.line(check_loc) or 0,
                catch=self.steps((*check_loc, "catch"), raw.get("catch", ())),
                cleanup=self.steps((*check_loc, "finally"), raw.get("finally", ())),
                xfail=raw.get("xfail"),
            )
            if check.id in first_index:
                earlier = (*loc, first_index[check.id])
                raise self.doc.error(
                    check_loc,
                    f"{_dotted(earlier)} (line {self.doc.line(earlier)}) has the same id "
                    f"{check.id!r}; give one of them a `name`",
                )
            if kind == "podSecurity" and pod_security is not None:
                earlier = (*loc, pod_security)
                raise self.doc.error(
                    check_loc,
                    f"{_dotted(earlier)} (line {self.doc.line(earlier)}) is a podSecurity check "
                    "already: the app's namespace enforces one Pod Security level",
                )
            first_index[check.id] = index
            if kind == "podSecurity":
                pod_security = index
            checks.append(check)
        return tuple(checks)

    def steps(self, loc: Loc, raw_steps: list[dict[str, Any]]) -> tuple[Step, ...]:
        from harness.suite import scenario, templating

        steps = []
        for index, raw in enumerate(raw_steps):
            ((kind, spec),) = raw.items()
            for where, problem in templating.problems(spec, (*loc, index, kind)):
                raise self.doc.error(where, problem)
            if kind == "apply":  # as an apply check: its file read now
                try:
                    spec = scenario.prepare_apply(spec, self.folder)
                except scenario.Problem as exc:
                    raise self.doc.error((*loc, index, kind, *exc.loc), exc.message) from exc
            steps.append(Step(kind, copy.deepcopy(spec), self.doc.line((*loc, index)) or 0))
        return tuple(steps)

    def check_spec(self, loc: Loc, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """What the schema cannot say of apply, assert and error checks (:mod:`.scenario`)."""
        from harness.suite import scenario

        if kind not in scenario.KINDS:
            return spec
        try:
            return scenario.prepare(kind, spec, self.folder)
        except scenario.Problem as exc:
            raise self.doc.error((*loc, *exc.loc), exc.message) from exc

    def check_unique(self, apps: tuple[App, ...]) -> None:
        names: dict[str, int] = {}
        installs: dict[tuple[str, str], int] = {}
        for index, app in enumerate(apps):
            if app.name in names:
                raise self.doc.error(
                    ("apps", index, "name"),
                    f"apps[{names[app.name]}] (line {apps[names[app.name]].line}) "
                    f"already has the name {app.name!r}; app names are unique in a suite",
                )
            names[app.name] = index
            if app.namespace is None:
                continue
            install = (app.namespace, app.release)
            if install in installs:
                other = apps[installs[install]]
                field_name = "release" if "release" in self.origins[index] else "name"
                raise self.doc.error(
                    self.origins[index].get(field_name, ("apps", index, "name")),
                    f"apps[{installs[install]}] ({other.name}) and apps[{index}] ({app.name}) "
                    f"both install release {app.release!r} into namespace {app.namespace!r}",
                )
            installs[install] = index

    def check_depends_on(self, apps: tuple[App, ...]) -> None:
        by_name = {app.name: index for index, app in enumerate(apps)}
        for index, app in enumerate(apps):
            for position, dependency in enumerate(app.depends_on):
                if dependency not in by_name:
                    message = f"no app named {dependency!r} in this suite"
                    close = difflib.get_close_matches(dependency, list(by_name), n=1)
                    message += f" (did you mean {close[0]!r}?)" if close else ""
                    message += f"; its apps: {', '.join(by_name)}"
                    raise self.doc.error(self.depends_loc(index, position), message)
        cycle = find_cycle({app.name: app.depends_on for app in apps})
        if cycle:
            start = by_name[cycle[0]]
            position = apps[start].depends_on.index(cycle[1])
            message = (
                f"{cycle[0]} depends on itself"
                if len(cycle) == 2
                else f"dependsOn has a cycle: {' -> '.join(cycle)}"
            )
            raise self.doc.error(self.depends_loc(start, position), message)

    def depends_loc(self, index: int, position: int) -> Loc:
        return (*self.origins[index]["dependsOn"], position)


def _durations(data: Any) -> Iterator[tuple[Loc, Any]]:
    """Every value of a (schema-valid) suite document that the schema calls a duration,
    with where it sits: apps' and defaults' ``timeout``, checks' ``timeout``,
    ``wait.timeout``, and any the schema gains."""
    defs = _schema()["$defs"]
    duration_ref = "#/$defs/duration"

    def walk(schema: dict[str, Any], value: Any, loc: Loc) -> Iterator[tuple[Loc, Any]]:
        while "$ref" in schema:
            if schema["$ref"] == duration_ref:
                yield loc, value
                return
            schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
        if isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    yield from walk(sub, value[key], (*loc, key))
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                yield from walk(schema["items"], item, (*loc, index))

    yield from walk(_schema(), data, ())


def _merge(default: Any, own: Any) -> Any:
    """Helm's way: mappings merge key by key (recursively), anything else ``own`` replaces."""
    if not (isinstance(default, dict) and isinstance(own, dict)):
        return own
    merged = dict(default)
    for key, value in own.items():
        merged[key] = _merge(default[key], value) if key in default else value
    return merged
