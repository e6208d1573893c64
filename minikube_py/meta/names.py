"""Object names, label keys and values, annotations and generated names, as kube judges them.

Every ``is_*`` / ``name_is_*`` function returns the list of detail strings that
kube-apiserver 1.32 produces for the value (empty when valid). The API server puts each
string into a 422 Invalid cause as ``field.Invalid(path, value, detail)``, so the text
must match upstream exactly: clients and people grep for it. The wording, the regexes
and even the double space in ``'MyName',  or 'my.name'`` come from
``k8s.io/apimachinery/pkg/util/validation/validation.go``.

Lengths are counted in UTF-8 bytes, as Go's ``len`` does, so a non-ASCII value gets the
same "too long" verdict as upstream.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT_B = 256 * 1024

EMPTY_ERROR = "must be non-empty"

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_ERR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)

# fullmatch, never ``$``: Python's ``$`` also matches before a trailing newline, Go's does not.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)

# k8s.io/apiserver/pkg/storage/names.SimpleNameGenerator and util/rand: the alphabet
# leaves out vowels and look-alike digits so generated suffixes never spell words.
GENERATED_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_NAME_RANDOM_LENGTH = 5
MAX_GENERATED_NAME_LENGTH = 63 - GENERATED_NAME_RANDOM_LENGTH
_RNG = random.SystemRandom()


def max_len_error(length: int) -> str:
    """The "string too long" detail used by every name check."""
    return f"must be no more than {length} characters"


def too_long_error(limit: int) -> str:
    """The detail of a FieldValueTooLong error (field.TooLong in 1.32)."""
    unit = "byte" if limit == 1 else "bytes"
    return f"may not be more than {limit} {unit}"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Explain a regex failure the way upstream does, odd double spaces included."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    quoted = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {quoted}regex used for validation is '{fmt}')"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def is_dns1123_label(value: str) -> list[str]:
    """RFC 1123 label (namespaces, container and port names): at most 63, no dots."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain that is not a label: the length was checked, so it is dots.
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_ERR, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    """RFC 1123 subdomain, the rule for most object names: at most 253, dots allowed."""
    errs: list[str] = []
    if _byte_len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """RFC 1035 label (Service names): like a 1123 label but must start with a letter."""
    errs: list[str] = []
    if _byte_len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _name_part_errors(name: str) -> list[str]:
    errs: list[str] = []
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif _byte_len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        examples = ("MyName", "my.name", "123-abc")
        errs.append("name part " + regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, *examples))
    return errs


def _prefix_part_errors(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part " + EMPTY_ERROR]
    return ["prefix part " + msg for msg in is_dns1123_subdomain(prefix)]


def is_qualified_name(value: str) -> list[str]:
    """A qualified name ``[prefix/]name``: label keys, finalizers, annotation keys."""
    parts = value.split("/")
    if len(parts) > 2:
        examples = ("MyName", "my.name", "123-abc")
        msg = regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, *examples)
        return [
            f"a qualified name {msg} with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    errs = _prefix_part_errors(parts[0]) if len(parts) == 2 else []
    return errs + _name_part_errors(parts[-1])


def is_label_value(value: str) -> list[str]:
    """A label value: empty, or a qualified-name-like string of at most 63."""
    errs: list[str] = []
    if _byte_len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        examples = ("MyValue", "my_value", "12345")
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, *examples))
    return errs


def _mask_trailing_dash(name: str) -> str:
    """Let a generateName end in '-' (the suffix follows it), as upstream does.

    Upstream drops the last *two* characters before appending 'a'; we keep that quirk so
    a prefix fails or passes exactly as it would in kube.
    """
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    """Name rule for most kinds; ``prefix`` is True when checking a generateName."""
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    """Name rule for namespaces (and other DNS-label names)."""
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    """Name rule for Services."""
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def annotation_key_errors(key: str) -> list[str]:
    """Annotation keys are qualified names, except that case does not matter."""
    return is_qualified_name(key.lower())


def annotations_size(annotations: Mapping[str, str]) -> int:
    """Total bytes of keys and values, the quantity kube caps at 256 KiB."""
    return sum(_byte_len(key) + _byte_len(value) for key, value in annotations.items())


def annotations_size_errors(annotations: Mapping[str, str]) -> list[str]:
    """The 256 KiB cap on all annotations together.

    Unlike the other checks this is a FieldValueTooLong at ``metadata.annotations``
    (message ``metadata.annotations: Too long: may not be more than 262144 bytes``),
    not a FieldValueInvalid, and it names no value.
    """
    if annotations_size(annotations) > TOTAL_ANNOTATION_SIZE_LIMIT_B:
        return [too_long_error(TOTAL_ANNOTATION_SIZE_LIMIT_B)]
    return []


def generate_name(base: str, rng: random.Random | None = None) -> str:
    """Turn ``metadata.generateName`` into a name, as SimpleNameGenerator does.

    The base is cut to 58 characters so that base plus the 5 random characters fits a
    63-character DNS label. Pass ``rng`` for reproducible names in tests.
    """
    chooser = rng or _RNG
    suffix = "".join(
        chooser.choice(GENERATED_NAME_ALPHABET) for _ in range(GENERATED_NAME_RANDOM_LENGTH)
    )
    return base[:MAX_GENERATED_NAME_LENGTH] + suffix


def go_quote(value: str) -> str:
    """Quote a string like Go's ``%q`` (strconv.Quote), which kube uses in messages."""
    return '"' + "".join(_go_quote_char(ch) for ch in value) + '"'


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _go_quote_char(ch: str) -> str:
    if ch in _GO_ESCAPES:
        return _GO_ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
