"""The multipart scanner: byte-exact table, every split point, properties, Cython vs reference."""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway._ext import multipart as cy

from .multipart_cases import (
    CASES,
    CORPUS_DIR,
    GOOD,
    GOOD_EVENT,
    Case,
    Event,
    Headers,
    as_event,
    buffer_bound,
    corpus_files,
    decode_fuzz_input,
    load_reference,
)

ref = load_reference()
IMPLS = [pytest.param(cy, id="cython"), pytest.param(ref, id="python")]
CASE_PARAMS = [pytest.param(c, id=c.name) for c in CASES]
PROPERTY_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def scanner_for(impl: ModuleType, case: Case) -> Any:
    """A scanner of impl configured as the case says."""
    boundary, limits = case.scanner_args()
    return impl.MultipartScanner(boundary, **limits)


def bound_for(impl: ModuleType, case: Case) -> int:
    """The documented limit on bytes held between feeds."""
    return buffer_bound(case.boundary, case.max_part_size, case.max_header_size, impl.MAX_PADDING)


def run_chunks(impl: ModuleType, case: Case, chunks: list[bytes]) -> tuple[tuple[Event, ...], Any]:
    """Feed chunks one by one; check the memory bound after each; return events and scanner."""
    scanner = scanner_for(impl, case)
    bound = bound_for(impl, case)
    events: list[Event] = []
    for chunk in chunks:
        events.extend(as_event(e) for e in scanner.feed(chunk))
        assert scanner.buffered <= bound
    return tuple(events), scanner


# -- the table ---------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_one_feed(impl: ModuleType, case: Case) -> None:
    events, scanner = run_chunks(impl, case, [case.stream])
    assert events == case.expected
    assert scanner.closed is case.closed
    if case.closed:
        assert scanner.buffered == 0


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_every_split_point(impl: ModuleType, case: Case) -> None:
    s = case.stream
    for i in range(len(s) + 1):
        events, scanner = run_chunks(impl, case, [s[:i], s[i:]])
        assert events == case.expected, f"split at {i}"
        assert scanner.closed is case.closed


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_single_bytes(impl: ModuleType, case: Case) -> None:
    s = case.stream
    events, scanner = run_chunks(impl, case, [s[i : i + 1] for i in range(len(s))])
    assert events == case.expected
    assert scanner.closed is case.closed


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_feed_accepts_buffers(impl: ModuleType, kind: type) -> None:
    case = CASES[0]
    scanner = scanner_for(impl, case)
    events = [as_event(e) for e in scanner.feed(kind(case.stream))]
    assert tuple(events) == case.expected


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_table_buffered_matches_reference(case: Case) -> None:
    # Same state after every byte: the two implementations hold the same bytes.
    a, b = scanner_for(cy, case), scanner_for(ref, case)
    for i in range(len(case.stream)):
        chunk = case.stream[i : i + 1]
        assert [as_event(e) for e in a.feed(chunk)] == [as_event(e) for e in b.feed(chunk)]
        assert a.buffered == b.buffered, f"after byte {i}"


def test_corpus_matches_table() -> None:
    wanted = corpus_files()
    on_disk = {p.name: p.read_bytes() for p in CORPUS_DIR.iterdir()}
    assert on_disk == wanted, "run: .venv/bin/python tests/multipart_cases.py"
    for data in wanted.values():
        assert decode_fuzz_input(data) is not None


# -- API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("value", "boundary"),
    [
        ("multipart/x-mixed-replace; boundary=myboundary", b"myboundary"),
        ("multipart/x-mixed-replace;boundary=--myboundary", b"myboundary"),
        ('multipart/x-mixed-replace; boundary="my boundary"', b"my boundary"),
        ('multipart/x-mixed-replace; boundary="--myboundary"', b"myboundary"),
        ('multipart/x-mixed-replace; charset=x; BOUNDARY = "a\\"b" ; x=1', b'a"b'),
        ('multipart/mixed; foo="a;boundary=x"; boundary=real', b"real"),
        (b"multipart/x-mixed-replace; boundary=abc  ", b"abc"),
        ("multipart/x-mixed-replace; boundary=" + "a" * 70, b"a" * 70),
        ("multipart/x-mixed-replace; boundary=--" + "a" * 70, b"a" * 70),
    ],
)
def test_boundary_from_content_type(impl: ModuleType, value: str | bytes, boundary: bytes) -> None:
    assert impl.boundary_from_content_type(value) == boundary


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("multipart/x-mixed-replace", "no boundary parameter"),
        ("multipart/x-mixed-replace; charset=utf-8", "no boundary parameter"),
        ("multipart/x-mixed-replace; boundary=", "boundary must be 1 to 70 characters, got 0"),
        ('multipart/x-mixed-replace; boundary=""', "got 0"),
        ("multipart/x-mixed-replace; boundary=--", "got 0"),
        ("multipart/x-mixed-replace; boundary=" + "a" * 71, "got 71"),
        ('multipart/x-mixed-replace; boundary="abc', "unterminated quoted boundary"),
        ("multipart/x-mixed-replace; boundary=\u00e9t\u00e9", "not ASCII"),
        (b"multipart/x-mixed-replace; boundary=a\x01b", "invalid character"),
        ('multipart/x-mixed-replace; boundary="abc "', "invalid character"),
    ],
)
def test_boundary_from_content_type_rejects(
    impl: ModuleType, value: str | bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        impl.boundary_from_content_type(value)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((b"",), {}, "boundary must be 1 to 70 bytes, got 0"),
        ((b"--",), {}, "got 0"),
        ((b"a" * 71,), {}, "got 71"),
        ((b"a\r\nb",), {}, "must not contain CR or LF"),
        ((b"b",), {"max_part_size": -1}, "max_part_size"),
        ((b"b",), {"max_header_size": 0}, "max_header_size"),
        ((b"b",), {"max_headers": -1}, "max_headers"),
    ],
)
def test_scanner_rejects_bad_configuration(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        impl.MultipartScanner(*args, **kwargs)


@pytest.mark.parametrize("impl", IMPLS)
def test_scanner_basics(impl: ModuleType) -> None:
    scanner = impl.MultipartScanner(b"--myboundary")
    assert scanner.boundary == b"myboundary"
    assert not scanner.closed
    assert scanner.buffered == 0
    with pytest.raises(TypeError):
        scanner.feed("text")
    with pytest.raises(TypeError):
        impl.MultipartScanner(b"b", 100)  # limits are keyword-only
    assert scanner.feed(b"") == []
    assert [as_event(e) for e in scanner.feed(GOOD)] == [GOOD_EVENT]
    scanner.feed(b"--myboundary--\r\n")
    assert scanner.closed
    assert scanner.feed(GOOD) == []
    assert scanner.buffered == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_events_are_values(impl: ModuleType) -> None:
    p = impl.Part(((b"content-type", b"image/jpeg"),), b"image/jpeg", b"x" * 1000)
    assert p == impl.Part(((b"content-type", b"image/jpeg"),), b"image/jpeg", b"x" * 1000)
    assert p != impl.Part((), None, b"x")
    assert hash(p) == hash(impl.Part(p.headers, p.content_type, p.body))
    e = impl.ScanError("bad_header", 3)
    assert (e.reason, e.discarded) == ("bad_header", 3)
    assert e == impl.ScanError("bad_header", 3) and e != impl.ScanError("bad_header", 4)
    with pytest.raises(AttributeError):
        p.body = b""
    with pytest.raises(AttributeError):
        e.reason = "x"
    assert "ScanError" in repr(e) and "bad_header" in repr(e)


def test_part_repr_hides_the_body() -> None:
    assert repr(cy.Part((), b"image/jpeg", b"x" * 5000)).count("x") < 10


# -- memory and time bounds ---------------------------------------------------------------


def _noise(n: int) -> bytes:
    """Pseudo-random bytes without LF, so that no delimiter line can hide in them."""
    return random.Random(n).randbytes(n).replace(b"\n", b"\x0b")


@pytest.mark.parametrize("impl", IMPLS)
def test_huge_content_length_holds_nothing(impl: ModuleType) -> None:
    scanner = impl.MultipartScanner(b"myboundary")
    head = b"--myboundary\r\nContent-Length: 1099511627776\r\n\r\n"
    events = [as_event(e) for e in scanner.feed(head)]
    assert events == [("error", "part_too_large", len(head) - 14)]
    noise = _noise(1 << 16)
    for _ in range(64):  # 4 MiB
        assert scanner.feed(noise) == []
        assert scanner.buffered <= len(b"myboundary") + impl.MAX_PADDING + 3
    assert [as_event(e) for e in scanner.feed(b"\r\n" + GOOD)] == [GOOD_EVENT]


@pytest.mark.parametrize("impl", IMPLS)
def test_unterminated_body_is_refused_and_memory_stays_bounded(impl: ModuleType) -> None:
    limit = 256 << 10
    scanner = impl.MultipartScanner(b"myboundary", max_part_size=limit)
    bound = buffer_bound(b"myboundary", limit, 8192, impl.MAX_PADDING)
    events = [as_event(e) for e in scanner.feed(b"--myboundary\r\n\r\n")]
    noise = _noise(1 << 16)
    for _ in range(32):  # 2 MiB, eight times the limit
        events += [as_event(e) for e in scanner.feed(noise)]
        assert scanner.buffered <= bound
    assert events == [("error", "part_too_large", 2 + limit + 1)]
    assert [as_event(e) for e in scanner.feed(b"\r\n" + GOOD)] == [GOOD_EVENT]


@pytest.mark.parametrize("impl", IMPLS)
def test_endless_header_line_is_bounded(impl: ModuleType) -> None:
    scanner = impl.MultipartScanner(b"myboundary", max_header_size=1000)
    events = [as_event(e) for e in scanner.feed(b"--myboundary\r\nX: ")]
    for _ in range(100):
        events += [as_event(e) for e in scanner.feed(b"y" * 997)]
        assert scanner.buffered <= 1000
    assert events == [("error", "headers_too_large", 0)]


def test_one_huge_chunk_is_held_within_the_bound() -> None:
    scanner = cy.MultipartScanner(b"myboundary", max_part_size=1 << 20)
    body = _noise(3 << 20)
    events = scanner.feed(b"--myboundary\r\n\r\n" + body)
    assert [as_event(e) for e in events] == [("error", "part_too_large", 2 + (1 << 20) + 1)]
    assert scanner.buffered <= 64


def test_search_is_incremental() -> None:
    # 16 MiB in 1 KiB chunks: rescanning the body on every feed would be ~128 GiB of
    # searching (minutes); the incremental search reads each byte once.
    scanner = cy.MultipartScanner(b"myboundary", max_part_size=32 << 20)
    scanner.feed(b"--myboundary\r\nContent-Type: image/jpeg\r\n\r\n")
    chunk = _noise(1024)
    t0 = time.perf_counter()
    for _ in range(16 << 10):
        scanner.feed(chunk)
    events = scanner.feed(b"\r\n--myboundary\r\n")
    elapsed = time.perf_counter() - t0
    assert [len(e.body) for e in events if isinstance(e, cy.Part)] == [16 << 20]
    assert elapsed < 5.0, f"{elapsed:.1f}s: the search is not incremental"


def test_threads_share_nothing() -> None:
    # Long searches run without the GIL; scanners in different threads stay independent.
    body = _noise(3 << 18)
    stream = (b"--myboundary\r\n\r\n" + body + b"\r\n") * 4 + b"--myboundary--"
    results: list[list[bytes]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        scanner = cy.MultipartScanner(b"myboundary")
        for k in range(0, len(stream), 1 << 17):
            events = scanner.feed(stream[k : k + (1 << 17)])
            results[i].extend(e.body for e in events if isinstance(e, cy.Part))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[body] * 4] * 4


# -- properties ------------------------------------------------------------------------------

BOUNDARIES = [b"myboundary", b"--myboundary", b"b", b"ThisRandomString", b"---x", b"a b"]
NAMES_CT = [b"Content-Type", b"content-type", b"CONTENT-TYPE", b"Content-type"]
NAMES_CL = [b"Content-Length", b"content-length", b"CONTENT-LENGTH", b"Content-length"]
SEPARATORS = [b": ", b":", b" : ", b":\t", b":  "]
TRAILERS = [b"", b" ", b"\t", b" \t "]


def _normalised(boundary: bytes) -> bytes:
    return boundary[2:] if boundary.startswith(b"--") else boundary


def _without(data: bytes, token: bytes) -> bytes:
    while token in data:
        data = data.replace(token, b"")
    return data


@dataclass
class Drawn:
    """A generated valid stream, cut into chunks, and what it must give back."""

    boundary: bytes
    limit: int
    parts: list[tuple[bytes, Headers]]
    closed: bool
    chunks: list[bytes]


@st.composite
def well_formed(draw: st.DrawFn) -> Drawn:
    """Valid parts with random header spellings, with or without Content-Length."""
    boundary = draw(st.sampled_from(BOUNDARIES))
    b = _normalised(boundary)
    limit = draw(st.integers(0, 300))
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    delim = (b"--" if draw(st.booleans()) else b"") + b
    preamble = _without(draw(st.binary(max_size=30)), b)
    out = bytearray(preamble + eol if preamble else b"")
    parts: list[tuple[bytes, Headers]] = []
    for _ in range(draw(st.integers(0, 6))):
        with_length = draw(st.booleans())
        body = draw(st.binary(max_size=limit))
        if not with_length:
            body = _without(body, b)
            if eol == b"\n":
                body = body.rstrip(b"\r")  # else its CR would pair with the LF
        headers: list[tuple[bytes, bytes]] = []
        lines: list[bytes] = []
        if draw(st.booleans()):
            lines.append(
                draw(st.sampled_from(NAMES_CT))
                + draw(st.sampled_from(SEPARATORS))
                + b"image/jpeg"
                + draw(st.sampled_from(TRAILERS))
            )
            headers.append((b"content-type", b"image/jpeg"))
        if with_length:
            lines.append(
                draw(st.sampled_from(NAMES_CL))
                + draw(st.sampled_from(SEPARATORS))
                + str(len(body)).encode()
                + draw(st.sampled_from(TRAILERS))
            )
            headers.append((b"content-length", str(len(body)).encode()))
        if draw(st.booleans()):
            lines.append(b"X-Frame:" + str(len(parts)).encode())
            headers.append((b"x-frame", str(len(parts)).encode()))
        order = draw(st.permutations(range(len(lines))))
        out += delim + b" " * draw(st.integers(0, 2)) + eol
        out += b"".join(lines[i] + eol for i in order) + eol + body
        out += draw(st.sampled_from([b"", eol, eol * 3])) if with_length else eol
        parts.append((body, tuple(headers[i] for i in order)))
    closed = draw(st.booleans())
    out += delim + (b"--" if closed else b"") + eol
    stream = bytes(out)
    cuts = [0, *sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8))), len(stream)]
    chunks = [stream[lo:hi] for lo, hi in itertools.pairwise(cuts)]
    return Drawn(boundary, limit, parts, closed, chunks)


@pytest.mark.parametrize("impl", IMPLS)
@PROPERTY_SETTINGS
@given(drawn=well_formed())
def test_bodies_come_back_exactly(impl: ModuleType, drawn: Drawn) -> None:
    scanner = impl.MultipartScanner(drawn.boundary, max_part_size=drawn.limit)
    bound = buffer_bound(drawn.boundary, drawn.limit, 8192, impl.MAX_PADDING)
    events = []
    for chunk in drawn.chunks:
        events += scanner.feed(chunk)
        assert scanner.buffered <= bound
    assert [(e.body, e.headers) for e in events] == drawn.parts
    assert scanner.closed is drawn.closed


TOKENS = [
    b"--",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b"-",
    b"x",
    b"\x00\xff",
    b"Content-Length: 3",
    b"Content-Length: 70",
    b"Content-Length: 1099511627776",
    b"Content-Length: x",
    b"Content-Type: image/jpeg",
    b"X: 1",
]


@st.composite
def messy(draw: st.DrawFn) -> tuple[bytes, dict[str, int], bytes, list[int]]:
    """Delimiter-rich garbage with small limits, and split points."""
    boundary = draw(st.sampled_from(BOUNDARIES))
    b = _normalised(boundary)
    tokens = [*TOKENS, b, b"--" + b, b"\r\n--" + b + b"\r\n", b + b"--", b"\r\n\r\n"]
    pieces = draw(st.lists(st.one_of(st.sampled_from(tokens), st.binary(max_size=12)), max_size=60))
    stream = b"".join(pieces)
    limits = {
        "max_part_size": draw(st.integers(0, 40)),
        "max_header_size": draw(st.integers(1, 60)),
        "max_headers": draw(st.integers(0, 3)),
    }
    splits = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    return boundary, limits, stream, splits


@settings(PROPERTY_SETTINGS, max_examples=1500)
@given(drawn=messy())
def test_cython_matches_reference_on_messy_streams(drawn: Any) -> None:
    boundary, limits, stream, splits = drawn
    cuts = [0, *splits, len(stream)]
    a = cy.MultipartScanner(boundary, **limits)
    b = ref.MultipartScanner(boundary, **limits)
    bound = buffer_bound(
        boundary, limits["max_part_size"], limits["max_header_size"], cy.MAX_PADDING
    )
    all_events: list[Event] = []
    for lo, hi in itertools.pairwise(cuts):
        got = [as_event(e) for e in a.feed(stream[lo:hi])]
        assert got == [as_event(e) for e in b.feed(stream[lo:hi])]
        assert a.buffered == b.buffered <= bound
        assert a.closed == b.closed
        all_events += got
    whole = cy.MultipartScanner(boundary, **limits)
    assert [as_event(e) for e in whole.feed(stream)] == all_events
    for event in all_events:
        if event[0] == "part":
            assert len(event[3]) <= limits["max_part_size"]


@PROPERTY_SETTINGS
@given(drawn=well_formed())
def test_cython_matches_reference_on_valid_streams(drawn: Drawn) -> None:
    a = cy.MultipartScanner(drawn.boundary, max_part_size=drawn.limit)
    b = ref.MultipartScanner(drawn.boundary, max_part_size=drawn.limit)
    for chunk in drawn.chunks:
        assert [as_event(e) for e in a.feed(chunk)] == [as_event(e) for e in b.feed(chunk)]
        assert a.buffered == b.buffered
