"""The RTSP message codec: byte-exact table, every split point, limits, API, properties."""

from __future__ import annotations

import itertools
import tracemalloc
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rtsp.message import (
    REASONS,
    Event,
    Headers,
    Interleaved,
    InterleavedDropped,
    Limits,
    ParseError,
    Request,
    Response,
    RtspParser,
)

from .rtsp_cases import (
    CASES,
    CORPUS_DIR,
    HTTP_GET,
    HTTP_GET_HEAD,
    HTTP_POST,
    NEXT,
    OPTIONS_2,
    Case,
    Role,
    corpus_files,
    decode_fuzz_input,
)

CASE_PARAMS = [pytest.param(c, id=c.name) for c in CASES]
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
STATUSES = {400, 413, 414, 505}


def run_chunks(case: Case, chunks: list[bytes]) -> tuple[tuple[Event, ...], RtspParser]:
    """Feed chunks one by one, checking the memory bound after each."""
    parser = RtspParser(case.role, case.limits)
    events: list[Event] = []
    for chunk in chunks:
        events += parser.feed(chunk)
        assert parser.buffered <= case.limits.max_buffered
    return tuple(events), parser


def split_points(stream: bytes) -> range:
    """Every position, or a spread of them for the one 64 KiB case."""
    if len(stream) <= 4096:
        return range(len(stream) + 1)
    return range(0, len(stream) + 1, 509)


# -- the table ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_one_feed(case: Case) -> None:
    events, parser = run_chunks(case, [case.stream])
    assert events == case.expected
    fatal = [e for e in events if isinstance(e, ParseError) and not e.recoverable]
    assert parser.failed is bool(fatal)
    if fatal:
        assert events[-1] is fatal[0], "nothing comes after an unrecoverable error"
        assert parser.buffered == 0
        assert parser.feed(NEXT) == []
    for e in events:
        if isinstance(e, ParseError):
            assert e.status in STATUSES


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_every_split_point(case: Case) -> None:
    s = case.stream
    for i in split_points(s):
        events, _ = run_chunks(case, [s[:i], s[i:]])
        assert events == case.expected, f"split at {i}"


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_single_bytes(case: Case) -> None:
    s = case.stream
    events, _ = run_chunks(case, [s[i : i + 1] for i in range(len(s))])
    assert events == case.expected


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES if c.exact])
def test_table_serializes_back_exactly(case: Case) -> None:
    out = b""
    for event in case.expected:
        assert isinstance(event, Request | Response | Interleaved)
        out += event.serialize()
    assert out == case.stream


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_feed_accepts_buffers(kind: type) -> None:
    case = CASES[0]
    assert tuple(RtspParser("server").feed(kind(case.stream))) == case.expected


def test_corpus_matches_table() -> None:
    wanted = corpus_files()
    on_disk = {p.name: p.read_bytes() for p in CORPUS_DIR.iterdir()}
    assert on_disk == wanted, "run: .venv/bin/python -m tests.rtsp_cases"
    assert 30 <= len(wanted) <= 100
    for data in wanted.values():
        assert decode_fuzz_input(data) is not None


# -- the HTTP tunnel and other connection-level behaviour ---------------------------------


def test_http_request_is_handed_over_with_what_followed() -> None:
    parser = RtspParser("server")
    [error] = parser.feed(HTTP_GET[:10]) + parser.feed(HTTP_GET[10:] + b"more bytes")
    assert isinstance(error, ParseError)
    assert error.is_http and not error.recoverable and error.status == 505
    assert error.head == HTTP_GET_HEAD
    assert error.head.headers.get("X-SessionCookie") == "0f3d9a1c66e0"
    assert parser.take_unparsed() == b"more bytes"
    assert parser.take_unparsed() == b""
    assert parser.feed(b"later") == []
    assert parser.take_unparsed() == b""


def test_http_post_body_start_is_kept_for_the_tunnel() -> None:
    parser = RtspParser("server")
    body = HTTP_POST.partition(b"\r\n\r\n")[2]
    [error] = parser.feed(HTTP_POST)
    assert isinstance(error, ParseError) and error.is_http
    assert parser.take_unparsed() == body


def test_rtsp_errors_are_not_http() -> None:
    [error] = RtspParser("server").feed(b"OPTIONS * RTSP/2.0\r\n\r\n")
    assert isinstance(error, ParseError) and not error.is_http
    [error] = RtspParser("server").feed(b"garbage\r\n")
    assert isinstance(error, ParseError) and not error.is_http and error.head is None


def test_error_head_carries_the_cseq_to_echo() -> None:
    [error, good] = RtspParser("server").feed(
        b"DESCRIBE rtsp://cam/1 RTSP/1.0\r\nCSeq: 41\r\nbroken\r\n\r\n" + NEXT
    )
    assert isinstance(error, ParseError) and isinstance(error.head, Request)
    assert error.head.cseq == 41 and error.head.method == "DESCRIBE"
    assert good == OPTIONS_2


# -- memory and limits ---------------------------------------------------------------------


def test_body_over_limit_is_skipped_without_being_held() -> None:
    parser = RtspParser("server", Limits(max_body=1000))
    size = 4 << 20
    head = b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: %d\r\n\r\n" % size
    events = parser.feed(head)
    assert [(e.status, e.recoverable) for e in events if isinstance(e, ParseError)] == [(413, True)]
    chunk = (b"OPTIONS * RTSP/1.0\r\n\r\n" * 2979)[: 1 << 16]  # look-alikes, 64 KiB
    for _ in range(size // len(chunk)):
        assert parser.feed(chunk) == []
        assert parser.buffered == 0
    assert parser.feed(NEXT) == [OPTIONS_2]


def test_interleaved_over_limit_is_skipped_without_being_held() -> None:
    parser = RtspParser("server", Limits(max_interleaved=1500))
    events = parser.feed(b"$\x01\xff\xff")
    assert events == [InterleavedDropped(1, 65535)]
    for _ in range(65535 // 5):
        assert parser.feed(b"\r\n$\x00\x05") == []
        assert parser.buffered == 0
    assert parser.feed(NEXT) == [OPTIONS_2]


def test_body_at_limit_is_held_within_the_bound() -> None:
    limits = Limits(max_body=1 << 16)
    parser = RtspParser("client", limits)
    head = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 65536\r\n\r\n"
    assert parser.feed(head) == []
    for _ in range(255):
        assert parser.feed(b"v" * 256) == []
        assert 0 < parser.buffered <= limits.max_buffered
    [response] = parser.feed(b"v" * 256)
    assert isinstance(response, Response) and len(response.body) == 1 << 16
    assert parser.buffered == 0


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (b"OPTIONS rtsp://", "request line longer than 4096 bytes"),
        (b"OPTIONS * RTSP/1.0\r\nX-Long: ", "header line longer than 8192 bytes"),
        (b"OPTIONS * RTSP/1.0\r\n" + (b"X-Header: " + b"v" * 188 + b"\r\n") * 63 + b"X-A: ",
         "header block longer than 16384 bytes"),
    ],
)  # fmt: skip
def test_endless_line_is_refused_before_it_is_copied(prefix: bytes, message: str) -> None:
    # One 8 MiB chunk without a line break: the parser copies at most its limit of it.
    chunk = prefix + b"a" * (8 << 20)
    parser = RtspParser("server")
    tracemalloc.start()
    try:
        events = parser.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(e.status, e.message) for e in events if isinstance(e, ParseError)] == [
        (414 if b"\r\n" not in prefix else 400, message)
    ]
    assert peak < 256 << 10, f"{peak} bytes allocated"
    assert parser.buffered == 0 and parser.failed


def test_many_small_feeds_of_an_endless_line_stop_at_the_limit() -> None:
    parser = RtspParser("server", Limits(max_start_line=100))
    events: list[Event] = []
    for _ in range(99):
        events += parser.feed(b"O")
        assert parser.buffered <= 99
    assert events == []
    assert [e.status for e in parser.feed(b"O") if isinstance(e, ParseError)] == [414]


def test_limits_are_validated() -> None:
    assert Limits().max_buffered == 4096 + 16384 + 65536
    assert Limits(max_interleaved=65535, max_body=0).max_buffered == 4 + 65535
    with pytest.raises(ValueError, match="max_headers must be an integer >= 1, got 0"):
        Limits(max_headers=0)
    with pytest.raises(ValueError, match="max_body must be an integer >= 0, got -1"):
        Limits(max_body=-1)
    Limits(max_body=0)  # no bodies at all is a valid policy


# -- API ----------------------------------------------------------------------------------


def test_headers_multimap() -> None:
    h = Headers([("CSeq", "1"), ("Transport", "a"), ("transport", "b")])
    assert h.get("cseq") == "1" and h.get("TRANSPORT") == "a"
    assert h.get("Missing") is None and h.get("Missing", "x") == "x"
    assert h.get_all("Transport") == ["a", "b"]
    assert "CSEQ" in h and "Session" not in h and 5 not in h
    h.add("Session", "  abc ;timeout=60\t")
    assert h.get("session") == "abc ;timeout=60"
    h.set("TRANSPORT", "c")
    assert h.items() == [("CSeq", "1"), ("TRANSPORT", "c"), ("Session", "abc ;timeout=60")]
    h.set("Server", "coaxgate")
    assert list(h) == ["CSeq", "TRANSPORT", "Session", "Server"] and len(h) == 4
    h.remove("session")
    assert "Session" not in h
    copy = h.copy()
    copy.add("X", "1")
    assert "X" not in h and copy != h
    assert Headers({"A": "1", "B": "2"}).items() == [("A", "1"), ("B", "2")]
    assert Headers(h) == h and Headers(h) is not h
    with pytest.raises(TypeError):
        hash(h)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Bad Name", "x", "invalid header name 'Bad Name'"),
        ("", "x", "invalid header name ''"),
        ("X:", "x", "invalid header name"),
        ("X", "a\r\nInjected: 1", "header X value contains a control character"),
        ("X", "a\nb", "control character"),
        ("X", "a\x00b", "control character"),
    ],
)
def test_headers_refuse_what_would_break_the_message(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Headers().add(name, value)
    with pytest.raises(ValueError, match=message):
        Headers().set(name, value)


def test_request_serialize() -> None:
    r = Request("SET_PARAMETER", "rtsp://cam/1", {"CSeq": "3", "Session": "ab"}, b"x: 1\r\n")
    assert r.serialize() == (
        b"SET_PARAMETER rtsp://cam/1 RTSP/1.0\r\nCSeq: 3\r\nSession: ab\r\n"
        b"Content-Length: 6\r\n\r\nx: 1\r\n"
    )
    assert r.cseq == 3
    assert Request("OPTIONS", "*").serialize() == b"OPTIONS * RTSP/1.0\r\n\r\n"
    assert Request.parse(r.serialize()) == Request(
        "SET_PARAMETER", "rtsp://cam/1",
        [("CSeq", "3"), ("Session", "ab"), ("Content-Length", "6")], b"x: 1\r\n",
    )  # fmt: skip
    assert "6 bytes" in repr(r)


def test_response_serialize_and_reasons() -> None:
    sdp = b"v=0\r\n"
    r = Response(200, headers=[("CSeq", "2"), ("Content-Type", "application/sdp")], body=sdp)
    assert r.serialize() == (
        b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\n"
        b"Content-Length: 5\r\n\r\nv=0\r\n"
    )
    assert Response(454).serialize() == b"RTSP/1.0 454 Session Not Found\r\n\r\n"
    assert Response(299, "Custom").reason == "Custom"
    assert Response.parse(r.serialize()).body == sdp
    wanted = {
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Time-out",
        413: "Request Entity Too Large", 414: "Request-URI Too Large",
        453: "Not Enough Bandwidth", 454: "Session Not Found",
        455: "Method Not Valid in This State", 457: "Invalid Range",
        459: "Aggregate Operation Not Allowed", 461: "Unsupported Transport",
        500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
        505: "RTSP Version Not Supported",
    }  # fmt: skip
    for status, reason in wanted.items():
        assert Response(status).reason == reason == REASONS[status]


def test_cseq() -> None:
    assert Request("OPTIONS", "*", {"cseq": "007"}).cseq == 7
    for bad in ("", "x", "-1", "1.5", "\u0661", "1" * 11):
        assert Request("OPTIONS", "*", {"CSeq": bad}).cseq is None
    assert Request("OPTIONS", "*").cseq is None
    assert Response(200, headers={"CSeq": "9"}).cseq == 9


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Request("BAD METHOD", "*"), "invalid method 'BAD METHOD'"),
        (lambda: Request("$PLAY", "*"), "invalid method '\\$PLAY'"),
        (lambda: Request("OPTIONS", ""), "invalid request URI ''"),
        (lambda: Request("OPTIONS", "rtsp://a b"), "invalid request URI"),
        (lambda: Request("OPTIONS", "*", version="RTSP 1.0"), "invalid version"),
        (lambda: Response(99), "status must be a 3-digit number, got 99"),
        (lambda: Response(1000), "got 1000"),
        (lambda: Response(431), "no default reason phrase for status 431; pass one"),
        (lambda: Response(200, "OK\r\nX: y"), "reason phrase contains a control character"),
        (lambda: Request("OPTIONS", "*", {"Content-Length": "3"}, b"ab").serialize(),
         "Content-Length header says '3' but the body is 2 bytes"),
        (lambda: Response(200, headers={"Content-Length": "1"}).serialize(),
         "Content-Length header says '1' but the body is 0 bytes"),
        (lambda: Interleaved(256, b""), "interleaved channel must be 0..255, got 256"),
        (lambda: Interleaved(0, bytes(65536)), "interleaved frame of 65536 bytes exceeds 65535"),
        (lambda: Interleaved.parse(b"$\x00\x00"), "not an interleaved frame"),
        (lambda: Interleaved.parse(b"$\x00\x00\x02a"), "interleaved frame says 2 bytes, 1 follow"),
        (lambda: RtspParser("proxy"), "role must be 'server' or 'client', got 'proxy'"),  # type: ignore[arg-type]
        (lambda: Request.parse(b"OPTIONS * RTSP/1.0\r\n\r\nOPTIONS * RTSP/1.0\r\n\r\n"),
         "expected one whole message, got 2 events"),
        (lambda: Request.parse(b"OPTIONS * RTSP/1.0\r\n\r\nOPT"),
         "3 bytes after the message are incomplete"),
        (lambda: Request.parse(b"OPTIONS * RTSP/1.0\r\nbad\r\n\r\n"), "malformed header line"),
        (lambda: Response.parse(b"RTSP/1.0 200 OK\r\n"), "got 0 events"),
    ],
)  # fmt: skip
def test_errors(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_parse_error_is_a_value_error_with_value_semantics() -> None:
    e = ParseError(400, "malformed header line 'x'", True, Request("OPTIONS", "*"))
    assert isinstance(e, ValueError) and str(e) == "malformed header line 'x'"
    assert e == ParseError(400, "malformed header line 'x'", True, Request("OPTIONS", "*"))
    assert e != ParseError(400, "malformed header line 'x'", False, Request("OPTIONS", "*"))
    assert "recoverable=True" in repr(e)
    with pytest.raises(ParseError) as info:
        Request.parse(b"OPTIONS * RTSP/1.0\r\nContent-Length: x\r\n\r\n")
    assert info.value.status == 400 and not info.value.recoverable


def test_interleaved_wire() -> None:
    frame = Interleaved(1, b"\x80\xc9\x00\x01\x00\x00\x00\x01")
    assert frame.serialize() == b"$\x01\x00\x08\x80\xc9\x00\x01\x00\x00\x00\x01"
    assert Interleaved.parse(frame.serialize()) == frame
    assert repr(frame) == "Interleaved(1, <8 bytes>)"


def test_feed_refuses_text() -> None:
    with pytest.raises(TypeError, match="feed\\(\\) takes bytes, not str"):
        RtspParser("server").feed("OPTIONS * RTSP/1.0\r\n\r\n")  # type: ignore[arg-type]


# -- properties ------------------------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
methods = st.sampled_from(
    ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER"]
) | tokens.filter(lambda t: not t.startswith("$"))
uris = st.sampled_from(["*", "rtsp://192.0.2.10:8554/cam1", "rtsp://[::1]/a?b=c&d=%20"]) | (
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs"), blacklist_characters="\x85"),
            min_size=1, max_size=30)
    .filter(lambda u: not any(c.isspace() for c in u))
)  # fmt: skip
texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(' \t:;,="'), max_size=40
).map(lambda v: v.strip(" \t"))
names = tokens.filter(lambda n: n.lower() != "content-length")
header_lists = st.lists(st.tuples(names, texts), max_size=8)
bodies = st.binary(max_size=200)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """A valid request (Content-Length comes from serialize)."""
    return Request(draw(methods), draw(uris), draw(header_lists), draw(bodies))


@st.composite
def responses(draw: st.DrawFn) -> Response:
    """A valid response, with a default or a custom reason phrase."""
    if draw(st.booleans()):
        return Response(draw(st.sampled_from(sorted(REASONS))), None, draw(header_lists),
                        draw(bodies))  # fmt: skip
    return Response(draw(st.integers(100, 999)), draw(texts), draw(header_lists), draw(bodies))


frames = st.builds(Interleaved, st.integers(0, 255), st.binary(max_size=300))


def as_received(message: Request | Response) -> Request | Response:
    """What the peer parses back: Content-Length added when there is a body."""
    headers = message.headers.copy()
    if message.body:
        headers.add("Content-Length", str(len(message.body)))
    if isinstance(message, Request):
        return Request(message.method, message.uri, headers, message.body)
    return Response(message.status, message.reason, headers, message.body)


def lf_only(data: bytes) -> bytes:
    """The same message with bare LF line endings in its head."""
    head, _, body = data.partition(b"\r\n\r\n")
    return head.replace(b"\r\n", b"\n") + b"\n\n" + body


@dataclass
class Drawn:
    """A generated stream, its role, cut into chunks, and the events it must give."""

    role: Role
    chunks: list[bytes]
    expected: list[Event]


@st.composite
def streams(draw: st.DrawFn) -> Drawn:
    """Messages of one role and interleaved frames, serialized, maybe LF-only, cut anywhere."""
    role: Role = draw(st.sampled_from(["server", "client"]))
    messages = requests() if role == "server" else responses()
    items = draw(st.lists(messages | frames, max_size=6))
    lf = draw(st.booleans())
    stream = b""
    expected: list[Event] = []
    for item in items:
        if isinstance(item, Interleaved):
            stream += item.serialize()
            expected.append(item)
        else:
            data = item.serialize()
            stream += draw(st.sampled_from([b"", b"\r\n"])) + (lf_only(data) if lf else data)
            expected.append(as_received(item))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in itertools.pairwise([0, *cuts, len(stream)])]
    return Drawn(role, chunks, expected)


@PROPERTY_SETTINGS
@given(drawn=streams())
def test_round_trip(drawn: Drawn) -> None:
    parser = RtspParser(drawn.role)
    events: list[Event] = []
    for chunk in drawn.chunks:
        events += parser.feed(chunk)
    assert events == drawn.expected
    assert parser.buffered == 0


FRAGMENTS = [
    b"OPTIONS * RTSP/1.0\r\n", b"RTSP/1.0 200 OK\r\n", b"CSeq: 1\r\n", b"\r\n", b"\n",
    b"Content-Length: 3\r\n", b"Content-Length: x\r\n", b" folded\r\n", b"$\x00\x00\x03",
    b"$\x01\x00\x40", b"GET / HTTP/1.1\r\n", b"OPTIONS * RTSP/2.0\r\n", b"bad line\r\n", b"abc",
]  # fmt: skip
junk = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=20), max_size=20).map(b"".join)
small_limits = st.builds(
    Limits, *(st.integers(1, 80) for _ in range(4)), st.integers(0, 40), st.integers(1, 80)
)


@PROPERTY_SETTINGS
@given(
    data=junk,
    role=st.sampled_from(["server", "client"]),
    limits=small_limits | st.just(Limits()),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_any_input_any_split(data: bytes, role: Role, limits: Limits, cuts: list[int]) -> None:
    whole = RtspParser(role, limits).feed(data)
    points = sorted(c % (len(data) + 1) for c in cuts)
    parser = RtspParser(role, limits)
    events: list[Event] = []
    for a, b in itertools.pairwise([0, *points, len(data)]):
        events += parser.feed(data[a:b])
        assert parser.buffered <= limits.max_buffered
    assert events == whole
    for i, e in enumerate(events):
        if isinstance(e, ParseError):
            assert e.status in STATUSES
            assert e.recoverable or i == len(events) - 1
        elif isinstance(e, Request | Response):
            assert len(e.body) <= limits.max_body
            assert len(e.headers) <= limits.max_headers
        elif isinstance(e, Interleaved):
            assert len(e.data) <= limits.max_interleaved
