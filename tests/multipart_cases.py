"""Byte-exact multipart cases shared by the scanner tests and the fuzz seeds.

Each case is a stream as a camera could send it, the scanner configuration,
and the events the scanner must return for it, whatever the chunking. Run this
file to rewrite the fuzz seed corpus after changing the table:

    .venv/bin/python tests/multipart_cases.py
"""

from __future__ import annotations

import importlib.util
import itertools
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.fuzz import seeds

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = seeds.CORPUS_ROOT / "multipart"

# ("part", headers, content_type, body) or ("error", reason, discarded)
Event = tuple[Any, ...]
Headers = tuple[tuple[bytes, bytes], ...]


def load_reference() -> ModuleType:
    """Import bench/pymultipart.py, the pure-Python reference scanner."""
    name = "pymultipart"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "pymultipart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def part(body: bytes, *headers: tuple[bytes, bytes]) -> Event:
    """Expected Part event; content_type is the first content-type header."""
    ctype = next((v for k, v in headers if k == b"content-type"), None)
    return ("part", tuple(headers), ctype, body)


def error(reason: str, discarded: int) -> Event:
    """Expected ScanError event."""
    return ("error", reason, discarded)


def as_event(obj: Any) -> Event:
    """Normalise a Part or ScanError of either implementation for comparison."""
    if hasattr(obj, "body"):
        return ("part", obj.headers, obj.content_type, obj.body)
    return ("error", obj.reason, obj.discarded)


def buffer_bound(boundary: bytes, max_part_size: int, max_header_size: int, padding: int) -> int:
    """Most bytes a scanner may hold between feeds (see ext/multipart.pyx)."""
    blen = len(boundary[2:] if boundary.startswith(b"--") else boundary)
    return max(max_header_size, max_part_size + blen + padding + 8)


@dataclass(frozen=True)
class Case:
    """One stream, its scanner configuration and the events expected from it."""

    name: str
    stream: bytes
    expected: tuple[Event, ...]
    closed: bool = False
    boundary: bytes = b"myboundary"
    max_part_size: int = 64
    max_header_size: int = 128
    max_headers: int = 4

    def scanner_args(self) -> tuple[bytes, dict[str, int]]:
        """Positional boundary and keyword limits for MultipartScanner."""
        return self.boundary, {
            "max_part_size": self.max_part_size,
            "max_header_size": self.max_header_size,
            "max_headers": self.max_headers,
        }


CT = (b"content-type", b"image/jpeg")


def cl(n: int) -> tuple[bytes, bytes]:
    """Expected Content-Length header."""
    return (b"content-length", str(n).encode())


D = b"--myboundary\r\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\r\n\x00--\xff\xd9"  # 18 bytes; CR, LF and dashes inside
HEAD_CT = b"Content-Type: image/jpeg\r\n"
GOOD = D + HEAD_CT + b"Content-Length: 2\r\n\r\nok\r\n"
GOOD_EVENT = part(b"ok", CT, cl(2))


def _bad_length(name: str, value: bytes) -> Case:
    """A part whose Content-Length is refused, then a good part."""
    head = HEAD_CT + b"Content-Length: " + value + b"\r\n\r\n"
    stream = D + head + b"body\r\n" + GOOD
    return Case(name, stream, (error("bad_content_length", len(head)), GOOD_EVENT))


_HUGE_HEAD = HEAD_CT + b"Content-Length: 1099511627776\r\n\r\n"  # 2**40
_BIG_HEAD = HEAD_CT + b"Content-Length: 65\r\n\r\n"
_CONFLICT_HEAD = b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n"
_NOCL_HEAD = HEAD_CT + b"\r\n"
_LONG_LINE = b"X-Long: " + b"a" * 200 + b"\r\n"
# Boundary text that is no delimiter: not at a line start, followed by other
# characters, closing dashes after padding, more than MAX_PADDING blanks.
_NOT_DELIMITERS = (
    b"a--myboundary\r\n"
    b"b myboundary\r\n"
    b"--myboundaryX\r\n"
    b"--myboundary-\r\n"
    b"--myboundary" + b" " * 17 + b"\r\n"
)

# The table keeps one line per protocol element; the formatter would split every "+".
# fmt: off
CASES: tuple[Case, ...] = (
    Case(
        "axis_content_length",
        D + HEAD_CT + b"Content-Length: 18\r\n\r\n" + JPEG + b"\r\n"
        + D + HEAD_CT + b"Content-Length: 3\r\n\r\nabc\r\n",
        (part(JPEG, CT, cl(18)), part(b"abc", CT, cl(3))),
    ),
    Case(
        "no_content_length",
        D + HEAD_CT + b"\r\n" + JPEG + b"\r\n"
        + D + HEAD_CT + b"\r\nworld\r\n"
        + D,
        (part(JPEG, CT), part(b"world", CT)),
    ),
    Case(
        "boundary_declared_with_dashes",
        D + HEAD_CT + b"Content-Length: 5\r\n\r\nhello\r\n"
        + D + HEAD_CT + b"\r\nbye\r\n"
        + D,
        (part(b"hello", CT, cl(5)), part(b"bye", CT)),
        boundary=b"--myboundary",
    ),
    Case(
        "no_dashes_in_stream",
        b"myboundary\r\n" + HEAD_CT + b"\r\nhello\r\n"
        b"myboundary\r\n" + HEAD_CT + b"Content-Length: 2\r\n\r\nhi\r\n"
        b"myboundary--\r\n",
        (part(b"hello", CT), part(b"hi", CT, cl(2))),
        closed=True,
    ),
    Case(
        "lf_only",
        b"--myboundary\nContent-Type: image/jpeg\n\nhello\n"
        b"--myboundary\nContent-Type: image/jpeg\nContent-Length: 3\n\nabc\n"
        b"--myboundary--\n",
        (part(b"hello", CT), part(b"abc", CT, cl(3))),
        closed=True,
    ),
    Case(
        "mixed_line_breaks",
        b"--myboundary\r\nContent-Type: image/jpeg\n\r\nline1\r\nline2\n"
        b"--myboundary\nContent-Type: image/jpeg\r\n\nx\r\r\n"
        b"--myboundary\r\n",
        (part(b"line1\r\nline2", CT), part(b"x\r", CT)),
    ),
    Case(
        "preamble",
        b"This is a preamble. It names myboundary\r\n"
        b"and --myboundary, but not at a line start.\r\n"
        b"x--myboundary\r\n"
        + D + HEAD_CT + b"Content-Length: 5\r\n\r\nhello",
        (part(b"hello", CT, cl(5)),),
    ),
    Case(
        "extra_crlfs_with_length",
        D + b"Content-Length: 5\r\n\r\nhello\r\n\r\n\r\n"
        + D + b"Content-Length: 2\r\n\r\nhi\n\n\r\n"
        + D + b"Content-Length: 1\r\n\r\n!",
        (part(b"hello", cl(5)), part(b"hi", cl(2)), part(b"!", cl(1))),
    ),
    Case(
        "extra_crlfs_without_length",
        b"\r\n\r\n"
        + D + b"\r\nhello\r\n\r\n"
        + D + b"\r\nbye\n\n"
        + D,
        (part(b"hello\r\n"), part(b"bye\n")),
    ),
    Case(
        "length_body_then_delimiter_without_line_break",
        D + b"Content-Length: 5\r\n\r\nhello"
        b"--myboundary\r\nContent-Length: 2\r\n\r\nhi"
        b"myboundary\r\nContent-Length: 1\r\n\r\n!",
        (part(b"hello", cl(5)), part(b"hi", cl(2)), part(b"!", cl(1))),
    ),
    Case(
        "junk_after_length_body",
        D + b"Content-Length: 5\r\n\r\nhellogarbage --myboundary\r\nmore garbage\r\n"
        + GOOD,
        (part(b"hello", cl(5)), GOOD_EVENT),
    ),
    Case(
        "closing_delimiter",
        D + HEAD_CT + b"Content-Length: 5\r\n\r\nhello\r\n"
        b"--myboundary--\r\n"
        + GOOD,
        (part(b"hello", CT, cl(5)),),
        closed=True,
    ),
    Case(
        "closing_delimiter_ends_body",
        D + HEAD_CT + b"\r\nlast\r\n--myboundary--",
        (part(b"last", CT),),
        closed=True,
    ),
    Case(
        "closing_delimiter_in_preamble",
        b"--myboundary--\r\n" + GOOD,
        (),
        closed=True,
    ),
    Case(
        "empty_bodies",
        D + b"Content-Length: 0\r\n\r\n\r\n"
        + D + HEAD_CT + b"\r\n\r\n"
        + D + b"X-A: 1\r\n\r\n"
        + D + b"\r\n\r\n"
        + D,
        (part(b"", cl(0)), part(b"", CT), part(b"", (b"x-a", b"1")), part(b"")),
    ),
    Case(
        "odd_header_spacing_and_case",
        D + b"CONTENT-TYPE:image/jpeg\r\n"
        b"content-length :  3 \r\n"
        b"X-Odd:\t spaced value\t\r\n"
        b"X-Time: 12:34:56\r\n"
        b"\r\nabc",
        (
            part(
                b"abc",
                (b"content-type", b"image/jpeg"),
                (b"content-length", b"3"),
                (b"x-odd", b"spaced value"),
                (b"x-time", b"12:34:56"),
            ),
        ),
    ),
    Case(
        "empty_header_value_and_repeated_headers",
        D + b"X-Empty:\r\n"
        b"Content-Type: image/jpeg\r\n"
        b"content-type: text/plain\r\n"
        b"Content-Length: 2\r\n"
        b"\r\nhi",
        (
            part(
                b"hi",
                (b"x-empty", b""),
                (b"content-type", b"image/jpeg"),
                (b"content-type", b"text/plain"),
                cl(2),
            ),
        ),
    ),
    Case(
        "same_content_length_twice",
        D + b"Content-Length: 2\r\ncontent-length: 002\r\n\r\nhi",
        (part(b"hi", cl(2), (b"content-length", b"002")),),
    ),
    Case(
        "too_many_headers",
        D + b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\nbody\r\n" + GOOD,
        (error("too_many_headers", len(b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n")), GOOD_EVENT),
    ),
    Case(
        "max_headers_exactly",
        D + b"A: 1\r\nB: 2\r\nC: 3\r\nContent-Length: 2\r\n\r\nok",
        (part(b"ok", (b"a", b"1"), (b"b", b"2"), (b"c", b"3"), cl(2)),),
    ),
    Case(
        "oversized_header_block",
        D + HEAD_CT + _LONG_LINE + b"\r\nbody\r\n" + GOOD,
        (error("headers_too_large", len(HEAD_CT)), GOOD_EVENT),
    ),
    Case(
        "header_block_exactly_at_limit",
        D + b"X: " + b"a" * 121 + b"\r\n\r\nok\r\n" + D,  # 3 + 121 + 2 + 2 = 128 bytes
        (part(b"ok", (b"x", b"a" * 121)),),
    ),
    Case(
        "header_block_one_over_limit",
        D + b"X: " + b"a" * 122 + b"\r\n\r\nok\r\n" + GOOD,
        (error("headers_too_large", 3 + 122 + 2), GOOD_EVENT),
    ),
    Case(
        "bad_header",
        D + HEAD_CT + b"no colon here\r\n\r\nbody\r\n" + GOOD,
        (error("bad_header", len(HEAD_CT)), GOOD_EVENT),
    ),
    Case(
        "bad_header_empty_name",
        D + b" : value\r\n\r\nbody\r\n" + GOOD,
        (error("bad_header", 0), GOOD_EVENT),
    ),
    Case(
        "truncated_headers_then_delimiter",
        D + HEAD_CT + GOOD,  # no empty line: the next delimiter is read as a header
        (error("bad_header", len(HEAD_CT)), GOOD_EVENT),
    ),
    Case(
        "two_delimiters_in_a_row",
        D + GOOD,
        (error("bad_header", 0), GOOD_EVENT),
    ),
    _bad_length("content_length_non_numeric", b"abc"),
    _bad_length("content_length_negative", b"-5"),
    _bad_length("content_length_overflowing", b"9" * 20),
    _bad_length("content_length_hex", b"0x10"),
    _bad_length("content_length_inner_space", b"1 2"),
    _bad_length("content_length_empty", b""),
    Case(
        "content_length_conflicting",
        D + _CONFLICT_HEAD + b"abc\r\n" + GOOD,
        (error("bad_content_length", len(_CONFLICT_HEAD)), GOOD_EVENT),
    ),
    Case(
        "content_length_huge",
        D + _HUGE_HEAD + b"x" * 100 + b"\r\n" + GOOD,
        (error("part_too_large", len(_HUGE_HEAD)), GOOD_EVENT),
    ),
    Case(
        "content_length_over_limit",
        D + _BIG_HEAD + b"y" * 65 + b"\r\n" + GOOD,
        (error("part_too_large", len(_BIG_HEAD)), GOOD_EVENT),
    ),
    Case(
        "content_length_at_limit",
        D + HEAD_CT + b"Content-Length: 64\r\n\r\n" + b"z" * 64 + b"\r\n" + GOOD,
        (part(b"z" * 64, CT, cl(64)), GOOD_EVENT),
    ),
    Case(
        "no_length_at_limit",
        D + _NOCL_HEAD + b"z" * 64 + b"\r\n" + GOOD,
        (part(b"z" * 64, CT), GOOD_EVENT),
    ),
    Case(
        "no_length_one_over_limit_crlf",
        D + _NOCL_HEAD + b"z" * 65 + b"\r\n" + GOOD,
        (error("part_too_large", len(_NOCL_HEAD) + 65), GOOD_EVENT),
    ),
    Case(
        "no_length_one_over_limit_lf",
        D + _NOCL_HEAD + b"z" * 65 + b"\n" + GOOD,
        (error("part_too_large", len(_NOCL_HEAD) + 65), GOOD_EVENT),
    ),
    Case(
        "no_length_far_over_limit",
        D + _NOCL_HEAD + b"\x00\xff" * 150 + b"\r\n"
        b"--myboundary \r\n\r\nok\r\n"
        + D,
        (error("part_too_large", len(_NOCL_HEAD) + 65), part(b"ok")),
    ),
    Case(
        "boundary_inside_body_not_at_line_start",
        D + _NOCL_HEAD + _NOT_DELIMITERS + b"end\r\n" + D,
        (part(_NOT_DELIMITERS + b"end", CT),),
        max_part_size=256,
    ),
    Case(
        "delimiter_inside_length_body",
        D + b"Content-Length: 20\r\n\r\n" + b"ab\r\n--myboundary\r\ncd" + b"\r\n" + GOOD,
        (part(b"ab\r\n--myboundary\r\ncd", cl(20)), GOOD_EVENT),
    ),
    Case(
        "transport_padding",
        b"--myboundary \t \r\n" + HEAD_CT + b"\r\nhello\r\n"
        b"--myboundary" + b" " * 16 + b"\r\n" + HEAD_CT + b"\r\nbye\r\n"
        b"--myboundary\t--\r\nnot closing\r\n"
        b"--myboundary--",
        (part(b"hello", CT), part(b"bye\r\n--myboundary\t--\r\nnot closing", CT)),
        closed=True,
    ),
    Case(
        "single_letter_boundary",
        b"--b\r\nContent-Length: 3\r\n\r\nabb\r\n"
        b"b\r\n\r\nbbb-b\r\n"
        b"--b--",
        (part(b"abb", cl(3)), part(b"bbb-b")),
        closed=True,
        boundary=b"b",
    ),
    Case(
        "boundary_starting_with_dash",
        b"---x\r\n\r\none\r\n"
        b"-x\r\n\r\ntwo\r\n"
        b"---x--",
        (part(b"one"), part(b"two")),
        closed=True,
        boundary=b"---x",
    ),
    Case(
        "recovery_after_every_error",
        D + b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n" + GOOD
        + D + b"bad\r\n\r\n" + GOOD
        + D + b"Content-Length: x\r\n\r\n" + GOOD
        + D + b"Content-Length: 99\r\n\r\n" + GOOD
        + D + _LONG_LINE + GOOD
        + D + b"\r\n" + b"q" * 70 + b"\r\n" + GOOD,
        (
            error("too_many_headers", 24), GOOD_EVENT,
            error("bad_header", 0), GOOD_EVENT,
            error("bad_content_length", 21), GOOD_EVENT,
            error("part_too_large", 22), GOOD_EVENT,
            error("headers_too_large", 0), GOOD_EVENT,
            error("part_too_large", 2 + 65), GOOD_EVENT,
        ),
    ),
)
# fmt: on


# -- fuzz input format: shared by tests/fuzz/fuzz_multipart.py and its seed corpus ----------
#
#   1 byte   boundary length - 1 (taken modulo 70)
#   n bytes  boundary
#   2+2+1    max_part_size, max_header_size (little-endian uint16), max_headers
#   1 byte   number of split points k (modulo 16), then k little-endian uint16 offsets
#   rest     the stream


@dataclass(frozen=True)
class FuzzInput:
    """A decoded fuzz input: scanner configuration, stream and split points."""

    boundary: bytes
    max_part_size: int
    max_header_size: int
    max_headers: int
    stream: bytes
    splits: tuple[int, ...]

    def chunks(self) -> list[bytes]:
        """The stream cut at the split points."""
        cuts = [0, *self.splits, len(self.stream)]
        return [self.stream[a:b] for a, b in itertools.pairwise(cuts)]


def encode_fuzz_input(case: Case, splits: tuple[int, ...] = ()) -> bytes:
    """Encode a case (and split points) in the fuzz target's input format."""
    b = case.boundary
    out = bytearray([len(b) - 1]) + b
    out += struct.pack("<HHB", case.max_part_size, case.max_header_size, case.max_headers)
    out.append(len(splits))
    for s in splits:
        out += struct.pack("<H", s)
    return bytes(out + case.stream)


def decode_fuzz_input(data: bytes) -> FuzzInput | None:
    """Decode fuzzer bytes; None when too short to hold a configuration."""
    if not data:
        return None
    blen = data[0] % 70 + 1
    i = 1 + blen
    if len(data) < i + 6:
        return None
    boundary = data[1:i]
    max_part, max_header, max_headers = struct.unpack_from("<HHB", data, i)
    i += 5
    k = data[i] % 16
    i += 1
    if len(data) < i + 2 * k:
        return None
    raw = struct.unpack_from(f"<{k}H", data, i)
    stream = data[i + 2 * k :]
    splits = tuple(sorted({s % (len(stream) + 1) for s in raw}))
    return FuzzInput(boundary, max_part, max(max_header, 1), max_headers, stream, splits)


def corpus_files() -> dict[str, bytes]:
    """Seed corpus: every case whole, and every fourth case also cut at a few points."""
    files: dict[str, bytes] = {}
    for i, case in enumerate(CASES):
        files[case.name] = encode_fuzz_input(case)
        if i % 4 == 0:
            n = len(case.stream)
            files[case.name + "-split"] = encode_fuzz_input(case, (1, n // 3, n // 2, n - 3))
    return files


def write_corpus(directory: Path = CORPUS_DIR) -> None:
    """Rewrite the seed corpus directory from the table."""
    seeds.write_corpus(directory, corpus_files())


if __name__ == "__main__":
    write_corpus()
    print(f"wrote {len(corpus_files())} seeds to {CORPUS_DIR}")
