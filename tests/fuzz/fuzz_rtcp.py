"""Atheris target for the RTCP parser.

    python tests/fuzz/fuzz_rtcp.py -max_total_time=10 -seed=1 tests/fuzz/corpus/rtcp

Each input is one datagram. ``parse_compound`` may refuse it with a
ValueError; any other exception is a crash. What it accepts must serialize
back to no more bytes than it came in (padding and slack are dropped, nothing
is invented), parse again to the same packets, and go through ``compound``
unchanged (it starts with an SR or RR already). The seed corpus holds every
valid and malformed packet of the tables in tests/test_rtcp.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.rtp.rtcp"]):
    from gateway.rtp import rtcp


def test_one_input(data: bytes) -> None:
    """Parse one datagram and check every invariant of what comes back."""
    try:
        packets = rtcp.parse_compound(data)
    except ValueError:
        return
    assert packets and isinstance(packets[0], rtcp.SenderReport | rtcp.ReceiverReport)
    parts = [p.serialize() for p in packets]
    again = b"".join(parts)
    assert len(again) <= len(data), (len(again), len(data))
    assert rtcp.parse_compound(again) == packets
    assert rtcp.compound(*parts) == again
    for p in packets:
        if isinstance(p, rtcp.SenderReport | rtcp.ReceiverReport):
            assert len(p.reports) <= rtcp.MAX_REPORTS
            for block in p.reports:
                assert 0.0 <= block.fraction_lost < 1.0
        if isinstance(p, rtcp.SenderReport):
            rtcp.unix_from_ntp(p.ntp_timestamp)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
