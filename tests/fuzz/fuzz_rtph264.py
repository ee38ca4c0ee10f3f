"""Atheris target for RTP/H.264: depacketizer streams, packetizer round trips, SPS reading.

    python tests/fuzz/fuzz_rtph264.py -max_total_time=10 -seed=1 tests/fuzz/corpus/rtph264

The first byte picks the mode (modulo 3; tests/rtp_h264_cases.py writes the seeds):

0. a packet stream (tests/fuzz/common.py: initial sequence number, a
   max_access_unit selector, then records of control byte, 16-bit length and
   payload) pushed to the compiled depacketizer and to the pure-Python
   reference; any exception, any difference in output or counters, state held
   beyond max_access_unit, or an access unit that is not Annex B of H.264 NAL
   units is a crash;
1. a payload size selector and an Annex B access unit: the compiled packetizer
   must give the reference's payloads (or its exact ValueError), every payload
   within the size and every non-final FU-A exactly the size, and the
   depacketizer must give back the access unit without AUD and filler;
2. an SPS NAL unit: ``sps_info`` and ``profile_level_id`` must agree with the
   reference, values or exact ValueError.

Coverage: atheris only sees Python bytecode it has instrumented; the compiled
module is a black box to it. The reference in tests/rtp_h264_cases.py restates
the Cython code rule for rule, so it is the module instrumented here and the
differential checks turn any divergence into a crash. The seed corpus,
generated from the three case tables, starts the fuzzer on every path.
"""

from __future__ import annotations

import dataclasses  # noqa: F401  (imported before instrumentation, so not instrumented)
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach tests/ and gateway/

with atheris.instrument_imports(include=["tests.rtp_h264_cases", "tests.fuzz.common"]):
    from tests import rtp_h264_cases as ref
    from tests.fuzz import common

from gateway._ext.rtph264 import (  # noqa: E402
    RtpH264Depacketizer,
    RtpH264Packetizer,
    profile_level_id,
    sps_info,
)

T = TypeVar("T")


def _outcome(call: Callable[..., T], *args: object) -> tuple[bool, T | str]:
    """(True, value) or (False, ValueError message): what a call gives."""
    try:
        return True, call(*args)
    except ValueError as e:
        return False, str(e)


def check_access_unit(out: bytes, limit: int) -> None:
    """A returned access unit: within the limit, starting with a start code and a slice-or-such.

    The NAL unit bodies are the sender's bytes, not inspected: one that carries a
    start code pattern (invalid H.264) splits differently, so only the first
    header is checked here; the reference comparison covers the rest.
    """
    assert len(out) <= limit, (len(out), limit)
    assert out.startswith(b"\0\0\0\1") and 1 <= out[4] & 0x1F <= 23, out[:8]


def check_stream(data: bytes) -> None:
    """Mode 0: the compiled and the reference depacketizer on one packet stream."""
    common.check_depacketizers(data, RtpH264Depacketizer, ref.RefDepacketizer, check_access_unit)


def check_round_trip(data: bytes) -> None:
    """Mode 1: packetize like the reference, then depacketize back to the access unit."""
    if not data:
        return
    size = ref.round_trip_payload_size(data[0])
    au = data[1:]
    ok, got = _outcome(RtpH264Packetizer(size).packetize, au)
    want_ok, want = _outcome(ref.ref_packetize, au, size)
    if not ok:
        assert not want_ok and got == want, (got, want)
        return
    assert want_ok, want
    assert isinstance(got, tuple)
    payload_data, offsets = got
    assert offsets[0] == 0 and offsets[-1] == len(payload_data), (offsets[0], offsets[-1])
    payloads = [payload_data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    assert payloads == want
    d = RtpH264Depacketizer(1 << 30)
    out = None
    for i, payload in enumerate(payloads):
        assert 0 < len(payload) <= size, (len(payload), size)
        if payload[0] & 0x1F == ref.FU_A and not payload[1] & 0x40:
            assert len(payload) == size, (len(payload), size)
        out = d.push(i, 0, i == len(payloads) - 1, payload)
        assert (out is None) == (i < len(payloads) - 1), i
    assert out == ref.expected_access_unit(au)
    assert d.dropped == dict.fromkeys(ref.DROP_REASONS, 0), d.dropped


def check_sps(data: bytes) -> None:
    """Mode 2: sps_info and profile_level_id against the reference."""
    got, want = _outcome(sps_info, data), _outcome(ref.ref_sps_info, data)
    assert got == want, (got, want)
    got, want = _outcome(profile_level_id, data), _outcome(ref.ref_profile_level_id, data)
    assert got == want, (got, want)


def test_one_input(data: bytes) -> None:
    """Dispatch one fuzzer-made input by its first byte."""
    if not data:
        return
    mode = data[0] % 3
    if mode == ref.MODE_STREAM:
        check_stream(data[1:])
    elif mode == ref.MODE_ROUND_TRIP:
        check_round_trip(data[1:])
    else:
        check_sps(data[1:])


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
