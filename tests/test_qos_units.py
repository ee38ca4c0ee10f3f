"""QoS parts without a running gateway: config, token buckets, limits, pacing, shrinking."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from gateway import config
from gateway._ext.egress import TokenBucket, UdpFanout, admit
from gateway.config import ConfigError
from gateway.media.channel import Channel
from gateway.media.limits import LimitError, ViewerLimits, channel_bucket, viewer_limits
from gateway.media.shrink import FrameShrinker
from gateway.rtp.pacing import MIN_STEP, Pacer
from gateway.sources.frames import FrameLoop

from .support import decode_jpeg, metric

EMU = "emulator:1?resolution=352x288"


def _cfg(**tables: Any) -> config.Config:
    return config.parse({**tables, "channels": [{"name": "cam", "source": EMU}]})


# -- config ----------------------------------------------------------------------------


def test_qos_defaults_and_hex() -> None:
    assert config.parse({}).qos.codepoints() == {
        "video": 34,
        "audio": 46,
        "event": 26,
        "management": 16,
    }
    cfg = config.parse({"qos": {"video": "0x2E", "audio": "10", "event": 0, "management": 63}})
    assert cfg.qos.codepoints() == {"video": 46, "audio": 10, "event": 0, "management": 63}
    assert cfg.public()["qos"] == {"video": 46, "audio": 10, "event": 0, "management": 63}


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"qos": {"video": 64}}, "qos.video", "DSCP 0-63"),
        ({"qos": {"video": -1}}, "qos.video", "DSCP 0-63"),
        ({"qos": {"audio": "AF41"}}, "qos.audio", "DSCP 0-63"),
        ({"qos": {"event": True}}, "qos.event", "DSCP 0-63"),
        ({"qos": {"voice": 46}}, "qos.voice", "unknown key"),
        ({"limits": {"max_bitrate": "4 furlongs"}}, "limits.max_bitrate", "bit rate"),
        ({"limits": {"max_fps": 500}}, "limits.max_fps", "between"),
        ({"limits": {"max_frame_size": 100}}, "limits.max_frame_size", "at least 4K"),
        ({"limits": {"max_frame_size_policy": "shrug"}}, "limits.max_frame_size_policy", "one of"),
        ({"limits": {"speed": 1}}, "limits.speed", "unknown key"),
        ({"profiles": [{"fps": 5}]}, "profiles[0].name", "is required"),
        ({"profiles": [{"name": "a"}, {"name": "a"}]}, "profiles[1].name", "defined twice"),
        ({"profiles": {"name": "a"}}, "profiles", "array of tables"),
        ({"egress": {"pacing": 1.5}}, "egress.pacing", "between"),
    ],
)
def test_qos_config_errors(data: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.parse(data)
    assert e.value.key == key and reason in e.value.reason


def test_limits_inherit_and_override() -> None:
    cfg = config.parse(
        {
            "limits": {"max_bitrate": "4M", "max_fps": 10, "channel_bitrate": "20Mbit/s"},
            "channels": [
                {"name": "a", "source": EMU},
                {"name": "b", "source": EMU, "limits": {"max_fps": 5, "max_bitrate": 512_000}},
            ],
            "profiles": [{"name": "mobile", "fps": 2, "bitrate": "1.5M"}],
        }
    )
    a, b = cfg.channels
    assert (a.limits.max_fps, a.limits.max_bitrate, a.limits.channel_bitrate) == (
        10,
        4_000_000,
        20_000_000,
    )
    assert (b.limits.max_fps, b.limits.max_bitrate, b.limits.channel_bitrate) == (
        5,
        512_000,
        20_000_000,
    )
    assert cfg.profiles[0].bitrate == 1_500_000
    public = cfg.public()
    assert public["limits"]["max_bitrate"] == 4_000_000
    assert public["channels"][1]["limits"]["max_fps"] == 5
    assert public["profiles"] == [{"name": "mobile", "fps": 2, "bitrate": 1_500_000}]


# -- viewer limits ---------------------------------------------------------------------


def test_the_lowest_limit_wins_and_a_viewer_cannot_raise_the_cap() -> None:
    caps = config.LimitsConfig(max_fps=10, max_bitrate=4_000_000)
    profiles = (config.ProfileConfig("mobile", fps=5, bitrate=1_000_000),)
    assert viewer_limits(caps, profiles, {}) == ViewerLimits(10, 4_000_000, 0, None)
    assert viewer_limits(caps, profiles, {"fps": "25", "bitrate": "8M"}).bitrate == 4_000_000
    assert viewer_limits(caps, profiles, {"fps": "2", "bitrate": "300k"}) == ViewerLimits(
        2, 300_000, 0, None
    )
    assert viewer_limits(caps, profiles, {"streamprofile": "mobile"}) == ViewerLimits(
        5, 1_000_000, 0, "mobile"
    )
    assert viewer_limits(caps, profiles, {"videomaxbitrate": "250"}).bitrate == 250_000
    open_caps = config.LimitsConfig()
    assert viewer_limits(open_caps, (), {}) == ViewerLimits()
    assert viewer_limits(open_caps, (), {"fps": "0"}).fps == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"streamprofile": "nope"}, "no stream profile"),
        ({"fps": "fast"}, "fps must be a number"),
        ({"fps": "-1"}, "between"),
        ({"bitrate": "lots"}, "bit rate"),
    ],
)
def test_bad_viewer_limits(query: dict[str, str], message: str) -> None:
    with pytest.raises(LimitError, match=message):
        viewer_limits(config.LimitsConfig(), (), query)


def test_viewer_limits_json_reports_the_default_burst() -> None:
    assert ViewerLimits(bitrate=4_000_000).to_json() == {
        "fps": None,
        "bitrate": 4_000_000,
        "burst": 1_000_000,
        "profile": None,
    }
    assert ViewerLimits().bucket() is None
    bucket = ViewerLimits(bitrate=800, burst=400).bucket()
    assert bucket is not None and (bucket.rate, bucket.capacity) == (800, 400)
    assert channel_bucket(config.LimitsConfig()) is None


# -- token buckets ---------------------------------------------------------------------


def test_bucket_spends_whole_frames_and_refills_at_its_rate() -> None:
    t0 = 100.0
    bucket = TokenBucket(1000.0, 500.0, now=t0)
    assert bucket.allows(400, t0)
    bucket.take(400)
    assert not bucket.allows(400, t0)  # 100 left
    assert bucket.allows(400, t0 + 0.31)  # +310
    bucket.take(400)
    assert bucket.tokens == pytest.approx(10)
    # Refill never goes past the burst.
    assert bucket.allows(1, t0 + 100)
    assert bucket.tokens == pytest.approx(500)


def test_a_frame_larger_than_the_burst_waits_for_all_of_it() -> None:
    bucket = TokenBucket(1000.0, 500.0, now=99.0)
    t0 = 100.0  # full
    assert not bucket.allows(2000, t0)  # 1500: filling past the burst, for this frame
    assert not bucket.allows(2000, t0 + 0.4)
    assert bucket.allows(2000, t0 + 0.51)
    bucket.take(2000)
    assert bucket.tokens == pytest.approx(0)
    # Back to small frames: the burst is the ceiling again.
    assert bucket.allows(100, t0 + 10)
    assert bucket.tokens == pytest.approx(500)


@pytest.mark.parametrize(
    ("frame_bytes", "low"),
    [
        (15_000, 0.98),  # CIF frames, well under the burst: the rate is the cap
        # D1 frames larger than the burst: each waits for a whole frame's worth, and the
        # wait ends at the next frame's arrival, so the rate lands a little under the cap.
        (90_000, 0.90),
    ],
)
def test_long_run_rate_of_a_bucket_is_its_rate(frame_bytes: int, low: float) -> None:
    bucket = TokenBucket(1_000_000.0, 250_000.0)
    frame = frame_bytes * 8
    t0 = time.monotonic() + 1
    sent = 0
    for i in range(25 * 60):  # one minute at 25 fps
        now = t0 + i / 25
        if bucket.allows(frame, now):
            bucket.take(frame)
            sent += frame
    # Never more than the rate over the minute plus the burst it started with.
    assert low * 60_000_000 <= sent <= 60_000_000 + 250_000 + frame


def test_admit_spends_both_buckets_or_neither() -> None:
    viewer, shared = TokenBucket(1000.0, 1000.0), TokenBucket(1000.0, 600.0)
    now = time.monotonic() + 5
    assert admit(500, viewer, shared, now)
    assert not admit(500, viewer, shared, now)  # shared has 100
    assert viewer.tokens == pytest.approx(500)  # not spent by the refusal
    assert admit(500, None, None, now)
    with pytest.raises(ValueError):
        TokenBucket(-1, 10)


# -- UDP fanout: limits in Cython ------------------------------------------------------


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


def _frame(npackets: int, size: int = 1000) -> tuple[bytes, np.ndarray]:
    data = bytes(npackets * size)
    return data, np.arange(0, npackets * size + 1, size, dtype=np.uint32)


def test_fanout_bit_rate_limit_and_channel_share() -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = [_receiver() for _ in range(3)]
    fanout = UdpFanout(tx.fileno(), 26)
    data, offsets = _frame(4)
    bits = 8 * (len(data) + 12 * 4)
    handles = []
    for sock in rx:
        handles.append(fanout.add("127.0.0.1", sock.getsockname()[1], 1, 0, 0, playing=True))
    t0 = 100.0  # the frames' times, passed in: no real time passes between them
    fanout.set_bitrate(handles[0], bits * 2.5, bits, now=t0)  # room for 1 frame, 2.5 a second
    skipped, waiting, limited = fanout.begin(data, offsets, 0, True, t0)
    assert (skipped, waiting, limited) == (0, 0, 0)
    assert fanout.due == 3
    assert fanout.flush(0, 2) == 0 and fanout.flush(2, 2) == 0
    assert fanout.end() == (3, 12, 0)
    ok, _, _, skipped, _, limited = fanout.send(data, offsets, 3600, True, t0 + 0.04)
    assert (ok, skipped, limited) == (2, 0, 1)  # viewer 0 spent its burst
    assert fanout.stats(handles[0])["rate_dropped"] == 1
    # A channel cap of one frame: only one viewer gets the next frame, and not always the same.
    winners = []
    for i in range(3):
        t = t0 + 0.08 + 0.04 * i
        fanout.shared = TokenBucket(1.0, bits, now=t)
        before = [fanout.stats(h)["frames"] for h in handles[1:]]
        fanout.send(data, offsets, 7200 + i * 3600, True, t)
        after = [fanout.stats(h)["frames"] for h in handles[1:]]
        winners.append(tuple(a - b for a, b in zip(after, before, strict=True)))
    assert all(sum(w) == 1 for w in winners)
    assert len(set(winners)) == 2  # rotation: both viewers get turns
    for sock in rx:
        _drain(sock)
        sock.close()
    tx.close()


def test_fanout_refuses_to_change_viewers_mid_frame() -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fanout = UdpFanout(tx.fileno(), 26)
    data, offsets = _frame(2)
    fanout.begin(data, offsets, 0, True)
    assert fanout.in_flight
    with pytest.raises(RuntimeError):
        fanout.begin(data, offsets, 0, True)
    with pytest.raises(RuntimeError):
        fanout.add("127.0.0.1", 9, 1, 0, 0)
    with pytest.raises(ValueError):
        fanout.flush(1, 5)
    fanout.end()
    with pytest.raises(RuntimeError):
        fanout.flush(0, 1)
    tx.close()


# -- pacing ----------------------------------------------------------------------------


class SteppedTimer:
    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class SteppedClock:
    """A scheduler whose time moves only when the test says: timers run in order of `when`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[SteppedTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], Any]) -> SteppedTimer:
        timer = SteppedTimer(when, callback)
        self.timers.append(timer)
        return timer

    def run_next(self) -> float:
        """Advance to the earliest live timer, run it, and return its time."""
        self.timers = [t for t in self.timers if not t.cancelled]
        timer = min(self.timers, key=lambda t: t.when)
        self.timers.remove(timer)
        self.now = timer.when
        timer.callback()
        return self.now


def test_pacer_spreads_a_frame_over_its_share_of_the_interval() -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = _receiver()
    fanout = UdpFanout(tx.fileno(), 26)
    fanout.add("127.0.0.1", rx.getsockname()[1], 1, 0, 0, playing=True)
    done: list[tuple[int, int, int, int]] = []
    clock = SteppedClock()
    pacer = Pacer(fanout, 0.5, lambda *a: done.append(a), clock)
    pacer.interval = 0.04  # 25 fps: 0.5 of it, 20 ms, to spread over
    data, offsets = _frame(40)
    start = clock.now
    pacer.send(data, offsets, 0, True)
    sent = [len(_drain(rx))]
    assert 0 < sent[0] < 40  # not one burst
    times = [start]
    while clock.timers:
        times.append(clock.run_next())
        sent.append(len(_drain(rx)))
    # Slots MIN_STEP apart from the start, the last one inside the 20 ms window.
    slots = int(0.02 / MIN_STEP)
    assert len(times) == slots
    assert times == pytest.approx([start + k * 0.02 / slots for k in range(slots)])
    assert all(n > 0 for n in sent) and sum(sent) == 40
    assert done == [(1, 40, 0, 40 * 1000 + 40 * 12)]
    assert pacer.frames_paced == 1
    rx.close()
    tx.close()


async def test_an_early_frame_flushes_the_one_in_flight(loop_name: str) -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = _receiver()
    fanout = UdpFanout(tx.fileno(), 26)
    handle = fanout.add("127.0.0.1", rx.getsockname()[1], 1, 0, 0, playing=True)
    done: list[tuple[int, int, int, int]] = []
    pacer = Pacer(fanout, 0.9, lambda *a: done.append(a))
    pacer.interval = 0.2
    data, offsets = _frame(30)
    pacer.send(data, offsets, 0, True)
    assert fanout.in_flight
    pacer.send(data, offsets, 3600, True)  # long before the first one finished
    pacer.finish()
    assert not fanout.in_flight
    assert [d[1] for d in done] == [30, 30]
    packets = _drain(rx)
    assert len(packets) == 60
    seqs = [int.from_bytes(p[2:4], "big") for p in packets]
    assert seqs == list(range(60))  # in order, none lost, none repeated
    assert fanout.stats(handle)["frames"] == 2
    rx.close()
    tx.close()


async def test_many_viewers_are_staggered_not_chopped(loop_name: str) -> None:
    """With many viewers, each gets its frame in few messages, groups spread over the window."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = [_receiver() for _ in range(40)]
    fanout = UdpFanout(tx.fileno(), 26)
    for sock in rx:
        fanout.add("127.0.0.1", sock.getsockname()[1], 1, 0, 0, playing=True)
    done: list[tuple[int, int, int, int]] = []
    finished = asyncio.Event()

    def on_done(*a: int) -> None:
        done.append(a)  # type: ignore[arg-type]
        finished.set()

    pacer = Pacer(fanout, 0.5, on_done)
    pacer.interval = 0.04
    data, offsets = _frame(20)
    pacer.send(data, offsets, 0, True)
    # 40 viewers: 4 chunks each (the message budget), in 2 groups of 20.
    assert (pacer._chunks, pacer._groups) == (4, 2)
    now = [len(_drain(sock)) for sock in rx]
    assert sorted(set(now)) == [0, 5]  # only the first group's first chunk went at once
    got = [now[i] for i in range(40)]
    await asyncio.wait_for(finished.wait(), 1)
    for i, sock in enumerate(rx):
        got[i] += len(_drain(sock))
        sock.close()
    assert got == [20] * 40 and done == [(40, 800, 0, 20 * 1000 + 20 * 12)]
    tx.close()


def test_no_pacing_sends_at_once() -> None:
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = _receiver()
    fanout = UdpFanout(tx.fileno(), 26)
    fanout.add("127.0.0.1", rx.getsockname()[1], 1, 0, 0, playing=True)
    done: list[tuple[int, int, int, int]] = []
    pacer = Pacer(fanout, 0.0, lambda *a: done.append(a))
    data, offsets = _frame(10)
    pacer.send(data, offsets, 0, True)  # no event loop needed: nothing is scheduled
    assert not fanout.in_flight and len(_drain(rx)) == 10 and done[0][1] == 10
    assert MIN_STEP > 0
    rx.close()
    tx.close()


# -- max_frame_size --------------------------------------------------------------------


def _d1_frames(n: int) -> list[bytes]:
    loop = FrameLoop(camera=1, label="CAM 1", width=704, height=576, fps=25.0)
    return [loop.frame(i, time.time()) for i in range(n)]


def test_shrinker_fits_frames_under_the_limit() -> None:
    frames = _d1_frames(4)
    limit = len(frames[0]) // 2
    shrinker = FrameShrinker(limit)
    for frame in frames:
        out = shrinker.fit(frame)
        assert out is not None and len(out) <= limit
        assert decode_jpeg(out) == (704, 576)
    assert FrameShrinker(4096).fit(frames[0]) is None  # nothing gets a D1 frame to 4 KB
    assert shrinker.fit(b"\xff\xd8 not a jpeg") is None


@pytest.mark.parametrize("policy", ["reencode", "drop"])
def test_channel_applies_max_frame_size(policy: str) -> None:
    frames = _d1_frames(3)
    limit = len(frames[0]) // 2
    cfg = config.parse(
        {
            "channels": [
                {
                    "name": "cam",
                    "source": EMU,
                    "limits": {"max_frame_size": limit, "max_frame_size_policy": policy},
                }
            ]
        }
    )
    channel = Channel(cfg.channels[0])
    got: list[bytes] = []

    class Reader:
        def on_unit(self, unit: Any) -> None:
            got.append(unit.data)

    channel.jpeg.add_reader(Reader())
    for frame in frames:
        assert channel.ingest(frame) is None  # a healthy source, whatever the policy
    assert channel.frames_in == 3 and not channel.bad_frames
    if policy == "drop":
        assert not got and channel.dropped[("source", "frame_size")] == 3
    else:
        assert len(got) == 3 and all(len(f) <= limit for f in got)
        assert channel.reencoded["max_frame_size"] == 3


# -- reduced-rate H.264 feeds ----------------------------------------------------------


def test_h264_viewers_below_the_source_rate_get_their_own_feed() -> None:
    from gateway.app import MAX_REDUCED_RATES, Gateway

    gw = Gateway(_cfg())
    native = gw.h264["cam"]
    assert gw.h264_feed("cam", 0) == (native, 0.0)
    assert gw.h264_feed("cam", 25) == (native, 0.0)  # the emulator's rate
    five, residual = gw.h264_feed("cam", 5)
    assert five is not native and five.fps == 5 and residual == 0
    assert gw.h264_feed("cam", 5)[0] is five
    for fps in (2, 10):
        gw.h264_feed("cam", fps)
    assert len(gw.h264_rates) == MAX_REDUCED_RATES
    # Every slot taken: the nearest slower feed, or the slowest one and a limit on top.
    assert gw.h264_feed("cam", 7) == (five, 0.0)
    slowest, residual = gw.h264_feed("cam", 1)
    assert slowest.fps == 2 and residual == 1
    from prometheus_client import generate_latest

    text = generate_latest(gw.metrics).decode()
    assert metric(text, "coaxgate_reduced_rate_transcoders", channel="cam") == 0  # none started
    assert metric(text, "coaxgate_reduced_rate_frames_total", channel="cam") == 0
    assert 'coaxgate_reduced_rate_transcoders{channel="cam"}' in text


# -- stalled and persistently slow viewers -----------------------------------------------


def test_stall_watch_disconnects_a_viewer_that_gets_nothing() -> None:
    from gateway.media.rate import StallWatch

    watch = StallWatch(10.0)
    assert not watch.update(0.0, True)
    assert not any(watch.update(t / 25, False) for t in range(1, 250))  # 9.96 s of drops
    assert watch.update(10.1, False)


def test_stall_watch_disconnects_a_viewer_that_reads_a_tenth() -> None:
    from gateway.media.rate import StallWatch

    watch = StallWatch(10.0)
    verdicts = [watch.update(i / 25, i % 10 == 0) for i in range(1, 25 * 12)]
    first = verdicts.index(True)
    assert 10.0 <= (first + 1) / 25 <= 10.2  # judged the stall time after its first drop


def test_stall_watch_keeps_a_viewer_that_lost_a_few_frames() -> None:
    from gateway.media.rate import StallWatch

    watch = StallWatch(2.0)
    # A hiccup: five frames lost once a minute, everything else delivered.
    verdicts = [watch.update(i / 25, not (i % 1500 < 5)) for i in range(25 * 300)]
    assert not any(verdicts)


def test_channel_cap_shares_frames_round_robin_by_service() -> None:
    # A cap that lets one frame in three through, and three viewers: rotating by frame
    # count would hand every allowed frame to the same viewer.
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = [_receiver() for _ in range(3)]
    fanout = UdpFanout(tx.fileno(), 26)
    handles = [fanout.add("127.0.0.1", s.getsockname()[1], 1, 0, 0, playing=True) for s in rx]
    data, offsets = _frame(2)
    bits = 8 * (len(data) + 12 * 2)
    t0 = 100.0
    fanout.shared = TokenBucket(1.01 * bits * 25 / 3, bits, now=t0)  # a frame in three
    for i in range(60):
        fanout.send(data, offsets, i * 3600, True, t0 + i * 0.04)
        for sock in rx:
            _drain(sock)
    got = [fanout.stats(h)["frames"] for h in handles]
    assert sum(got) == 20 and max(got) - min(got) <= 1, got
    for sock in rx:
        sock.close()
    tx.close()
