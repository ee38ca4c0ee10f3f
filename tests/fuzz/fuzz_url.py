"""Atheris target for RTSP URL resolution (gateway/rtsp/url.py).

    python tests/fuzz/fuzz_url.py -max_total_time=10 -seed=1 tests/fuzz/corpus/url

Input: a Request-URI as the RTSP parser hands it over (UTF-8 with surrogate
escapes), resolved against three channels. ``resolve`` answers a Target or
raises ``UrlError`` with a 4xx status; any other exception is a crash (the
server turns only UrlError into an answer). A Target names a configured
channel and a served codec; its base URL and control URLs go into headers
and into the SDP, so they must be header-safe and valid UTF-8; and a control
URL resolves again to the same channel, codec, rate and track.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # run as a script: reach gateway/

with atheris.instrument_imports(include=["gateway.rtsp.url", "gateway.vapix"]):
    from gateway.rtsp.url import CODECS, MAX_URL, UrlError, resolve

from gateway.rtsp.message import Headers  # noqa: E402

CHANNELS = ("lobby", "dock", "cam-3")


def test_one_input(data: bytes) -> None:
    """Resolve one URI; check the target and that its control URL resolves back to it."""
    uri = data.decode("utf-8", "surrogateescape")
    try:
        target = resolve(uri, CHANNELS)
    except UrlError as e:
        assert e.status in (400, 404, 414), e.status
        return
    assert target.channel in CHANNELS, target
    assert target.codec in ("", *CODECS), target
    assert target.fps is None or 0 < target.fps <= 100, target
    assert target.track is None or 0 <= target.track <= 999, target
    control = target.control(target.track or 0)
    for url in (target.base + "/", control):
        url.encode()  # the SDP body is encoded strictly
        Headers([("Content-Base", url)])
    if len(control) > MAX_URL:
        return  # a URL near the limit gets longer: a SETUP on it would be a 414
    again = resolve(control, CHANNELS)
    assert (again.channel, again.codec, again.fps) == (target.channel, target.codec, target.fps)
    assert again.track == (target.track or 0), (again, target)


def main() -> None:
    """Hand control to libFuzzer."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
