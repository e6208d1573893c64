"""Name, label and annotation validation: kube-apiserver 1.32's exact messages."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from minikube_py.meta import names

# The messages below are copied from upstream (apimachinery/pkg/util/validation), not
# built with the module's helpers, so a drift in wording fails here.
SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
TOO_MANY_SLASHES = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
    "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') "
    "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("example.com", []),
        ("a", []),
        ("0-a.b-1", []),
        ("a" * 253, []),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN]),
        ("", [SUBDOMAIN]),
        ("Foo", [SUBDOMAIN]),
        ("foo_bar", [SUBDOMAIN]),
        ("-foo", [SUBDOMAIN]),
        ("foo.", [SUBDOMAIN]),
        ("foo..bar", [SUBDOMAIN]),
        ("foo\n", [SUBDOMAIN]),
    ],
)
def test_dns1123_subdomain(value: str, errors: list[str]) -> None:
    assert names.is_dns1123_subdomain(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("my-name", []),
        ("123-abc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("a.b", ["must not contain dots"]),
        ("a" * 64 + ".b", ["must be no more than 63 characters", "must not contain dots"]),
        ("", [LABEL]),
        ("My-name", [LABEL]),
        ("name-", [LABEL]),
        ("é", [LABEL]),
    ],
)
def test_dns1123_label(value: str, errors: list[str]) -> None:
    assert names.is_dns1123_label(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("my-svc", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("1svc", [DNS1035]),
        ("svc.x", [DNS1035]),
        ("", [DNS1035]),
    ],
)
def test_dns1035_label(value: str, errors: list[str]) -> None:
    assert names.is_dns1035_label(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("app", []),
        ("App.Name_1", []),
        ("example.com/app", []),
        ("kubernetes.io/metadata.name", []),
        ("a" * 63, []),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("", ["name part must be non-empty", NAME_PART]),
        ("/app", ["prefix part must be non-empty"]),
        ("example.com/", ["name part must be non-empty", NAME_PART]),
        ("Example.com/app", ["prefix part " + SUBDOMAIN]),
        ("app:monolith", [NAME_PART]),
        ("-app", [NAME_PART]),
        ("a/b/c", [TOO_MANY_SLASHES]),
    ],
)
def test_qualified_name(value: str, errors: list[str]) -> None:
    assert names.is_qualified_name(value) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", []),
        ("v1.0_rc-1", []),
        ("A" * 63, []),
        ("A" * 64, ["must be no more than 63 characters"]),
        ("-1", [LABEL_VALUE]),
        ("a b", [LABEL_VALUE]),
        ("a/b", [LABEL_VALUE]),
        ("é" * 32, ["must be no more than 63 characters", LABEL_VALUE]),  # 64 UTF-8 bytes
    ],
)
def test_label_value(value: str, errors: list[str]) -> None:
    assert names.is_label_value(value) == errors


@pytest.mark.parametrize(
    ("check", "name", "prefix", "errors"),
    [
        (names.name_is_dns_subdomain, "web-", True, []),
        (names.name_is_dns_subdomain, "web-", False, [SUBDOMAIN]),
        (names.name_is_dns_subdomain, "Web-", True, [SUBDOMAIN]),
        # Upstream masks the trailing dash by dropping two characters: "a.-" becomes "aa".
        (names.name_is_dns_subdomain, "a.-", True, []),
        (names.name_is_dns_label, "ns-", True, []),
        (names.name_is_dns_label, "my.ns-", True, ["must not contain dots"]),
        (names.name_is_dns1035_label, "svc-", True, []),
        (names.name_is_dns1035_label, "1svc-", True, [DNS1035]),
        (names.name_is_dns1035_label, "-", True, [DNS1035]),
    ],
)
def test_name_rules_with_generate_name_prefix(
    check: Callable[[str, bool], list[str]], name: str, prefix: bool, errors: list[str]
) -> None:
    assert check(name, prefix) == errors


@pytest.mark.parametrize(
    ("annotations", "errors"),
    [
        ({}, []),
        ({"a": "x" * (262144 - 1)}, []),
        ({"a": "x" * 262144}, ["may not be more than 262144 bytes"]),
        ({"k" * 131072: "v" * 131073}, ["may not be more than 262144 bytes"]),
    ],
)
def test_annotations_total_size(annotations: dict[str, str], errors: list[str]) -> None:
    assert names.annotations_size_errors(annotations) == errors


@pytest.mark.parametrize(
    ("key", "errors"),
    [
        ("Example.COM/Owner", []),  # case is ignored for annotation keys
        ("kubectl.kubernetes.io/last-applied-configuration", []),
        ("a/b/c", [TOO_MANY_SLASHES]),
    ],
)
def test_annotation_keys(key: str, errors: list[str]) -> None:
    assert names.annotation_key_errors(key) == errors


@pytest.mark.parametrize(
    ("base", "kept"),
    [
        ("web-", "web-"),
        ("", ""),
        ("x" * 58, "x" * 58),
        ("x" * 70, "x" * 58),
    ],
)
def test_generate_name_keeps_base_and_appends_five_safe_characters(base: str, kept: str) -> None:
    name = names.generate_name(base, random.Random(7))
    assert name.startswith(kept)
    suffix = name[len(kept) :]
    assert len(suffix) == 5
    assert set(suffix) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert len(name) <= 63


def test_generate_name_is_reproducible_with_a_seeded_rng() -> None:
    first = names.generate_name("job-", random.Random(42))
    assert first == names.generate_name("job-", random.Random(42))
    assert names.is_dns1123_label(first) == []


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("a", '"a"'),
        ("", '""'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("tab\tnl\n", '"tab\\tnl\\n"'),
        ("\x00\x7f", '"\\x00\\x7f"'),
        ("é", '"é"'),
        ("\u00a0", '"\\u00a0"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert names.go_quote(value) == quoted


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ((), "bad (regex used for validation is 'x')"),
        (("a",), "bad (e.g. 'a', regex used for validation is 'x')"),
        (("a", "b"), "bad (e.g. 'a',  or 'b', regex used for validation is 'x')"),
    ],
)
def test_regex_error_keeps_upstream_spacing(examples: tuple[str, ...], message: str) -> None:
    assert names.regex_error("bad", "x", *examples) == message
