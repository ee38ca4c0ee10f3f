"""Atheris target for the RTSP Transport header (gateway/rtsp/transport.py).

    python tests/fuzz/fuzz_transport.py -max_total_time=10 -seed=1 tests/fuzz/corpus/transport

Input: the header value as the RTSP parser hands it over (UTF-8 with
surrogate escapes). ``parse_transport`` returns the specs it can serve or
raises ValueError (``UnsupportedTransport`` included); anything else is a
crash. Every spec it returns is within the limits, serializes to header text
a Headers object accepts and the wire can carry, and parses back to itself;
the whole list written back parses back to the same list. The seed corpus is
the case table of tests/test_rtsp_transport.py and the clients' offers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.rtsp.transport"]):
    from gateway.rtsp.transport import (
        MAX_HEADER,
        MAX_SPECS,
        UnsupportedTransport,
        parse_transport,
        serialize_transport,
    )

from gateway.rtsp.message import Headers  # noqa: E402


def test_one_input(data: bytes) -> None:
    """Parse one header value; write back what it gives and parse that again."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        specs = parse_transport(text)
    except UnsupportedTransport as e:
        assert str(e), "a 461 without a reason"
        return
    except ValueError as e:
        assert str(e), "a 400 without a reason"
        return
    assert 1 <= len(specs) <= MAX_SPECS, len(specs)
    for spec in specs:
        line = spec.serialize()
        Headers([("Transport", line)]).items()[0][1].encode("utf-8", "surrogateescape")
        if len(line) <= MAX_HEADER:
            assert parse_transport(line) == [spec], (line, spec)
        if spec.interleaved is not None:
            assert all(0 <= c <= 255 for c in spec.interleaved), spec
    written = serialize_transport(specs)
    if len(written) <= MAX_HEADER:
        assert parse_transport(written) == specs, (written, specs)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
