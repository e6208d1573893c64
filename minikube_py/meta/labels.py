"""Label selectors: the string syntax of ``?labelSelector=`` and the structured forms.

The parser mirrors k8s.io/apimachinery/pkg/labels/selector.go token for token, because
kube-apiserver returns the parser's error text verbatim as a 400 BadRequest and kubectl
prints it (wrapped as ``Unable to find "/v1, Resource=pods" that match label selector
...``). Getting the same answer for the same malformed input matters more than elegance.

Three ways to build a ``LabelSelector``:

* ``parse_label_selector("app=web,tier in (a,b),!canary")`` for query strings;
* ``from_label_selector(spec["selector"])`` for metav1.LabelSelector
  (ReplicaSets, Deployments, Jobs...): ``None`` selects nothing, ``{}`` selects everything;
* ``selector_from_map(spec.get("selector"))`` for a Service's plain map, where an empty or
  missing map selects nothing (no endpoints are managed for it).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from minikube_py.meta.names import go_quote, is_label_value, is_qualified_name


class SelectorError(ValueError):
    """A selector kube-apiserver rejects; ``str(err)`` is upstream's exact message."""

    @property
    def message(self) -> str:
        return str(self)


class Operator(enum.StrEnum):
    """selection.Operator; the values are upstream's, they appear in error messages."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER_THAN = "gt"
    LESS_THAN = "lt"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_BINARY_OPERATORS = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EQUALS,
    Operator.DOUBLE_EQUALS,
    Operator.NOT_EQUALS,
    Operator.GREATER_THAN,
    Operator.LESS_THAN,
)
_INT64_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64): sign and ASCII digits only, in int64 range."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a selector: a key, an operator and (for most operators) values."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if self.key not in labels:
            return False
        if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            return self._compare(labels[self.key])
        return labels[self.key] in self.values

    def _compare(self, label_value: str) -> bool:
        have = _parse_int64(label_value)
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if self.operator is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An immutable AND of requirements; ``selects_nothing`` is labels.Nothing()."""

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(selects_nothing=True)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.selects_nothing:
            return False
        return all(requirement.matches(labels) for requirement in self.requirements)

    def is_empty(self) -> bool:
        """True when the selector restricts nothing (so a list can skip filtering)."""
        return not self.selects_nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have, if the selector pins it (for indexes)."""
        for requirement in self.requirements:
            if requirement.key != key:
                continue
            exact = (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
            if requirement.operator in exact and len(requirement.values) == 1:
                return requirement.values[0]
            return None
        return None

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


# --- requirement validation (labels.NewRequirement) -------------------------------------


def _go_string_slice(values: tuple[str, ...] | None) -> str:
    """Go's %#v of a []string, which field.Invalid prints for a bad value list."""
    if not values:
        return "[]string(nil)" if values is None else "[]string{}"
    return "[]string{" + ", ".join(go_quote(value) for value in values) + "}"


def _invalid(path: str, shown: str, detail: str) -> str:
    """field.Invalid(...).Error(): ``<path>: Invalid value: <value>: <detail>``."""
    return f"{path}: Invalid value: {shown}: {detail}"


def _aggregate(errors: list[str]) -> str:
    """utilerrors.Aggregate.Error(): one message alone, several deduplicated in [a, b]."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _count_errors(op: Operator, values: tuple[str, ...], shown: str) -> list[str]:
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        return [_invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")]
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        return [_invalid("values", shown, "exact-match compatibility requires one single value")]
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        detail = "values set must be empty for exists and does not exist"
        return [_invalid("values", shown, detail)]
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        return _integer_errors(values, shown)
    return []


def _integer_errors(values: tuple[str, ...], shown: str) -> list[str]:
    errs: list[str] = []
    if len(values) != 1:
        detail = "for 'Gt', 'Lt' operators, exactly one value is required"
        errs.append(_invalid("values", shown, detail))
    for index, value in enumerate(values):
        if _parse_int64(value) is None:
            detail = "for 'Gt', 'Lt' operators, the value must be an integer"
            errs.append(_invalid(f"values[{index}]", go_quote(value), detail))
    return errs


def _requirement_errors(key: str, op: Operator, values: tuple[str, ...], shown: str) -> list[str]:
    errs: list[str] = []
    if key_errs := is_qualified_name(key):
        errs.append(_invalid("key", go_quote(key), "; ".join(key_errs)))
    errs.extend(_count_errors(op, values, shown))
    for index, value in enumerate(values):
        if value_errs := is_label_value(value):
            errs.append(_invalid(f"values[{index}][{key}]", go_quote(value), "; ".join(value_errs)))
    return errs


def new_requirement(key: str, operator: Operator, values: Iterable[str] = ()) -> Requirement:
    """Build a validated requirement, raising the aggregate error NewRequirement returns."""
    given = tuple(values)
    errs = _requirement_errors(key, operator, given, _go_string_slice(given or None))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, operator, given)


def _sorted_selector(requirements: Iterable[Requirement]) -> LabelSelector:
    """Sort by key as upstream does, so String() and error order are deterministic."""
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# --- the lexer (labels.Lexer) ------------------------------------------------------------


class _Tok(enum.Enum):
    ERROR = enum.auto()
    END = enum.auto()
    CLOSE_PAR = enum.auto()
    COMMA = enum.auto()
    NOT = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    EQUALS = enum.auto()
    GREATER = enum.auto()
    IDENTIFIER = enum.auto()
    IN = enum.auto()
    LESS = enum.auto()
    NOT_EQUALS = enum.auto()
    NOT_IN = enum.auto()
    OPEN_PAR = enum.auto()


_LITERALS = {
    ")": _Tok.CLOSE_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.NOT,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER,
    "in": _Tok.IN,
    "<": _Tok.LESS,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
}
_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")
_EOF = "\x00"  # Go's lexer reads a 0 byte past the end; a literal NUL ends input too.

_Item = tuple[_Tok, str]


class _Lexer:
    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def _read(self) -> str:
        if self._pos < len(self._text):
            self._pos += 1
            return self._text[self._pos - 1]
        return _EOF

    def _unread(self) -> None:
        self._pos -= 1

    def lex(self) -> _Item:
        ch = self._read()
        while ch in _WHITESPACE:
            ch = self._read()
        if ch == _EOF:
            return _Tok.END, ""
        self._unread()
        return self._special() if ch in _SPECIAL else self._word()

    def _word(self) -> _Item:
        chars: list[str] = []
        while (ch := self._read()) != _EOF:
            if ch in _SPECIAL or ch in _WHITESPACE:
                self._unread()
                break
            chars.append(ch)
        word = "".join(chars)
        return _LITERALS.get(word, _Tok.IDENTIFIER), word

    def _special(self) -> _Item:
        """The longest run of symbols that is an operator: '!=' beats '!', '==' beats '='."""
        buffer = ""
        found: _Item | None = None
        while (ch := self._read()) != _EOF:
            if ch not in _SPECIAL:
                self._unread()
                break
            buffer += ch
            if buffer in _LITERALS:
                found = (_LITERALS[buffer], buffer)
            elif found is not None:
                self._unread()
                break
        return found or (_Tok.ERROR, f"error expected: keyword found '{buffer}'")


def _scan(text: str) -> list[_Item]:
    lexer = _Lexer(text)
    items = [lexer.lex()]
    while items[-1][0] is not _Tok.END:
        items.append(lexer.lex())
    return items


# --- the parser (labels.Parser) ----------------------------------------------------------


class _Unparsable(Exception):
    """A requirement-level failure; parse() prefixes "unable to parse requirement: "."""


_OPERATOR_TOKENS = {
    _Tok.IN: Operator.IN,
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.GREATER: Operator.GREATER_THAN,
    _Tok.LESS: Operator.LESS_THAN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
}
_STARTS_REQUIREMENT = (_Tok.IDENTIFIER, _Tok.NOT)


class _Parser:
    """Recursive descent over pre-scanned tokens, with one token of lookahead.

    'in' and 'notin' are keywords only where an operator is expected; anywhere else
    (keys, values) they are plain identifiers, so ``in in (in)`` is a valid selector.
    """

    def __init__(self, text: str) -> None:
        self._items = _scan(text)
        self._pos = 0

    def _peek(self, operator_context: bool = False) -> _Item:
        tok, literal = self._items[min(self._pos, len(self._items) - 1)]
        if not operator_context and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENTIFIER
        return tok, literal

    def _next(self, operator_context: bool = False) -> _Item:
        item = self._peek(operator_context)
        self._pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, literal = self._peek()
            if tok is _Tok.END:
                return requirements
            if tok not in _STARTS_REQUIREMENT:
                raise SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )
            requirements.append(self._checked_requirement())
            if self._after_requirement():
                return requirements

    def _checked_requirement(self) -> Requirement:
        try:
            return self._requirement()
        except _Unparsable as err:
            raise SelectorError(f"unable to parse requirement: {err}") from None

    def _after_requirement(self) -> bool:
        """Consume the separator; True at the end of input."""
        tok, literal = self._next()
        if tok is _Tok.END:
            return True
        if tok is not _Tok.COMMA:
            raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
        following, following_literal = self._peek()
        if following not in _STARTS_REQUIREMENT:
            raise SelectorError(f"found '{following_literal}', expected: identifier after ','")
        return False

    def _requirement(self) -> Requirement:
        key, operator = self._key_and_inferred_operator()
        if operator is None:
            operator = self._operator()
            set_based = operator in (Operator.IN, Operator.NOT_IN)
            values = self._value_set() if set_based else self._exact_value()
        else:
            values = set()
        ordered = tuple(sorted(values))
        errs = _requirement_errors(key, operator, ordered, _go_string_slice(ordered))
        if errs:
            raise _Unparsable(_aggregate(errs))
        return Requirement(key, operator, ordered)

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        operator: Operator | None = None
        tok, literal = self._next()
        if tok is _Tok.NOT:
            operator = Operator.DOES_NOT_EXIST
            tok, literal = self._next()
        if tok is not _Tok.IDENTIFIER:
            raise _Unparsable(f"found '{literal}', expected: identifier")
        if key_errs := is_qualified_name(literal):
            # The string parser validates the key with a nil field path, hence "<nil>".
            raise _Unparsable(_invalid("<nil>", go_quote(literal), "; ".join(key_errs)))
        if operator is None and self._peek()[0] in (_Tok.END, _Tok.COMMA):
            operator = Operator.EXISTS
        return literal, operator

    def _operator(self) -> Operator:
        tok, literal = self._next(operator_context=True)
        if tok not in _OPERATOR_TOKENS:
            expected = ", ".join(op.value for op in _BINARY_OPERATORS)
            raise _Unparsable(f"found '{literal}', expected: {expected}")
        return _OPERATOR_TOKENS[tok]

    def _value_set(self) -> set[str]:
        tok, literal = self._next()
        if tok is not _Tok.OPEN_PAR:
            raise _Unparsable(f"found '{literal}' expected: '('")
        tok, literal = self._peek()
        if tok is _Tok.CLOSE_PAR:  # "()" is the set holding the empty string
            self._next()
            return {""}
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise _Unparsable(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._next()[0] is not _Tok.CLOSE_PAR:
            raise _Unparsable(f"found '{literal}', expected: ')'")
        return values

    def _identifiers(self) -> set[str]:
        """Comma-separated, possibly empty values: "(a,,b)" and "(,a)" include ""."""
        values: set[str] = set()
        while True:
            tok, literal = self._next()
            if tok is _Tok.IDENTIFIER:
                values.add(literal)
                following, following_literal = self._peek()
                if following is _Tok.CLOSE_PAR:
                    return values
                if following is not _Tok.COMMA:
                    raise _Unparsable(f"found '{following_literal}', expected: ',' or ')'")
            elif tok is _Tok.COMMA:
                if not values or self._peek()[0] in (_Tok.CLOSE_PAR, _Tok.COMMA):
                    values.add("")
                if self._peek()[0] is _Tok.CLOSE_PAR:
                    return values
            else:
                raise _Unparsable(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._peek()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, literal = self._next()
        if tok is not _Tok.IDENTIFIER:
            raise _Unparsable(f"found '{literal}', expected: identifier")
        return {literal}


# --- public constructors -----------------------------------------------------------------


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` query string; an empty string selects everything."""
    return _sorted_selector(_Parser(text).parse())


_STRUCTURED_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def _as_text(value: Any) -> str:
    """A JSON null in a map[string]string decodes to "" in Go."""
    return "" if value is None else str(value)


def _expression_requirement(expression: Mapping[str, Any]) -> Requirement:
    name = str(expression.get("operator") or "")
    if name not in _STRUCTURED_OPERATORS:
        raise SelectorError(f"{go_quote(name)} is not a valid pod selector operator")
    values = [_as_text(value) for value in expression.get("values") or ()]
    return new_requirement(str(expression.get("key") or ""), _STRUCTURED_OPERATORS[name], values)


def from_label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, an empty one everything."""
    if selector is None:
        return LabelSelector.nothing()
    match_labels: Mapping[str, Any] = selector.get("matchLabels") or {}
    expressions: list[Mapping[str, Any]] = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return LabelSelector.everything()
    requirements = [
        new_requirement(key, Operator.EQUALS, [_as_text(match_labels[key])])
        for key in sorted(match_labels)
    ]
    requirements.extend(_expression_requirement(expression) for expression in expressions)
    return _sorted_selector(requirements)


def selector_from_map(selector: Mapping[str, str] | None) -> LabelSelector:
    """A Service's ``spec.selector``: missing or empty selects no pods.

    Upstream's endpoints controllers skip a Service whose selector is nil, and an empty
    map never survives a storage round trip (``omitempty``), so both mean "nothing".
    Values are not validated here; Service validation already did that.
    """
    if not selector:
        return LabelSelector.nothing()
    return _sorted_selector(
        Requirement(key, Operator.EQUALS, (value,)) for key, value in selector.items()
    )
