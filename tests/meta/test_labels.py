"""Label selectors: parsing, matching, structured selectors, and upstream's messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from minikube_py.meta.labels import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    from_label_selector,
    new_requirement,
    parse_label_selector,
    selector_from_map,
)

NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
OPERATORS = "in, notin, =, ==, !=, gt, lt"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a", "a"),
        ("!a", "!a"),
        ("a>1", "a>1"),
        ("a<10", "a<10"),
        ("a=", "a="),
        ("a!=,b", "a!=,b"),
        ("x in (b,a)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("x in ()", "x in ()"),
        ("x in (a,)", "x in (,a)"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("in in (in),notin notin (notin)", "in in (in),notin notin (notin)"),
        ("a=in", "a=in"),
        ("z=1,a=2,m", "a=2,m,z=1"),
        (" a = b ,\tc\n,\r!d ", "a=b,c,!d"),
        ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
    ],
)
def test_parse_and_print(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Messages seen from real clusters (kubectl output, upstream tests).
        (
            "component not in (kube-apiserver)",
            f"unable to parse requirement: found 'not', expected: {OPERATORS}",
        ),
        (
            "type=app,versionv1.0.1)",
            f"unable to parse requirement: found ')', expected: {OPERATORS}",
        ),
        ("env IN (a)", f"unable to parse requirement: found 'IN', expected: {OPERATORS}"),
        ("e!!!!!ss", f"unable to parse requirement: found '!', expected: {OPERATORS}"),
        ("x (", f"unable to parse requirement: found '(', expected: {OPERATORS}"),
        (
            "app:monolith",
            f'unable to parse requirement: <nil>: Invalid value: "app:monolith": {NAME_PART}',
        ),
        (
            "a/b/c ?=? def",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "app.kubernetes_io/name=x",
            'unable to parse requirement: <nil>: Invalid value: "app.kubernetes_io/name": '
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        # Straight from the parser's branches.
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        (
            "a=b@c",
            f'unable to parse requirement: values[0][a]: Invalid value: "b@c": {LABEL_VALUE}',
        ),
        (
            "a in (ok,-bad)",
            f'unable to parse requirement: values[0][a]: Invalid value: "-bad": {LABEL_VALUE}',
        ),
        (
            "a>-1",
            f'unable to parse requirement: values[0][a]: Invalid value: "-1": {LABEL_VALUE}',
        ),
        (
            "a>x",
            'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a<",
            'unable to parse requirement: values[0]: Invalid value: "": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a>99999999999999999999",
            'unable to parse requirement: values[0]: Invalid value: "99999999999999999999": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a>" + "x" * 64,
            f'unable to parse requirement: [values[0]: Invalid value: "{"x" * 64}": '
            "for 'Gt', 'Lt' operators, the value must be an integer, "
            f'values[0][a]: Invalid value: "{"x" * 64}": must be no more than 63 characters]',
        ),
    ],
)
def test_parse_errors_carry_upstream_messages(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    assert str(caught.value) == message
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b"}, True),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x)", {}, True),
        ("a notin (x)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a>1", {"a": "2"}, True),
        ("a>1", {"a": "1"}, False),
        ("a>1", {"a": "x"}, False),
        ("a>1", {}, False),
        ("a<10", {"a": "-5"}, True),
        ("a<10", {"a": "+9"}, True),
        ("a<10", {"a": "1_0"}, False),
        ("a<10", {"a": " 9"}, False),
        ("a=b,c", {"a": "b", "c": "x"}, True),
        ("a=b,c", {"a": "b"}, False),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_selectors_are_immutable_and_hashable() -> None:
    selector = parse_label_selector("a=b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        selector.selects_nothing = True  # type: ignore[misc]
    assert hash(selector) == hash(parse_label_selector("a = b"))
    assert selector == parse_label_selector("a = b")


@pytest.mark.parametrize(
    ("selector", "canonical", "matching", "not_matching"),
    [
        (None, "", None, {"a": "b"}),
        ({}, "", {}, None),
        ({"matchLabels": {}, "matchExpressions": []}, "", {"x": "y"}, None),
        ({"matchLabels": {"app": "web"}}, "app=web", {"app": "web", "x": "y"}, {"app": "db"}),
        (
            {
                "matchLabels": {"tier": "fe", "app": "web"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "team", "operator": "Exists"},
                    {"key": "zone", "operator": "NotIn", "values": ["b"]},
                ],
            },
            "app=web,!canary,env in (dev,prod),team,tier=fe,zone notin (b)",
            {"app": "web", "tier": "fe", "env": "dev", "team": "x"},
            {"app": "web", "tier": "fe", "env": "dev", "team": "x", "canary": "1"},
        ),
    ],
)
def test_from_label_selector(
    selector: dict[str, Any] | None,
    canonical: str,
    matching: dict[str, str] | None,
    not_matching: dict[str, str] | None,
) -> None:
    parsed = from_label_selector(selector)
    assert str(parsed) == canonical
    if matching is not None:
        assert parsed.matches(matching)
    if not_matching is not None:
        assert not parsed.matches(not_matching)


def test_nil_and_empty_label_selectors_differ() -> None:
    assert from_label_selector(None) == LabelSelector.nothing()
    assert not from_label_selector(None).matches({})
    assert from_label_selector({}) == LabelSelector.everything()
    assert from_label_selector({}).is_empty()
    assert not from_label_selector(None).is_empty()


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid pod selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): "
            "for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x", "y"]}]},
            'values: Invalid value: []string{"x", "y"}: '
            "values set must be empty for exists and does not exist",
        ),
        (
            {"matchLabels": {"app:x": "web"}},
            f'key: Invalid value: "app:x": {NAME_PART}',
        ),
        (
            {"matchLabels": {"app": "a b"}},
            f'values[0][app]: Invalid value: "a b": {LABEL_VALUE}',
        ),
        (
            {"matchExpressions": [{"key": "-k", "operator": "NotIn", "values": []}]},
            f'[key: Invalid value: "-k": {NAME_PART}, values: Invalid value: []string(nil): '
            "for 'in', 'notin' operators, values set can't be empty]",
        ),
    ],
)
def test_structured_selector_errors(selector: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        from_label_selector(selector)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {"app": "web"}, False),
        ({}, {"app": "web"}, False),
        ({}, {}, False),
        ({"app": "web"}, {"app": "web", "pod-template-hash": "1"}, True),
        ({"app": "web", "tier": "fe"}, {"app": "web"}, False),
    ],
)
def test_service_selector_from_map(
    selector: dict[str, str] | None, labels: dict[str, str], expected: bool
) -> None:
    assert selector_from_map(selector).matches(labels) is expected


def test_service_selector_prints_sorted() -> None:
    assert str(selector_from_map({"tier": "fe", "app": "web"})) == "app=web,tier=fe"


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("app=web", "app", "web"),
        ("app==web,x", "app", "web"),
        ("app in (web)", "app", "web"),
        ("app in (web,db)", "app", None),
        ("app!=web", "app", None),
        ("x=y", "app", None),
    ],
)
def test_requires_exact_match(text: str, key: str, value: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(key) == value


def test_new_requirement_accepts_valid_input() -> None:
    requirement = new_requirement("app", Operator.IN, ["web", "db"])
    assert requirement == Requirement("app", Operator.IN, ("web", "db"))
    assert str(requirement) == "app in (db,web)"
