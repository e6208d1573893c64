"""The protobuf wire format, just enough to walk Kubernetes messages without the protobuf package.

A message is a sequence of (tag, payload) pairs; the tag is a varint holding the field number and
one of four wire types we accept: varint (0), 64-bit (1), length-delimited (2) and 32-bit (5).
Groups (3, 4) are obsolete and never produced by Kubernetes, so they are malformed input here.

The reader never copies: a length-delimited payload is reported as a ``(start, end)`` span of the
one request buffer, so nested messages, strings and unknown fields cost O(their length) once and
a hostile body cannot make us quadratic. Every length is checked against its enclosing span.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NamedTuple

VARINT: Final = 0
FIXED64: Final = 1
LENGTH: Final = 2
FIXED32: Final = 5

_MAX_FIELD_NUMBER: Final = (1 << 29) - 1
_UINT64: Final = (1 << 64) - 1


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes protobuf message (the server answers 400)."""


class Field(NamedTuple):
    """One field occurrence; for LENGTH the payload is ``data[start:end]``, else ``value``."""

    number: int
    wire_type: int
    value: int
    start: int
    end: int


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return (value, next position).

    At most ten bytes; bits past the 64th are dropped, as Go's generated decoders do, and an
    eleventh byte is an overflow rather than a very large number.
    """
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtobufError("unexpected end of data in varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _UINT64, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint overflows 64 bits")


def iter_fields(data: bytes, start: int, end: int) -> Iterator[Field]:
    """Yield every field of the message in ``data[start:end]``, in wire order."""
    pos = start
    while pos < end:
        tag, pos = read_varint(data, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise ProtobufError(f"illegal field number {number}")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos, end)
            yield Field(number, wire_type, value, pos, pos)
        elif wire_type == LENGTH:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise ProtobufError(f"field {number}: length {length} runs past the end of data")
            yield Field(number, wire_type, 0, pos, pos + length)
            pos += length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > end - pos:
                raise ProtobufError(f"field {number}: unexpected end of data in fixed value")
            value = int.from_bytes(data[pos : pos + size], "little")
            yield Field(number, wire_type, value, pos, pos + size)
            pos += size
        else:
            raise ProtobufError(f"field {number}: illegal wire type {wire_type}")


def packed_varints(data: bytes, start: int, end: int) -> Iterator[int]:
    """The elements of a packed repeated varint field (accepted as well as unpacked, like Go)."""
    pos = start
    while pos < end:
        value, pos = read_varint(data, pos, end)
        yield value


def as_int32(value: int) -> int:
    """Go's ``int32(v)`` of a decoded varint: keep the low 32 bits, two's complement."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def as_int64(value: int) -> int:
    """Go's ``int64(v)``: negative numbers travel as ten-byte two's-complement varints."""
    return value - (1 << 64) if value & (1 << 63) else value
