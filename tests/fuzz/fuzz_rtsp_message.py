"""Atheris target for the RTSP message parser.

    python tests/fuzz/fuzz_rtsp_message.py -max_total_time=10 -seed=1 tests/fuzz/corpus/rtsp_message

Input format (tests/rtsp_cases.py): role, limits, split points, then the
stream. Each input is fed whole, cut at the split points, and (when short)
byte by byte; any exception, any difference in events between the three, a
held byte count over ``Limits.max_buffered``, an event over its limit, an
event after an unrecoverable error, or a message that does not survive
serialize-then-parse is a crash. The seed corpus, generated from the case
table, starts the fuzzer at every state and error path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/ and tests/

with atheris.instrument_imports(include=["gateway.rtsp.message"]):
    from gateway.rtsp.message import (
        Event,
        Interleaved,
        InterleavedDropped,
        Limits,
        ParseError,
        Request,
        Response,
        RtspParser,
    )

from tests.rtsp_cases import decode_fuzz_input  # noqa: E402

STATUSES = {400, 413, 414, 505}
ROOMY = Limits(1 << 20, 1 << 20, 1 << 16, 1 << 20, 1 << 20, 65535)  # for re-parsing


def _check_events(events: list[Event], limits: Limits) -> None:
    for i, e in enumerate(events):
        if isinstance(e, ParseError):
            assert e.status in STATUSES, e
            assert e.recoverable or i == len(events) - 1, "event after an unrecoverable error"
        elif isinstance(e, Request | Response):
            assert len(e.body) <= limits.max_body
            assert len(e.headers) <= limits.max_headers
            again = RtspParser("server" if isinstance(e, Request) else "client", ROOMY).feed(
                e.serialize()
            )
            assert again == [e], (e, again)
        elif isinstance(e, Interleaved):
            assert len(e.data) <= limits.max_interleaved
        else:
            assert isinstance(e, InterleavedDropped), e
            assert e.size > limits.max_interleaved


def test_one_input(data: bytes) -> None:
    """Feed one fuzzer input whole, in chunks and byte by byte; check every invariant."""
    fi = decode_fuzz_input(data)
    if fi is None:
        return
    bound = fi.limits.max_buffered
    whole = RtspParser(fi.role, fi.limits)
    events = whole.feed(fi.stream)
    assert whole.buffered <= bound
    _check_events(events, fi.limits)

    parser = RtspParser(fi.role, fi.limits)
    chunked: list[Event] = []
    for chunk in fi.chunks():
        chunked += parser.feed(chunk)
        assert parser.buffered <= bound, (parser.buffered, bound)
    assert chunked == events, "depends on the split"
    assert parser.failed == whole.failed

    if len(fi.stream) <= 2048:
        parser = RtspParser(fi.role, fi.limits)
        single: list[Event] = []
        for i in range(len(fi.stream)):
            single += parser.feed(fi.stream[i : i + 1])
            assert parser.buffered <= bound
        assert single == events, "differs byte by byte"


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
