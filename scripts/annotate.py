#!/usr/bin/env python3
"""Turn the failures in a helm-harness ``junit.xml`` into GitHub Actions annotations.

    python scripts/annotate.py [harness-report/junit.xml] [--max 10]

Prints one ``::error file=...,line=...,title=...::message`` line per failed or erroring
testcase (GitHub shows them on the pull request, at the suite file and the line of the
app), at most ``--max`` of them (GitHub shows ten per step) and then a ``::notice::`` saying
how many more there are. The message is the failure's text, cut to its first lines, with the
runbook when the testcase has one. A missing or unreadable file is a ``::warning::``. Always
exits 0: the test step has already failed the job. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MESSAGE_LINES = 12


@dataclass(frozen=True)
class Annotation:
    file: str | None
    line: int | None
    title: str
    message: str

    def command(self) -> str:
        props = []
        if self.file:
            props.append(f"file={_escape_property(self.file)}")
        if self.file and self.line:
            props.append(f"line={self.line}")
        props.append(f"title={_escape_property(self.title)}")
        return f"::error {','.join(props)}::{_escape_data(self.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def failures(junit: Path, root: Path) -> Iterator[Annotation]:
    """An annotation for each testcase of ``junit`` with a ``<failure>`` or ``<error>``."""
    for case in ET.parse(junit).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            continue
        props = {
            prop.get("name", ""): prop.get("value", "")
            for prop in case.iterfind("properties/property")
        }
        headline = (problem.get("message") or "").strip()
        body = (problem.text or "").strip()
        file = _relative(case.get("file"), root)
        app = props.get("app")
        if file and app:
            line = _app_line(root / file, app)
        elif file:
            line = _pytest_line(case.get("line"))
        else:  # pytest's default junit (xunit2) has no file: its traceback's last place does
            file, line = _traceback_place(body)
        title = _title(case, props, problem.tag)
        # the harness's text starts with its message and says more; pytest's starts with code
        text = body if body.startswith(headline.split("\n", 1)[0]) else headline
        lines = text.splitlines()
        message = "\n".join(lines[:MESSAGE_LINES])
        if len(lines) > MESSAGE_LINES:
            message += f"\n... ({len(lines) - MESSAGE_LINES} more lines in the report)"
        runbook = props.get("runbook")
        if runbook and runbook not in message:
            message += f"\nrunbook: {runbook}"
        yield Annotation(file=file, line=line, title=title, message=message or title)


def _title(case: ET.Element, props: dict[str, str], tag: str) -> str:
    name = case.get("name", "?")
    if props.get("app"):
        suite = props.get("suite", "")
        what = f"{suite}::{props['app']}::{name}" if suite else f"{props['app']}::{name}"
    else:
        what = f"{case.get('classname', '')}.{name}".lstrip(".")
    return f"{what} {'failed' if tag == 'failure' else 'errored'}"


def _relative(file: str | None, root: Path) -> str | None:
    if not file:
        return None
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            return file
    return path.as_posix()


def _app_line(suite_file: Path, app: str) -> int | None:
    """The line of ``- name: APP`` in the suite file (where the app starts), if found."""
    pattern = re.compile(rf"^\s*(-\s*)?name:\s*['\"]?{re.escape(app)}['\"]?\s*(#.*)?$")
    try:
        text = suite_file.read_text(errors="replace")
    except OSError:
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return number
    return None


def _traceback_place(text: str) -> tuple[str | None, int | None]:
    """The last ``path.py:LINE: ...`` of a pytest traceback."""
    places = re.findall(r"^(\S+\.py):(\d+): ", text, re.M)
    return (places[-1][0], int(places[-1][1])) if places else (None, None)


def _pytest_line(value: str | None) -> int | None:
    """pytest's own junitxml gives 0-based ``line`` attributes."""
    return int(value) + 1 if value and value.isdigit() else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("junit", nargs="?", default="harness-report/junit.xml", type=Path)
    parser.add_argument("--max", type=int, default=10, help="annotations to print (default 10)")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    try:
        found = list(failures(args.junit, root))
    except (OSError, ET.ParseError) as exc:
        print(f"::warning title=no test report::cannot read {args.junit}: {_escape_data(str(exc))}")
        return 0
    for annotation in found[: args.max]:
        print(annotation.command())
    if len(found) > args.max:
        more = len(found) - args.max
        print(f"::notice title=more failures::{more} more failed items: see the report artifact")
    if not found:
        print(f"no failures in {args.junit}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
