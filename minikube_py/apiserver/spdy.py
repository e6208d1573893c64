"""SPDY/3.1 for port-forward: frames as values, their byte layout, header compression, and a
session state machine. No I/O: bytes in, events out; calls in, bytes queued for sending.

Why our own: kubectl still speaks SPDY/3.1 for port-forward (over a plain HTTP upgrade before
1.31, tunnelled inside WebSocket binary messages since) and no maintained Python SPDY library
exists. Layouts follow the SPDY/3.1 draft; the peer that matters is moby/spdystream (Go,
inside client-go and the kubelet), whose habits shape three choices:

- header names are lowercase and the values of one name are joined by NUL;
- each direction keeps one zlib context for the whole session, primed with the draft's
  dictionary, every header block ending in a sync flush (a wrong dictionary fails zlib's
  DICTID check, so a kubectl that connects at all proves the bytes below);
- spdystream does no flow control: it never sends WINDOW_UPDATE and ignores ours. A session
  enforcing the 64 KiB windows against it would stall every transfer, so enforcement is the
  ``flow_control`` switch; windows are tracked either way.

The session follows the h2 library's shape: :meth:`Session.receive` turns bytes into events,
the other methods queue frames, :meth:`Session.data_to_send` hands the queued bytes over in
order. Header blocks are compressed when queued, so queue order is wire order by design.
"""

from __future__ import annotations

import asyncio
import enum
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

VERSION = 3
DEFAULT_WINDOW = 65536
MAX_WINDOW = 2**31 - 1
MAX_LENGTH = 2**24 - 1  # the 24-bit length field
MAX_HEADER_BLOCK = 256 * 1024  # decompressed; a bound against zlib bombs
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_CLEAR_SETTINGS = 0x01
_CONTROL = 0x80000000
_ID = 0x7FFFFFFF


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SettingId(enum.IntEnum):
    UPLOAD_BANDWIDTH = 1
    DOWNLOAD_BANDWIDTH = 2
    ROUND_TRIP_TIME = 3
    MAX_CONCURRENT_STREAMS = 4
    CURRENT_CWND = 5
    DOWNLOAD_RETRANS_RATE = 6
    INITIAL_WINDOW_SIZE = 7
    CLIENT_CERTIFICATE_VECTOR_SIZE = 8


# -- the header compression dictionary (SPDY/3 draft, section 2.6.10.1) --

_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
    "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
    "cache-control", "connection", "content-base", "content-encoding", "content-language",
    "content-length", "content-location", "content-md5", "content-range", "content-type",
    "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
    "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "vary", "via", "warning", "www-authenticate", "method", "get", "status", "200 OK",
    "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
)  # fmt: skip
"""Each word enters the dictionary as a header block would carry it: a 4-byte length first."""

_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct"
    " Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
"""Status codes, reason phrases, dates and common values, run together without lengths."""

DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _DICTIONARY_WORDS)
    + _DICTIONARY_TAIL.encode()
)


# -- frames --

Headers = dict[str, list[str]]
"""Lowercase names to values, as Go's ``http.Header`` (which spdystream uses) sees them."""


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    associated_to: int = 0
    priority: int = 0  # 0 (highest) .. 7
    slot: int = 0
    flags: int = 0


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Setting:
    id: int
    value: int
    flags: int = 0


@dataclass(frozen=True)
class Settings:
    entries: tuple[Setting, ...] = ()
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int  # 0: the session's window (SPDY/3.1)
    delta: int


@dataclass(frozen=True)
class UnknownControl:
    """A control type this draft does not define: receivers must ignore it."""

    type: int
    flags: int
    payload: bytes


Frame = (
    DataFrame
    | SynStream
    | SynReply
    | RstStream
    | Settings
    | Ping
    | GoAway
    | HeadersFrame
    | WindowUpdate
    | UnknownControl
)


class SessionError(Exception):
    """The connection is unusable (bad framing, broken compression): GOAWAY, then close."""

    def __init__(self, message: str, status: int = GoAwayStatus.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.status = status


class StreamError(Exception):
    """One stream is broken (bad headers, flow control): RST_STREAM it, keep the session."""

    def __init__(self, stream_id: int, status: int, message: str = "") -> None:
        super().__init__(message or RstStatus(status).name)
        self.stream_id = stream_id
        self.status = status


# -- header blocks --


def pack_headers(headers: Mapping[str, Sequence[str]]) -> bytes:
    """The uncompressed block: a count, then length-prefixed names and NUL-joined values."""
    parts = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key = name.lower().encode("latin-1")
        value = "\0".join(values).encode("latin-1")
        parts += (struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value)
    return b"".join(parts)


def unpack_headers(block: bytes, stream_id: int = 0) -> Headers:
    """A block back into headers; a malformed one is a PROTOCOL_ERROR of its stream."""

    def fail(why: str) -> StreamError:
        return StreamError(stream_id, RstStatus.PROTOCOL_ERROR, f"header block: {why}")

    view = memoryview(block)
    if len(view) < 4:
        raise fail("truncated")
    (count,) = struct.unpack_from(">I", view)
    position, headers = 4, Headers()
    for _ in range(count):
        fields: list[str] = []
        for _part in ("name", "value"):
            if position + 4 > len(view):
                raise fail("truncated")
            (size,) = struct.unpack_from(">I", view, position)
            position += 4
            if position + size > len(view):
                raise fail("truncated")
            fields.append(bytes(view[position : position + size]).decode("latin-1"))
            position += size
        name, value = fields
        if not name or name != name.lower():
            raise fail(f"invalid name {name!r}")
        if name in headers:
            raise fail(f"duplicate name {name!r}")
        headers[name] = value.split("\0")
    return headers


class HeaderCompressor:
    """One direction's zlib stream: every block is sync-flushed so the peer can decode it."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)

    def compress(self, headers: Mapping[str, Sequence[str]]) -> bytes:
        return self._deflate.compress(pack_headers(headers)) + self._deflate.flush(
            zlib.Z_SYNC_FLUSH
        )


class HeaderDecompressor:
    """The other direction: blocks must be fed in arrival order (one shared context)."""

    def __init__(self, limit: int = MAX_HEADER_BLOCK) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._limit = limit

    def decompress(self, block: bytes) -> bytes:
        try:
            raw = self._inflate.decompress(block, self._limit)
        except zlib.error as exc:
            raise SessionError(f"header decompression failed: {exc}") from exc
        if self._inflate.unconsumed_tail:
            raise SessionError(f"header block larger than {self._limit} bytes")
        return raw


# -- byte layout --

_HEADER = struct.Struct(">II")
_STREAM_ID = struct.Struct(">I")
_TWO = struct.Struct(">II")


def _control(kind: int, flags: int, body: bytes) -> bytes:
    if len(body) > MAX_LENGTH:
        raise ValueError(f"control frame of {len(body)} bytes is too long")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(body)) + body


def encode_data(stream_id: int, data: bytes, flags: int = 0) -> bytes:
    """A DATA frame; the hot path, so no dataclass on the way."""
    if len(data) > MAX_LENGTH:
        raise ValueError(f"data frame of {len(data)} bytes is too long")
    return _HEADER.pack(stream_id & _ID, flags << 24 | len(data)) + data


class FrameEncoder:
    """Frames to bytes. Owns the compressor: encode in the order the bytes will be sent."""

    def __init__(self) -> None:
        self._headers = HeaderCompressor()

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case DataFrame(stream_id, data, flags):
                return encode_data(stream_id, data, flags)
            case SynStream(stream_id, headers, associated, priority, slot, flags):
                head = _TWO.pack(stream_id & _ID, associated & _ID)
                head += bytes(((priority & 7) << 5, slot & 0xFF))
                block = self._headers.compress(headers)
                return _control(FrameType.SYN_STREAM, flags, head + block)
            case SynReply(stream_id, headers, flags) | HeadersFrame(stream_id, headers, flags):
                kind = FrameType.SYN_REPLY if isinstance(frame, SynReply) else FrameType.HEADERS
                body = _STREAM_ID.pack(stream_id & _ID) + self._headers.compress(headers)
                return _control(kind, flags, body)
            case RstStream(stream_id, status):
                return _control(FrameType.RST_STREAM, 0, _TWO.pack(stream_id & _ID, status))
            case Settings(entries, flags):
                body = _STREAM_ID.pack(len(entries)) + b"".join(
                    _TWO.pack((e.flags & 0xFF) << 24 | (e.id & 0xFFFFFF), e.value) for e in entries
                )
                return _control(FrameType.SETTINGS, flags, body)
            case Ping(ping_id):
                return _control(FrameType.PING, 0, _STREAM_ID.pack(ping_id))
            case GoAway(last_good, status):
                return _control(FrameType.GOAWAY, 0, _TWO.pack(last_good & _ID, status))
            case WindowUpdate(stream_id, delta):
                body = _TWO.pack(stream_id & _ID, delta & _ID)
                return _control(FrameType.WINDOW_UPDATE, 0, body)
            case UnknownControl(kind, flags, payload):
                return _control(kind, flags, payload)
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Bytes (in any fragments: kubectl's framer writes each field separately) to frames.

    :meth:`next_frame` returns one complete frame or None. A :class:`StreamError` is raised
    after its frame was consumed (the caller resets that stream and goes on); a
    :class:`SessionError` leaves the decoder unusable.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._headers = HeaderDecompressor()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def next_frame(self) -> Frame | None:
        buffer = self._buffer
        if len(buffer) < 8:
            return None
        first, second = _HEADER.unpack_from(buffer)
        end = 8 + (second & MAX_LENGTH)
        if len(buffer) < end:
            return None
        payload = bytes(buffer[8:end])
        del buffer[:end]  # CPython drops a bytearray's head without moving the rest
        flags = second >> 24
        if not first & _CONTROL:
            return DataFrame(first & _ID, payload, flags)
        version, kind = first >> 16 & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SessionError(f"unsupported SPDY version {version}")
        return self._control(kind, flags, payload)

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        try:
            return self._parse(kind, flags, payload)
        except struct.error as exc:
            raise SessionError(f"malformed {_kind_name(kind)} frame") from exc

    def _parse(self, kind: int, flags: int, payload: bytes) -> Frame:
        if kind == FrameType.SYN_STREAM:
            stream_id, associated = _TWO.unpack_from(payload)
            stream_id &= _ID
            priority, slot = payload[8] >> 5, payload[9]
            headers = self._block(payload[10:], stream_id)
            return SynStream(stream_id, headers, associated & _ID, priority, slot, flags)
        if kind in (FrameType.SYN_REPLY, FrameType.HEADERS):
            (stream_id,) = _STREAM_ID.unpack_from(payload)
            stream_id &= _ID
            headers = self._block(payload[4:], stream_id)
            if kind == FrameType.SYN_REPLY:
                return SynReply(stream_id, headers, flags)
            return HeadersFrame(stream_id, headers, flags)
        if kind == FrameType.RST_STREAM:
            stream_id, status = _TWO.unpack_from(payload)
            return RstStream(stream_id & _ID, status)
        if kind == FrameType.SETTINGS:
            (count,) = _STREAM_ID.unpack_from(payload)
            entries = []
            for index in range(count):
                head, value = _TWO.unpack_from(payload, 4 + 8 * index)
                entries.append(Setting(head & 0xFFFFFF, value, head >> 24))
            return Settings(tuple(entries), flags)
        if kind == FrameType.PING:
            return Ping(_STREAM_ID.unpack_from(payload)[0])
        if kind == FrameType.GOAWAY:
            last_good, status = _TWO.unpack_from(payload)
            return GoAway(last_good & _ID, status)
        if kind == FrameType.WINDOW_UPDATE:
            stream_id, delta = _TWO.unpack_from(payload)
            return WindowUpdate(stream_id & _ID, delta & _ID)
        return UnknownControl(kind, flags, payload)

    def _block(self, compressed: bytes, stream_id: int) -> Headers:
        # Always decompress, even for a stream about to be refused: the context is shared.
        return unpack_headers(self._headers.decompress(compressed), stream_id)


def _kind_name(kind: int) -> str:
    try:
        return FrameType(kind).name
    except ValueError:
        return f"type {kind}"


# -- the session --


@dataclass(frozen=True)
class StreamOpened:
    stream_id: int
    headers: Headers
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class StreamReplied:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class HeadersReceived:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class DataReceived:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class StreamReset:
    stream_id: int
    status: int


@dataclass(frozen=True)
class PingAnswered:
    id: int


@dataclass(frozen=True)
class SettingsChanged:
    values: dict[int, int]


@dataclass(frozen=True)
class WindowUpdated:
    stream_id: int  # 0: the session window grew


@dataclass(frozen=True)
class GoAwayReceived:
    last_good_stream_id: int
    status: int


Event = (
    StreamOpened
    | StreamReplied
    | HeadersReceived
    | DataReceived
    | StreamReset
    | PingAnswered
    | SettingsChanged
    | WindowUpdated
    | GoAwayReceived
)


@dataclass
class _Stream:
    send_window: int
    recv_window: int
    local_closed: bool = False  # we sent FIN (or the stream was unidirectional towards us)
    remote_closed: bool = False  # the peer sent FIN
    unacknowledged: int = 0  # consumed bytes not yet given back with WINDOW_UPDATE


@dataclass
class _Windows:
    send: int = DEFAULT_WINDOW
    recv: int = DEFAULT_WINDOW
    unacknowledged: int = 0
    initial_send: int = DEFAULT_WINDOW  # for new streams: the peer's INITIAL_WINDOW_SIZE
    initial_recv: int = DEFAULT_WINDOW  # ours


class Session:
    """One SPDY/3.1 connection's state, either end (a ``client`` opens odd stream ids)."""

    def __init__(self, *, client: bool = False, flow_control: bool = True) -> None:
        self.client = client
        self.flow_control = flow_control
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._streams: dict[int, _Stream] = {}
        self._windows = _Windows()
        self._outbox: list[bytes] = []
        self._last_remote_id = 0
        self._next_local_id = self._next_ping_id = 1 if client else 2
        self._going_away = False  # we sent GOAWAY: new peer streams are ignored
        self._gone_away = False  # the peer did: we open none

    # -- the wire --

    def data_to_send(self) -> bytes:
        """Everything queued so far, in queue order (empty when nothing is)."""
        out, self._outbox = b"".join(self._outbox), []
        return out

    def _queue(self, frame: Frame) -> None:
        self._outbox.append(self._encoder.encode(frame))

    def receive(self, data: bytes) -> list[Event]:
        """Feed bytes as they arrive; events for every complete frame among them.

        Stream errors are answered with RST_STREAM and skipped. A session error queues
        GOAWAY and is raised: send :meth:`data_to_send`, then close the connection.
        """
        self._decoder.feed(data)
        events: list[Event] = []
        while True:
            try:
                frame = self._decoder.next_frame()
                if frame is None:
                    return events
                self._handle(frame, events)
            except StreamError as exc:
                self._streams.pop(exc.stream_id, None)
                self._queue(RstStream(exc.stream_id, exc.status))
            except SessionError as exc:
                self._going_away = True
                self._queue(GoAway(self._last_remote_id, exc.status))
                raise

    def _handle(self, frame: Frame, events: list[Event]) -> None:
        match frame:
            case DataFrame():
                self._on_data(frame, events)
            case SynStream():
                self._on_syn_stream(frame, events)
            case SynReply(stream_id, headers, flags):
                stream = self._streams.get(stream_id)
                if stream is not None:
                    events.append(StreamReplied(stream_id, headers, bool(flags & FLAG_FIN)))
                    self._remote_fin(stream_id, stream, flags)
            case HeadersFrame(stream_id, headers, flags):
                stream = self._streams.get(stream_id)
                if stream is not None:
                    events.append(HeadersReceived(stream_id, headers, bool(flags & FLAG_FIN)))
                    self._remote_fin(stream_id, stream, flags)
            case RstStream(stream_id, status):
                if self._streams.pop(stream_id, None) is not None:
                    events.append(StreamReset(stream_id, status))
            case Settings():
                self._on_settings(frame, events)
            case Ping(ping_id):
                if ping_id % 2 == self._next_ping_id % 2:
                    events.append(PingAnswered(ping_id))
                else:
                    self._queue(frame)  # the peer's ping: echo it
            case GoAway(last_good, status):
                self._gone_away = True
                events.append(GoAwayReceived(last_good, status))
            case WindowUpdate():
                self._on_window_update(frame, events)
            case UnknownControl():
                pass

    def _on_syn_stream(self, frame: SynStream, events: list[Event]) -> None:
        stream_id = frame.stream_id
        if self._going_away:
            return  # the draft: after GOAWAY, new streams are ignored
        if stream_id == 0 or stream_id % 2 == self._next_local_id % 2:
            raise SessionError(f"stream id {stream_id} is not the peer's to open")
        if stream_id in self._streams:
            raise StreamError(stream_id, RstStatus.PROTOCOL_ERROR, "stream already open")
        if stream_id <= self._last_remote_id:
            raise SessionError(f"stream id {stream_id} does not increase")
        self._last_remote_id = stream_id
        windows = self._windows
        stream = _Stream(windows.initial_send, windows.initial_recv)
        stream.local_closed = bool(frame.flags & FLAG_UNIDIRECTIONAL)
        self._streams[stream_id] = stream
        fin = bool(frame.flags & FLAG_FIN)
        events.append(StreamOpened(stream_id, frame.headers, fin, stream.local_closed))
        self._remote_fin(stream_id, stream, frame.flags)

    def _on_data(self, frame: DataFrame, events: list[Event]) -> None:
        stream_id = frame.stream_id
        stream = self._streams.get(stream_id)
        if stream is None:
            if not self._known(stream_id):
                raise StreamError(stream_id, RstStatus.INVALID_STREAM)
            return  # a stream that just ended: spdystream ignores such frames too
        if stream.remote_closed:
            raise StreamError(stream_id, RstStatus.STREAM_ALREADY_CLOSED)
        size = len(frame.data)
        if self.flow_control:
            stream.recv_window -= size
            self._windows.recv -= size
            if stream.recv_window < 0:
                raise StreamError(stream_id, RstStatus.FLOW_CONTROL_ERROR)
            if self._windows.recv < 0:
                raise SessionError("the peer overran the session window")
        events.append(DataReceived(stream_id, frame.data, bool(frame.flags & FLAG_FIN)))
        self._remote_fin(stream_id, stream, frame.flags)

    def _known(self, stream_id: int) -> bool:
        if stream_id % 2 == self._next_local_id % 2:
            return 0 < stream_id < self._next_local_id
        return 0 < stream_id <= self._last_remote_id

    def _remote_fin(self, stream_id: int, stream: _Stream, flags: int) -> None:
        if flags & FLAG_FIN:
            stream.remote_closed = True
            self._forget_if_done(stream_id, stream)

    def _forget_if_done(self, stream_id: int, stream: _Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self._streams.pop(stream_id, None)

    def _on_settings(self, frame: Settings, events: list[Event]) -> None:
        values = {entry.id: entry.value for entry in frame.entries}
        size = values.get(SettingId.INITIAL_WINDOW_SIZE)
        if size is not None:
            if size > MAX_WINDOW:
                raise SessionError(f"initial window size {size} is too large")
            delta, self._windows.initial_send = size - self._windows.initial_send, size
            for stream in self._streams.values():
                stream.send_window += delta
        events.append(SettingsChanged(values))

    def _on_window_update(self, frame: WindowUpdate, events: list[Event]) -> None:
        stream_id, delta = frame.stream_id, frame.delta
        if stream_id == 0:
            if delta == 0 or self._windows.send + delta > MAX_WINDOW:
                raise SessionError(f"invalid session window update {delta}")
            self._windows.send += delta
        else:
            stream = self._streams.get(stream_id)
            if stream is None:
                return
            if delta == 0:
                raise StreamError(stream_id, RstStatus.PROTOCOL_ERROR, "zero window update")
            if stream.send_window + delta > MAX_WINDOW:
                raise StreamError(stream_id, RstStatus.FLOW_CONTROL_ERROR)
            stream.send_window += delta
        events.append(WindowUpdated(stream_id))

    # -- what this end does --

    def is_open(self, stream_id: int) -> bool:
        """True while this end may still send on the stream."""
        stream = self._streams.get(stream_id)
        return stream is not None and not stream.local_closed

    def open_stream(
        self, headers: Mapping[str, Sequence[str]], *, fin: bool = False, priority: int = 0
    ) -> int:
        if self._gone_away or self._going_away:
            raise SessionError("the session is going away")
        stream_id, self._next_local_id = self._next_local_id, self._next_local_id + 2
        windows = self._windows
        self._streams[stream_id] = _Stream(windows.initial_send, windows.initial_recv, fin)
        flags = FLAG_FIN if fin else 0
        self._queue(SynStream(stream_id, _headers(headers), priority=priority, flags=flags))
        return stream_id

    def reply(
        self,
        stream_id: int,
        headers: Mapping[str, Sequence[str]] | None = None,
        *,
        fin: bool = False,
    ) -> None:
        self._queue(SynReply(stream_id, _headers(headers or {}), FLAG_FIN if fin else 0))
        if fin:
            self._local_fin(stream_id)

    def send_headers(
        self, stream_id: int, headers: Mapping[str, Sequence[str]], *, fin: bool = False
    ) -> None:
        self._queue(HeadersFrame(stream_id, _headers(headers), FLAG_FIN if fin else 0))
        if fin:
            self._local_fin(stream_id)

    def send_window(self, stream_id: int) -> int:
        """How many bytes :meth:`send_data` would take now."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            return 0
        if not self.flow_control:
            return MAX_WINDOW
        return max(0, min(stream.send_window, self._windows.send))

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> int:
        """Queue what the windows allow (all of it without flow control); the count taken.

        FIN goes with the last byte only when all of ``data`` was taken.
        """
        stream = self._streams.get(stream_id)
        if stream is None or stream.local_closed:
            raise StreamError(stream_id, RstStatus.STREAM_ALREADY_CLOSED, "stream not open")
        taken = min(len(data), self.send_window(stream_id))
        finished = fin and taken == len(data)
        view = memoryview(data)
        for start in range(0, taken, MAX_LENGTH):
            chunk = bytes(view[start : min(taken, start + MAX_LENGTH)])
            last = start + MAX_LENGTH >= taken
            self._outbox.append(encode_data(stream_id, chunk, FLAG_FIN if finished and last else 0))
        if finished and not data:
            self._outbox.append(encode_data(stream_id, b"", FLAG_FIN))
        if self.flow_control:
            stream.send_window -= taken
            self._windows.send -= taken
        if finished:
            self._local_fin(stream_id)
        return taken

    def acknowledge(self, stream_id: int, size: int) -> None:
        """``size`` received bytes were consumed: give the window back (flow control only).

        WINDOW_UPDATE goes out once half a window is owed, not per read.
        """
        if not self.flow_control or size <= 0:
            return
        windows = self._windows
        windows.unacknowledged += size
        if windows.unacknowledged >= DEFAULT_WINDOW // 2:
            self._queue(WindowUpdate(0, windows.unacknowledged))
            windows.recv, windows.unacknowledged = windows.recv + windows.unacknowledged, 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        stream.unacknowledged += size
        if stream.unacknowledged >= windows.initial_recv // 2:
            self._queue(WindowUpdate(stream_id, stream.unacknowledged))
            stream.recv_window += stream.unacknowledged
            stream.unacknowledged = 0

    def reset(self, stream_id: int, status: int = RstStatus.CANCEL) -> None:
        self._streams.pop(stream_id, None)
        self._queue(RstStream(stream_id, status))

    def ping(self) -> int:
        ping_id, self._next_ping_id = self._next_ping_id, self._next_ping_id + 2
        self._queue(Ping(ping_id))
        return ping_id

    def settings(self, values: Mapping[int, int]) -> None:
        """Announce settings; our INITIAL_WINDOW_SIZE applies to streams opened later."""
        if SettingId.INITIAL_WINDOW_SIZE in values:
            self._windows.initial_recv = values[SettingId.INITIAL_WINDOW_SIZE]
        self._queue(Settings(tuple(Setting(key, value) for key, value in values.items())))

    def go_away(self, status: int = GoAwayStatus.OK) -> None:
        if not self._going_away:
            self._going_away = True
            self._queue(GoAway(self._last_remote_id, status))

    def _local_fin(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.local_closed = True
            self._forget_if_done(stream_id, stream)


def _headers(headers: Mapping[str, Sequence[str]]) -> Headers:
    return {name.lower(): list(values) for name, values in headers.items()}


class Outbox:
    """Sends what a session queued, in order, over one connection (sessions are sans-IO).

    One lock keeps concurrent flushers from interleaving frames; a client that went away
    is remembered, so later flushes say so instead of raising.
    """

    def __init__(self, session: Session, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._session = session
        self._send = send
        self._lock = asyncio.Lock()
        self.broken = False

    async def flush(self) -> bool:
        """Send what is queued; False once the client is gone."""
        async with self._lock:
            data = self._session.data_to_send()
            if data and not self.broken:
                try:
                    await self._send(data)
                except ConnectionError:
                    self.broken = True
        return not self.broken
