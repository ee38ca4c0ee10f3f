"""Atheris target for the session descriptions the gateway writes (gateway/rtsp/sdp.py).

    python tests/fuzz/fuzz_sdp.py -max_total_time=10 -seed=1 tests/fuzz/corpus/sdp

The gateway parses no SDP of its own (WHEP offers go to aiortc); what it
writes, it writes from what peers send: the control URLs come from the
client's Request-URI, the fmtp from the encoder's parameter sets. The first
byte picks the mode (modulo 2):

0. a Request-URI: resolved (tests/fuzz/fuzz_url.py), then described as the
   RTSP server's DESCRIBE does, JPEG and H.264; the text must be valid SDP
   line by line (``x=value`` lines ended by CRLF, v/o/s/i/c/t first, one
   ``m=`` per track) and encode as strict UTF-8, with the control URLs as the
   a=control lines;
1. an SPS and a PPS (the second byte says how long the SPS is): the fmtp
   carries the profile-level-id that ``profile_level_id`` gives and the
   sprop-parameter-sets decode back to the two NAL units; ``h264_fmtp`` may
   refuse an SPS with ValueError, nothing else.
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.rtsp.sdp", "gateway.rtsp.url"]):
    from gateway.rtsp import sdp
    from gateway.rtsp.url import UrlError, resolve

from gateway._ext.rtph264 import profile_level_id  # noqa: E402

CHANNELS = ("lobby", "dock", "cam-3")
LINE = re.compile(r"[a-z]=[^\r\n]*")
HEAD = ("v", "o", "s", "i", "c", "t")


def check_text(text: str, controls: list[str]) -> list[str]:
    """Check SDP text line by line; returns its lines."""
    text.encode()
    assert text.endswith("\r\n"), text[-8:]
    lines = text[:-2].split("\r\n")
    for line in lines:
        assert LINE.fullmatch(line), line
    assert [line[0] for line in lines[:6]] == list(HEAD), lines[:6]
    assert lines[0] == "v=0"
    media = [line for line in lines if line.startswith("m=")]
    assert len(media) == len(controls), media
    found = [line.removeprefix("a=control:") for line in lines if line.startswith("a=control:")]
    assert found[-len(controls) :] == controls, (found, controls)
    return lines


def check_describe(uri: str) -> None:
    """Mode 0."""
    try:
        target = resolve(uri, CHANNELS)
    except UrlError:
        return
    control = target.control(0)
    media = [
        sdp.MediaDescription(26, "JPEG", control, 25.0, 704, 576),
        sdp.MediaDescription(96, "H264", control, 25.0, 704, 576, sdp.h264_fmtp(None, None)),
    ]
    for m in media:
        text = sdp.session_description(
            name=f"coaxgate {target.channel}",
            origin_address="192.0.2.1",
            session_id=1,
            media=[m],
            aggregate_control=target.base + "/",
        )
        check_text(text, [control])


def check_fmtp(data: bytes) -> None:
    """Mode 1."""
    if not data:
        return
    n = data[0]
    sps, pps = data[1 : 1 + n], data[1 + n :]
    try:
        fmtp = sdp.h264_fmtp(sps, pps)
    except ValueError:
        return
    params = dict(p.split("=", 1) for p in fmtp.split(";"))
    assert params["packetization-mode"] == "1", fmtp
    assert re.fullmatch(r"[0-9a-f]{6}", params["profile-level-id"]), fmtp
    if sps and pps:
        assert params["profile-level-id"] == profile_level_id(sps)
        first, second = params["sprop-parameter-sets"].split(",")
        assert base64.b64decode(first, validate=True) == sps
        assert base64.b64decode(second, validate=True) == pps
    text = sdp.session_description(
        name="coaxgate lobby",
        origin_address="::1",
        session_id=2,
        media=[sdp.MediaDescription(96, "H264", "trackID=0", None, 0, 0, fmtp)],
        multicast=sdp.MulticastAddress("ff15::1", 5004, 16),
    )
    check_text(text, ["trackID=0"])


def test_one_input(data: bytes) -> None:
    """Dispatch one fuzzer-made input by its first byte."""
    if not data:
        return
    if data[0] % 2 == 0:
        check_describe(data[1:].decode("utf-8", "surrogateescape"))
    else:
        check_fmtp(data[1:])


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
