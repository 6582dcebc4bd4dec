from __future__ import annotations

import pytest

from harness.checks.wait import parse_for
from harness.errors import UsageError
from harness.kube import jsonpath

POD = {
    "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "web"}},
    "spec": {"replicas": 2},
    "status": {
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Initialized", "status": "False"},
        ],
        "containerStatuses": [{"name": "a", "ready": True}, {"name": "b", "ready": False}],
    },
}


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("{.status.phase}", ["Running"]),
        ("{.spec.replicas}", [2]),
        ('{.status.conditions[?(@.type=="Ready")].status}', ["True"]),
        ("{.status.conditions[?(@.type!='Ready')].type}", ["Initialized"]),
        ("{.status.containerStatuses[*].ready}", [True, False]),
        ("{.status.containerStatuses[-1].name}", ["b"]),
        ("{.metadata.labels['app.kubernetes.io/name']}", ["web"]),
        ("{.status.nothing}", []),
        # kubectl spellings the library writes differently
        ("{.metadata.'labels'.\"app.kubernetes.io/name\"}", ["web"]),
        (".status.phase", ["Running"]),
        ("{$.status.phase}", ["Running"]),
        ("{ .status.phase }", ["Running"]),
        ("{.status.conditions[?(@.type==Ready)].status}", ["True"]),
        ("{.status.conditions[?(@.type == 'Ready')].status}", ["True"]),
        # == and != compare a number or boolean with a string by its printed text
        ("{.status.containerStatuses[?(@.ready==true)].name}", ["a"]),
        ('{.status.containerStatuses[?(@.ready=="false")].name}', ["b"]),
        ("{.status.containerStatuses[?(@.ready!=true)].name}", ["b"]),
        ("{.status.conditions[?(@.status==True)].type}", ["Ready"]),
        ("{.status.containerStatuses[?(@.ready==True)].name}", []),
        ('{.spec[?(@=="2")]}', [2]),
        # a missing key is unequal to anything
        ("{.status.conditions[?(@.reason!='x')].type}", ["Ready", "Initialized"]),
        ("{.status.conditions[?(@.reason=='x')].type}", []),
        # quoted keys keep dots (and '..') as they are
        ("{.metadata.labels['app..name']}", []),
        ('{.metadata.labels["app.kubernetes.io/name"]}', ["web"]),
        # what the library adds: slices, &&, ordering
        ("{.status.conditions[0:1].type}", ["Ready"]),
        ('{.status.conditions[?(@.type=="Ready" && @.status=="True")].type}', ["Ready"]),
        ("{.spec[?(@ > 1)]}", [2]),
    ],
)
def test_evaluate(path: str, values: list[object]) -> None:
    assert jsonpath.evaluate(jsonpath.parse(path), POD) == values


@pytest.mark.parametrize("path", ["{}", "{.a[}", "{.a..b}", "{range .items[*]}"])
def test_unsupported_paths_are_usage_errors(path: str) -> None:
    with pytest.raises(UsageError):
        jsonpath.parse(path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("{}", "empty JSONPath"),
        ("{$}", "empty JSONPath"),
        ("{..name}", "recursive descent"),
        ("{.status..name}", "recursive descent"),
        ("{range .items[*]}{.name}{end}", "templates such as range"),
        ("status.phase", "starts with '.' or '['"),
        ("{.status.phase", "unbalanced braces"),
        ("{.a[}", "unexpected end of query"),
        ("{.a[?(@.b==x(y))]}", "unexpected 'x'"),
    ],
)
def test_bad_paths_say_why_and_show_one_that_works(path: str, reason: str) -> None:
    with pytest.raises(UsageError, match="JSONPath") as info:
        jsonpath.parse(path)
    assert reason in str(info.value)
    assert "{.status.phase}" in str(info.value)


@pytest.mark.parametrize(
    ("expression", "objects", "holds"),
    [
        ("condition=Ready", [POD], True),
        ("condition=Initialized", [POD], False),
        ("condition=Initialized=false", [POD], True),
        ("jsonpath={.status.phase}=Running", [POD], True),
        ("jsonpath={.status.phase}=Pending", [POD], False),
        ("jsonpath={.status.phase}", [POD], True),
        ("create", [POD], True),
        ("create", [], False),
        ("delete", [], True),
        ("delete", [POD], False),
        ("condition=Ready", [], False),
    ],
)
def test_kubectl_wait_grammar(expression: str, objects: list[dict], holds: bool) -> None:
    assert parse_for(expression).test(objects) is holds


@pytest.mark.parametrize(
    "expression", ["ready", "condition=", "jsonpath=.status.phase=x", "jsonpath={.a}x"]
)
def test_bad_for_expressions_say_what_is_accepted(expression: str) -> None:
    with pytest.raises(UsageError, match="wait.for"):
        parse_for(expression)
