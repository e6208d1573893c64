"""The SPDY/3.1 framer and session on known bytes.

Frames are written out by hand from the draft's layouts (control bit, version 3, type,
flags, 24-bit length, fields), decoded and re-encoded; header blocks are checked with an
independent zlib primed with the dictionary; the opening of a real kubectl 1.32 session
(captured from this server) must decode to the headers kubectl sets. The session's rules
are driven frame by frame, flow control with a client and a server session talking.
"""

from __future__ import annotations

import struct
import zlib

import pytest

from minikube_py.apiserver import spdy
from minikube_py.apiserver.spdy import (
    FLAG_FIN,
    DataFrame,
    DataReceived,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    HeadersFrame,
    Ping,
    RstStatus,
    RstStream,
    Session,
    SessionError,
    Setting,
    Settings,
    StreamOpened,
    StreamReset,
    SynReply,
    SynStream,
    UnknownControl,
    WindowUpdate,
)

# What kubectl 1.32 sent for one `curl` through `kubectl port-forward pod/web :80`: SYN_STREAM
# 1 (error), an empty DATA with FIN on it (kubectl never writes there), SYN_STREAM 3 (data),
# the HTTP request on 3, and RST_STREAM 3 CANCEL once the answer had ended.
KUBECTL_SESSION = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a"
    "4dcc851625aca9a0808614cb45a024cc6461c0c0c0c0590489c44c50e2663400"
    "000000ffff0000000101000000800300010000001800000003000000000000c2"
    "aa15540a2512d209000000ffff0000000300000059474554202f696e6465782e"
    "68746d6c20485454502f312e310d0a486f73743a203132372e302e302e313a34"
    "303531310d0a557365722d4167656e743a206375726c2f372e38382e310d0a41"
    "63636570743a202a2f2a0d0a0d0a80030003000000080000000300000005"
)
REQUEST = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:40511\r\nUser-Agent: curl/7.88.1\r\n"


def control(kind: int, flags: int, body: bytes) -> bytes:
    """A control frame by the draft: 1 | version (15) | type (16) | flags (8) | length (24)."""
    return (
        bytes([0x80, 0x03])
        + struct.pack(">H", kind)
        + bytes([flags])
        + len(body).to_bytes(3)
        + body
    )


def decode_all(data: bytes) -> list[spdy.Frame]:
    decoder = FrameDecoder()
    decoder.feed(data)
    frames = []
    while (frame := decoder.next_frame()) is not None:
        frames.append(frame)
    return frames


def block(*pairs: tuple[bytes, bytes]) -> bytes:
    """An uncompressed header block by the draft: count, then length-prefixed names/values."""
    out = struct.pack(">I", len(pairs))
    for name, value in pairs:
        out += struct.pack(">I", len(name)) + name + struct.pack(">I", len(value)) + value
    return out


# -- the dictionary --


def test_dictionary_is_the_drafts() -> None:
    """1423 bytes: length-prefixed words from ``options`` to ``origin``, then the raw tail.

    0xe3c6a7c2 is its Adler-32, the DICTID every SPDY/3 zlib stream names (bytes 3-6 of
    kubectl's first header block above).
    """
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url" in spdy.DICTIONARY
    assert b"\x00\x00\x00\x06origin100101201202205206300302" in spdy.DICTIONARY
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert KUBECTL_SESSION[20:24] == bytes.fromhex("e3c6a7c2")


# -- frames, byte for byte --

KNOWN = [
    (control(6, 0, b"\x00\x00\x00\x07"), Ping(7)),
    (control(3, 0, bytes.fromhex("00000005 00000005")), RstStream(5, RstStatus.CANCEL)),
    (control(7, 0, bytes.fromhex("00000007 00000000")), GoAway(7, 0)),
    (control(7, 0, bytes.fromhex("00000009 00000002")), GoAway(9, 2)),
    (control(9, 0, bytes.fromhex("00000001 00010000")), WindowUpdate(1, 65536)),
    (control(9, 0, bytes.fromhex("00000000 00000400")), WindowUpdate(0, 1024)),
    (
        control(4, 0, bytes.fromhex("00000002 00000004 00000064 01000007 00020000")),
        Settings((Setting(4, 100), Setting(7, 131072, flags=1))),
    ),
    (control(4, 1, bytes.fromhex("00000000")), Settings((), flags=1)),
    (bytes.fromhex("00000001 01000005") + b"hello", DataFrame(1, b"hello", FLAG_FIN)),
    (bytes.fromhex("7fffffff 00000000"), DataFrame(2**31 - 1, b"")),
    (control(0x1F, 0xAB, b"xyz"), UnknownControl(0x1F, 0xAB, b"xyz")),
]


@pytest.mark.parametrize(("wire", "frame"), KNOWN, ids=[type(f).__name__ for _, f in KNOWN])
def test_frames_without_header_blocks_round_trip(wire: bytes, frame: spdy.Frame) -> None:
    assert decode_all(wire) == [frame]
    assert FrameEncoder().encode(frame) == wire


def test_frames_split_anywhere_are_reassembled() -> None:
    """kubectl's framer writes each field on its own, so each lands in its own message."""
    wire = b"".join(w for w, _ in KNOWN)
    decoder = FrameDecoder()
    frames = []
    for index in range(len(wire)):
        decoder.feed(wire[index : index + 1])
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    assert frames == [f for _, f in KNOWN]
    assert decoder.buffered == 0


def test_kubectl_session_opening_decodes() -> None:
    frames = decode_all(KUBECTL_SESSION)
    headers = {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
    assert frames[0] == SynStream(1, headers)
    assert frames[1] == DataFrame(1, b"", FLAG_FIN)
    assert frames[2] == SynStream(3, {**headers, "streamtype": ["data"]})
    third = frames[3]
    assert isinstance(third, DataFrame)
    assert third.stream_id == 3
    assert third.data.startswith(REQUEST)
    assert frames[4] == RstStream(3, RstStatus.CANCEL)


def test_syn_stream_layout_and_header_block() -> None:
    """Stream id, associated id, 3-bit priority, slot, then the zlib block (sync-flushed)."""
    wire = FrameEncoder().encode(
        SynStream(5, {"port": ["80"], "Accept": ["a", "b"]}, associated_to=3, priority=6, slot=9)
    )
    assert wire[:4] == bytes.fromhex("80030001")
    assert wire[4] == 0  # flags
    assert int.from_bytes(wire[5:8]) == len(wire) - 8
    assert wire[8:18] == bytes.fromhex("00000005 00000003 c0 09")
    assert wire.endswith(b"\x00\x00\xff\xff")  # the sync flush: the peer can decode now
    inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
    raw = inflate.decompress(wire[18:])
    assert raw == block((b"port", b"80"), (b"accept", b"a\x00b"))


def test_header_blocks_from_an_independent_compressor() -> None:
    """One zlib context per direction: the second block only decodes after the first."""
    deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=spdy.DICTIONARY)
    raw = block((b"streamtype", b"data"), (b"port", b"8080"))
    first = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    second = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(second) < len(first)  # back-references into the first block
    wire = control(2, 0, struct.pack(">I", 1) + first) + control(
        8, 1, struct.pack(">I", 1) + second
    )
    expected = {"streamtype": ["data"], "port": ["8080"]}
    assert decode_all(wire) == [SynReply(1, expected), HeadersFrame(1, expected, FLAG_FIN)]
    with pytest.raises(SessionError):  # alone, the second block lacks its history
        decode_all(control(2, 0, struct.pack(">I", 1) + second))


def test_empty_header_block_is_a_count_of_zero() -> None:
    wire = FrameEncoder().encode(SynReply(1, {}))
    raw = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(wire[12:])
    assert raw == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "pairs",
    [
        ((b"port", b"80"), (b"port", b"81")),  # a name twice
        ((b"Port", b"80"),),  # names are lowercase
        ((b"", b"80"),),
    ],
)
def test_malformed_header_blocks_reset_their_stream_only(pairs: tuple[tuple[bytes, bytes]]) -> None:
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    bad = deflate.compress(block(*pairs)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    good = deflate.compress(block((b"port", b"80"))) + deflate.flush(zlib.Z_SYNC_FLUSH)
    session = Session()
    events = session.receive(
        control(1, 0, struct.pack(">IIH", 1, 0, 0) + bad)
        + control(1, 0, struct.pack(">IIH", 3, 0, 0) + good)
    )
    assert events == [StreamOpened(3, {"port": ["80"]})]
    assert decode_all(session.data_to_send()) == [RstStream(1, RstStatus.PROTOCOL_ERROR)]


def test_another_version_ends_the_session() -> None:
    session = Session()
    with pytest.raises(SessionError, match="version 2"):
        session.receive(bytes.fromhex("80020006 00000004 00000001"))
    assert decode_all(session.data_to_send()) == [GoAway(0, spdy.GoAwayStatus.PROTOCOL_ERROR)]


def test_data_frames_longer_than_the_length_field_are_split() -> None:
    session = Session(flow_control=False)
    session.receive(FrameEncoder().encode(SynStream(1, {})))
    session.data_to_send()
    payload = bytes(spdy.MAX_LENGTH + 10)
    assert session.send_data(1, payload, fin=True) == len(payload)
    frames = decode_all(session.data_to_send())
    assert [(f.stream_id, len(f.data), f.flags) for f in frames if isinstance(f, DataFrame)] == [
        (1, spdy.MAX_LENGTH, 0),
        (1, 10, FLAG_FIN),
    ]


# -- the session --


def opened(session: Session, peer: FrameEncoder, *stream_ids: int) -> None:
    """The peer opens streams (one encoder per peer: header compression is per direction)."""
    session.receive(b"".join(peer.encode(SynStream(i, {"x": ["y"]})) for i in stream_ids))


def test_server_stream_lifecycle() -> None:
    server, encoder = Session(), FrameEncoder()
    events = server.receive(encoder.encode(SynStream(1, {"streamtype": ["data"]})))
    assert events == [StreamOpened(1, {"streamtype": ["data"]})]
    server.reply(1)
    server.send_data(1, b"pong")
    assert decode_all(server.data_to_send()) == [SynReply(1, {}), DataFrame(1, b"pong")]
    events = server.receive(encoder.encode(DataFrame(1, b"ping", FLAG_FIN)))
    assert events == [DataReceived(1, b"ping", fin=True)]
    assert server.is_open(1)  # half-closed: the peer is done, we are not
    server.send_data(1, b"", fin=True)
    assert not server.is_open(1)
    assert decode_all(server.data_to_send()) == [DataFrame(1, b"", FLAG_FIN)]
    # Both sides done, the stream is forgotten; late frames for it are dropped quietly.
    assert server.receive(encoder.encode(DataFrame(1, b"late"))) == []
    assert server.data_to_send() == b""


def test_pings_from_the_peer_are_echoed_ours_are_answered() -> None:
    server = Session()
    assert server.receive(FrameEncoder().encode(Ping(1))) == []
    assert decode_all(server.data_to_send()) == [Ping(1)]
    ours = server.ping()
    assert ours % 2 == 0
    server.data_to_send()
    assert server.receive(FrameEncoder().encode(Ping(ours))) == [spdy.PingAnswered(ours)]


@pytest.mark.parametrize("stream_ids", [(2,), (0,), (3, 1), (3, 3)])
def test_stream_ids_the_peer_may_not_use(stream_ids: tuple[int, ...]) -> None:
    server, encoder = Session(), FrameEncoder()
    if len(stream_ids) > 1 and stream_ids[0] == stream_ids[1]:  # a second SYN for an open one
        opened(server, encoder, stream_ids[0])
        server.receive(encoder.encode(SynStream(stream_ids[1], {})))
        frames = decode_all(server.data_to_send())
        assert frames == [RstStream(stream_ids[1], RstStatus.PROTOCOL_ERROR)]
        return
    with pytest.raises(SessionError):
        opened(server, encoder, *stream_ids)
    assert isinstance(decode_all(server.data_to_send())[-1], GoAway)


def test_data_for_streams_that_never_were_or_are_finished() -> None:
    server, encoder = Session(), FrameEncoder()
    server.receive(encoder.encode(DataFrame(9, b"x")))
    assert decode_all(server.data_to_send()) == [RstStream(9, RstStatus.INVALID_STREAM)]
    opened(server, encoder, 1)
    server.receive(encoder.encode(DataFrame(1, b"", FLAG_FIN)) + encoder.encode(DataFrame(1, b"x")))
    assert decode_all(server.data_to_send()) == [RstStream(1, RstStatus.STREAM_ALREADY_CLOSED)]


def test_reset_by_the_peer() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1)
    assert server.receive(encoder.encode(RstStream(1, RstStatus.CANCEL))) == [
        StreamReset(1, RstStatus.CANCEL)
    ]
    assert not server.is_open(1)
    with pytest.raises(spdy.StreamError):
        server.send_data(1, b"x")


def test_after_go_away_new_streams_are_ignored() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1)
    server.go_away()
    assert decode_all(server.data_to_send()) == [GoAway(1, 0)]
    assert server.receive(encoder.encode(SynStream(3, {}))) == []
    assert server.data_to_send() == b""
    client = Session(client=True)
    client.receive(FrameEncoder().encode(GoAway(0)))
    with pytest.raises(SessionError):
        client.open_stream({})


# -- flow control --


def test_send_windows_limit_a_flow_controlled_session() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1, 3)
    server.data_to_send()
    assert server.send_data(1, bytes(70000), fin=True) == 65536  # FIN waits for the rest
    assert server.is_open(1)
    assert decode_all(server.data_to_send()) == [DataFrame(1, bytes(65536))]  # no FIN
    assert server.send_window(3) == 0  # the session window (SPDY/3.1) is spent too
    events = server.receive(encoder.encode(WindowUpdate(1, 4464)))
    assert events == [spdy.WindowUpdated(1)]
    assert server.send_window(1) == 0  # the stream may, the session may not
    server.receive(encoder.encode(WindowUpdate(0, 10000)))
    assert server.send_data(1, bytes(4464), fin=True) == 4464
    assert not server.is_open(1)
    assert server.send_window(3) == 10000 - 4464


def test_initial_window_size_setting_moves_open_windows() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1)
    server.send_data(1, bytes(1000))
    server.receive(encoder.encode(Settings((Setting(spdy.SettingId.INITIAL_WINDOW_SIZE, 1024),))))
    assert server.send_window(1) == 24  # 1024 - 1000: the change applies to sent bytes too
    server.receive(encoder.encode(Settings((Setting(spdy.SettingId.INITIAL_WINDOW_SIZE, 512),))))
    assert server.send_window(1) == 0  # negative now: nothing may be sent
    opened(server, encoder, 3)
    assert server.send_window(3) == 512


def test_receive_windows_are_enforced_and_given_back() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1, 3)
    server.data_to_send()
    server.receive(encoder.encode(DataFrame(1, bytes(40000))))
    server.acknowledge(1, 20000)
    assert server.data_to_send() == b""  # less than half a window owed: nothing yet
    server.acknowledge(1, 20000)
    frames = decode_all(server.data_to_send())
    assert frames == [WindowUpdate(0, 40000), WindowUpdate(1, 40000)]
    server.receive(encoder.encode(DataFrame(3, bytes(65537))))
    assert decode_all(server.data_to_send()) == [RstStream(3, RstStatus.FLOW_CONTROL_ERROR)]


def test_window_update_overflow_resets_the_stream() -> None:
    server, encoder = Session(), FrameEncoder()
    opened(server, encoder, 1)
    server.receive(encoder.encode(WindowUpdate(1, 2**31 - 1)))
    assert decode_all(server.data_to_send())[-1] == RstStream(1, RstStatus.FLOW_CONTROL_ERROR)


def test_without_flow_control_nothing_waits_and_nothing_is_announced() -> None:
    """How kubectl's spdystream behaves: no WINDOW_UPDATE ever, whatever was sent."""
    server, encoder = Session(flow_control=False), FrameEncoder()
    opened(server, encoder, 1)
    server.data_to_send()
    server.receive(encoder.encode(DataFrame(1, bytes(200000))))
    server.acknowledge(1, 200000)
    assert server.send_data(1, bytes(300000)) == 300000
    assert not any(isinstance(f, WindowUpdate) for f in decode_all(server.data_to_send()))


def test_a_megabyte_through_windows_between_two_sessions() -> None:
    client, server = Session(client=True), Session()
    stream = client.open_stream({"streamtype": ["data"], "port": ["80"]})
    assert stream == 1
    payload, received = bytes(range(256)) * 4096, bytearray()
    sent = 0
    for _ in range(200):
        sent += client.send_data(stream, payload[sent:], fin=True)
        for event in server.receive(client.data_to_send()):
            if isinstance(event, StreamOpened):
                server.reply(event.stream_id)
            elif isinstance(event, DataReceived):
                received += event.data
                server.acknowledge(event.stream_id, len(event.data))
        client.receive(server.data_to_send())
        if sent == len(payload):
            break
    assert bytes(received) == payload
    assert not client.is_open(stream)
