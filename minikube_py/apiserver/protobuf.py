"""Decode Kubernetes protobuf request bodies into the dicts the JSON path produces.

kubectl's typed clients (``kubectl create configmap|secret|deployment|...``, ``autoscale``,
``auth can-i``, ``create token``) send ``Content-Type: application/vnd.kubernetes.protobuf``.
Everything downstream of the handlers works on JSON-shaped dicts, so this module turns such a body
into exactly the dict Go's ``encoding/json`` would have produced for the same object: then a
protobuf create and a JSON create of one object store the same thing.

Go's protobuf encoder writes every non-pointer field, zero or not (``generateName: ""``,
``generation: 0``), so "present on the wire" is not "set by the user". The decoder therefore
rebuilds the Go value (absent fields are Go zero values, absent pointers are nil) and renders it
with Go's rules: ``omitempty`` drops zero scalars and empty lists/maps, never structs; nil pointers
and slices without ``omitempty`` are ``null``. That is why a decoded object carries
``"creationTimestamp": null`` and ``"status": {}`` exactly like kubectl's JSON bodies do.

Only decoding: responses stay JSON (client-go reads the response Content-Type).

Hostile input: every length is checked (``protobuf_wire``), nesting is bounded by the schema and
by ``MAX_DEPTH``, unknown fields are skipped without being parsed, and ``MAX_VALUES`` bounds the
fields read plus values produced, because a two-byte empty message can expand to a dozen JSON
values: the worst 3 MiB body then costs a few seconds of CPU and ~200 MB, linear, never more.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from minikube_py.apiserver.protobuf_schema import KINDS, MESSAGES
from minikube_py.apiserver.protobuf_wire import (
    LENGTH,
    VARINT,
    Field,
    ProtobufError,
    as_int32,
    as_int64,
    iter_fields,
    packed_varints,
)
from minikube_py.meta.durations import go_duration

__all__ = ["MAGIC", "MEDIA_TYPE", "ProtobufError", "UnsupportedKindError", "decode"]

MAGIC: Final = b"k8s\x00"
MEDIA_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAX_DEPTH: Final = 64
MAX_VALUES: Final = 1_000_000
MAX_UNKNOWN: Final = 100

_OMIT: Final = object()
_MAP: Final = "map[string]"
_NUMERIC: Final = {"bool", "int32", "int64"}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_GO_ZERO_TIME: Final = -62135596800  # time.Time{}.Unix(): year 1, which Go renders as null

Span = tuple[int, int]


class UnsupportedKindError(ProtobufError):
    """Well-formed envelope, but a kind we have no table for (the server may answer 415)."""


def decode(body: bytes) -> tuple[dict[str, Any], list[str]]:
    """Decode one ``k8s\\0``-prefixed ``runtime.Unknown`` envelope into a JSON-shaped object.

    Returns the object (``kind`` and ``apiVersion`` set from the envelope) and the paths of
    fields the schema does not know, e.g. ``spec.template.spec.containers[0].#99``: they are
    skipped, as the real API server's protobuf decoder does, and reported so the caller can
    warn or refuse. At most ``MAX_UNKNOWN`` paths are kept.
    """
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf prefix k8s\\0")
    api_version, kind, raw = _envelope(body)
    decoder = _Decoder(body)
    fields = decoder.message(_message_for(api_version, kind), [raw], "", 0)
    return {"kind": kind, "apiVersion": api_version, **fields}, decoder.unknown


def _envelope(body: bytes) -> tuple[str, str, Span]:
    """Read ``runtime.Unknown``: typeMeta (1), raw (2), contentEncoding (3), contentType (4)."""
    api_version = kind = encoding = content_type = ""
    raw: Span = (len(body), len(body))
    for field in iter_fields(body, len(MAGIC), len(body)):
        if field.number == 1:
            for meta in iter_fields(body, *_span(field, "typeMeta")):
                if meta.number == 1:
                    api_version = _text(body, meta, "typeMeta.apiVersion")
                elif meta.number == 2:
                    kind = _text(body, meta, "typeMeta.kind")
        elif field.number == 2:
            raw = _span(field, "raw")
        elif field.number == 3:
            encoding = _text(body, field, "contentEncoding")
        elif field.number == 4:
            content_type = _text(body, field, "contentType")
    if encoding:
        raise ProtobufError(f"unsupported content encoding {encoding!r}")
    if content_type not in ("", MEDIA_TYPE):
        raise ProtobufError(f"unsupported embedded content type {content_type!r}")
    return api_version, kind, raw


def _message_for(api_version: str, kind: str) -> str:
    """The table name for (apiVersion, kind); DeleteOptions exists in every group version."""
    if not api_version or not kind:
        raise UnsupportedKindError("the protobuf envelope does not name an apiVersion and kind")
    if kind == "DeleteOptions":
        return "meta.v1.DeleteOptions"
    package, kinds = KINDS.get(api_version, ("", ()))
    if kind not in kinds:
        raise UnsupportedKindError(f"no protobuf decoding for {kind} in {api_version}")
    return f"{package}.{kind}"


class _Decoder:
    """One decoding pass over one body: the buffer, the unknown-field list and the budget."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.unknown: list[str] = []
        self._budget = MAX_VALUES

    def message(self, name: str, spans: list[Span], path: str, depth: int) -> dict[str, Any]:
        """Render a message from all its occurrences (protobuf merges repeats by concatenation)."""
        if depth > MAX_DEPTH:
            raise ProtobufError(f"{path or 'object'}: nesting deeper than {MAX_DEPTH}")
        table = MESSAGES[name]
        found: dict[int, list[Field]] = {}
        for start, end in spans:
            for field in iter_fields(self.data, start, end):
                self._spend(1)
                if field.number in table:
                    found.setdefault(field.number, []).append(field)
                else:
                    self._unknown(_join(path, f"#{field.number}"))
        out: dict[str, Any] = {}
        for number, (json_name, type_, flags) in table.items():
            inline = "i" in flags
            occurrences = found.get(number)
            if occurrences is None:
                value = self._absent(type_, flags, depth)
            else:
                child = path if inline else _join(path, json_name)
                value = self._field(occurrences, type_, flags, child, depth)
            if inline:
                out.update(value)
            elif value is not _OMIT:
                out[json_name] = value
        self._spend(1 + len(out))
        return out

    def _absent(self, type_: str, flags: str, depth: int) -> Any:
        """A field not on the wire: nil, or the Go zero value (a zero struct is rendered)."""
        if type_ in MESSAGES and "*" not in flags:
            return self.message(type_, [], "", depth + 1)
        key = (type_, flags)
        if key not in _ABSENT:
            _ABSENT[key] = self._field([], type_, flags, "", depth)
        return _ABSENT[key]

    def _field(self, found: list[Field], type_: str, flags: str, path: str, depth: int) -> Any:
        """Apply Go's nil/zero and omitempty rules to one field of a message."""
        omitempty = "o" in flags
        if type_.startswith("[]") or type_.startswith(_MAP):
            items = self._container(found, type_, path, depth)
            return items if items else (_OMIT if omitempty else None)
        if "*" in flags or type_ == "bytes":
            if not found:  # a nil pointer or a nil []byte
                return _OMIT if omitempty else None
            value = self.value(found, type_, path, depth)
            empty_bytes = type_ == "bytes" and value == ""  # present but empty: len 0 all the same
            return _OMIT if omitempty and empty_bytes else value
        value = self.value(found, type_, path, depth)
        if omitempty and type_ in _ZERO and value == _ZERO[type_]:
            return _OMIT
        return value

    def _container(self, found: list[Field], type_: str, path: str, depth: int) -> Any:
        if type_.startswith(_MAP):
            return self._map(found, type_[len(_MAP) :], path, depth)
        element = type_[2:]
        items: list[Any] = []
        for field in found:
            if element in _NUMERIC and field.wire_type == LENGTH:
                for number in packed_varints(self.data, field.start, field.end):
                    self._spend(1)
                    items.append(_scalar(element, number))
            else:
                self._spend(1)
                items.append(self.value([field], element, f"{path}[{len(items)}]", depth))
        return items

    def _map(self, found: list[Field], value_type: str, path: str, depth: int) -> dict[str, Any]:
        """Map entries are messages {1: key, 2: value}; a missing part is its zero value."""
        out: dict[str, Any] = {}
        for entry in found:
            key = ""
            values: list[Field] = []
            for field in iter_fields(self.data, *_span(entry, path)):
                if field.number == 1:
                    key = _text(self.data, field, path)
                elif field.number == 2:
                    values.append(field)
                else:
                    self._unknown(_join(path, f"#{field.number}"))
            self._spend(1)
            out[key] = self.value(values, value_type, f"{path}[{key}]", depth)
        return out

    def value(self, found: list[Field], type_: str, path: str, depth: int) -> Any:
        """The Go value of a singular field (zero when absent), rendered as JSON."""
        if type_ in MESSAGES:
            return self.message(type_, [_span(f, path) for f in found], path, depth + 1)
        if type_ in _SPECIAL:
            return _SPECIAL[type_](self, [_span(f, path) for f in found], path)
        if not found:
            return _ZERO[type_]
        last = found[-1]  # a repeated singular field: the last one wins
        if type_ == "string":
            return _text(self.data, last, path)
        if type_ == "bytes":
            return base64.b64encode(self.data[slice(*_span(last, path))]).decode("ascii")
        if last.wire_type != VARINT:
            raise ProtobufError(f"{path}: wrong wire type {last.wire_type} for a {type_}")
        return _scalar(type_, last.value)

    def fields(self, spans: list[Span]) -> dict[int, list[Field]]:
        """Fields of a special type's message by number (unknown numbers are ignored)."""
        found: dict[int, list[Field]] = {}
        for start, end in spans:
            for field in iter_fields(self.data, start, end):
                self._spend(1)
                found.setdefault(field.number, []).append(field)
        return found

    def _unknown(self, path: str) -> None:
        if len(self.unknown) < MAX_UNKNOWN:
            self.unknown.append(path)

    def _spend(self, count: int) -> None:
        self._budget -= count
        if self._budget < 0:
            raise ProtobufError(f"the object expands to more than {MAX_VALUES} values")


_ABSENT: Final[dict[tuple[str, str], Any]] = {}  # immutable renders of absent non-structs

_ZERO: Final[dict[str, Any]] = {"string": "", "bool": False, "int32": 0, "int64": 0, "bytes": ""}


def _scalar(type_: str, value: int) -> Any:
    if type_ == "bool":
        return value != 0
    return as_int32(value) if type_ == "int32" else as_int64(value)


def _span(field: Field, path: str) -> Span:
    if field.wire_type != LENGTH:
        raise ProtobufError(f"{path}: wrong wire type {field.wire_type} for a length-delimited")
    return field.start, field.end


def _text(data: bytes, field: Field, path: str) -> str:
    """Go does not validate UTF-8 in protobuf strings; its JSON encoder writes U+FFFD instead."""
    return data[slice(*_span(field, path))].decode("utf-8", errors="replace")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _last_int(found: dict[int, list[Field]], number: int, path: str) -> int:
    fields = found.get(number)
    if not fields:
        return 0
    if fields[-1].wire_type != VARINT:
        raise ProtobufError(f"{path}: wrong wire type {fields[-1].wire_type} for a varint")
    return as_int64(fields[-1].value)


def _last_text(decoder: _Decoder, found: dict[int, list[Field]], number: int, path: str) -> str:
    fields = found.get(number)
    return _text(decoder.data, fields[-1], path) if fields else ""


def _time(decoder: _Decoder, spans: list[Span], path: str) -> str | None:
    """metav1.Time: {seconds 1, nanos 2}; Go keeps seconds only and writes the zero time as null."""
    if all(start == end for start, end in spans):
        return None
    seconds = _last_int(decoder.fields(spans), 1, path)
    return None if seconds == _GO_ZERO_TIME else _rfc3339(seconds, 0, path)


def _micro_time(decoder: _Decoder, spans: list[Span], path: str) -> str | None:
    """metav1.MicroTime: like Time but nanos are kept, truncated to microseconds."""
    if all(start == end for start, end in spans):
        return None
    found = decoder.fields(spans)
    seconds = _last_int(found, 1, path)
    nanos = as_int32(_last_int(found, 2, path))
    micros = abs(nanos) // 1000 * (-1 if nanos < 0 else 1)  # Go's Truncate: toward zero
    if seconds * 1_000_000 + micros == _GO_ZERO_TIME * 1_000_000:
        return None
    return _rfc3339(seconds, micros, path, micro=True)


def _rfc3339(seconds: int, micros: int, path: str, *, micro: bool = False) -> str:
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise ProtobufError(f"{path}: timestamp {seconds} is out of range") from None
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{text}.{moment.microsecond:06d}Z" if micro else f"{text}Z"


def _duration(decoder: _Decoder, spans: list[Span], path: str) -> str:
    """metav1.Duration {duration 1: nanoseconds}, written as Go's time.Duration.String()."""
    return go_duration(_last_int(decoder.fields(spans), 1, path))


def _quantity(decoder: _Decoder, spans: list[Span], path: str) -> str:
    """resource.Quantity {string 1}; kubectl sends the canonical form, kept as is."""
    return _last_text(decoder, decoder.fields(spans), 1, path) or "0"


def _int_or_string(decoder: _Decoder, spans: list[Span], path: str) -> int | str:
    """intstr.IntOrString {type 1: 0 int / 1 string, intVal 2, strVal 3}."""
    found = decoder.fields(spans)
    kind = _last_int(found, 1, path)
    if kind == 0:
        return as_int32(_last_int(found, 2, path))
    if kind == 1:
        return _last_text(decoder, found, 3, path)
    raise ProtobufError(f"{path}: impossible IntOrString type {kind}")


def _embedded_json(decoder: _Decoder, spans: list[Span], path: str) -> Any:
    """RawExtension and FieldsV1 {raw 1}: the bytes are JSON, embedded verbatim by Go."""
    fields = decoder.fields(spans).get(1)
    if not fields:
        return None
    raw = decoder.data[slice(*_span(fields[-1], path))]
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProtobufError(f"{path}: embedded raw object is not JSON") from None


def _string_list(decoder: _Decoder, spans: list[Span], path: str) -> list[str] | None:
    """A named []string (ExtraValue) travels as a message {items 1}; nil renders as null."""
    items = decoder.fields(spans).get(1, [])
    return [_text(decoder.data, field, path) for field in items] or None


_SPECIAL: Final[dict[str, Callable[[_Decoder, list[Span], str], Any]]] = {
    "Time": _time,
    "MicroTime": _micro_time,
    "Duration": _duration,
    "Quantity": _quantity,
    "IntOrString": _int_or_string,
    "RawExtension": _embedded_json,
    "FieldsV1": _embedded_json,
    "StringList": _string_list,
}
