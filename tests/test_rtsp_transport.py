"""The Transport header: what real clients and servers send, parsed, and written back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.rtsp.transport import (
    TransportSpec,
    UnsupportedTransport,
    parse_transport,
    serialize_transport,
)

T = TransportSpec

# (header as sent, specs, header as written back; None = the same text)
# fmt: off
CASES: list[tuple[str, str, list[TransportSpec], str | None]] = [
    # -- clients' offers ----------------------------------------------------------------
    ("ffmpeg_udp", "RTP/AVP/UDP;unicast;client_port=21236-21237",
     [T(client_port=(21236, 21237))], None),
    ("ffmpeg_tcp", "RTP/AVP/TCP;unicast;interleaved=0-1",
     [T(lower_transport="TCP", interleaved=(0, 1))], None),
    ("ffmpeg_multicast", "RTP/AVP/UDP;multicast",
     [T(unicast=False)], None),
    ("ffmpeg_publish", "RTP/AVP/UDP;unicast;client_port=5000-5001;mode=record",
     [T(client_port=(5000, 5001), mode="RECORD")],
     "RTP/AVP/UDP;unicast;client_port=5000-5001;mode=RECORD"),
    ("gstreamer_udp", "RTP/AVP;unicast;client_port=48614-48615",
     [T(client_port=(48614, 48615))], None),
    ("gstreamer_tcp", "RTP/AVP/TCP;unicast;interleaved=0-1",
     [T(lower_transport="TCP", interleaved=(0, 1))], None),
    ("gstreamer_multicast", "RTP/AVP;multicast",
     [T(unicast=False)], None),
    ("gstreamer_multicast_with_ports", "RTP/AVP;multicast;client_port=48614-48615",
     [T(unicast=False, client_port=(48614, 48615))], None),
    ("gstreamer_alternatives",
     "RTP/AVP/UDP;unicast;client_port=5000-5001,RTP/AVP/UDP;multicast,RTP/AVP/TCP",
     [T(client_port=(5000, 5001)), T(unicast=False), T(lower_transport="TCP")],
     "RTP/AVP/UDP;unicast;client_port=5000-5001,RTP/AVP/UDP;multicast,RTP/AVP/TCP;unicast"),
    ("vlc_udp", "RTP/AVP;unicast;client_port=54390-54391",
     [T(client_port=(54390, 54391))], None),
    ("vlc_tcp", "RTP/AVP/TCP;unicast;interleaved=0-1",
     [T(lower_transport="TCP", interleaved=(0, 1))], None),
    ("second_track_interleaved", "RTP/AVP/TCP;unicast;interleaved=2-3",
     [T(lower_transport="TCP", interleaved=(2, 3))], None),
    # -- servers' answers -----------------------------------------------------------------
    ("live555_answer",
     "RTP/AVP;unicast;destination=192.0.2.99;source=192.0.2.10;"
     "client_port=54390-54391;server_port=6970-6971",
     [T(destination="192.0.2.99", source="192.0.2.10", client_port=(54390, 54391),
        server_port=(6970, 6971))], None),
    ("gst_rtsp_server_answer",
     'RTP/AVP;unicast;client_port=48614-48615;server_port=41010-41011;ssrc=5E8B3C1F;mode="PLAY"',
     [T(client_port=(48614, 48615), server_port=(41010, 41011), ssrc=0x5E8B3C1F, mode="PLAY")],
     "RTP/AVP;unicast;client_port=48614-48615;server_port=41010-41011;ssrc=5E8B3C1F;mode=PLAY"),
    ("multicast_answer", "RTP/AVP;multicast;destination=224.2.0.1;port=3456-3457;ttl=16",
     [T(unicast=False, destination="224.2.0.1", port=(3456, 3457), ttl=16)], None),
    ("tcp_answer", "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0C0A7A7E",
     [T(lower_transport="TCP", interleaved=(0, 1), ssrc=0x0C0A7A7E)], None),
    # -- spellings ------------------------------------------------------------------------
    ("single_port_means_a_pair", "RTP/AVP;unicast;client_port=5000",
     [T(client_port=(5000, 5001))], "RTP/AVP;unicast;client_port=5000-5001"),
    ("single_channel_means_a_pair", "RTP/AVP/TCP;unicast;interleaved=4",
     [T(lower_transport="TCP", interleaved=(4, 5))], "RTP/AVP/TCP;unicast;interleaved=4-5"),
    ("no_delivery_means_unicast", "RTP/AVP/TCP;interleaved=0-1",
     [T(lower_transport="TCP", interleaved=(0, 1))], "RTP/AVP/TCP;unicast;interleaved=0-1"),
    ("case_and_spaces", " rtp/avp/tcp ; UNICAST ; Interleaved = 2-3 ;; ",
     [T(lower_transport="TCP", interleaved=(2, 3))], "RTP/AVP/TCP;unicast;interleaved=2-3"),
    ("short_ssrc", "RTP/AVP;unicast;client_port=5000-5001;ssrc=abc",
     [T(client_port=(5000, 5001), ssrc=0xABC)],
     "RTP/AVP;unicast;client_port=5000-5001;ssrc=00000ABC"),
    ("destination_without_address", "RTP/AVP;multicast;destination",
     [T(unicast=False, destination="")], None),
    ("mode_list", 'RTP/AVP;unicast;client_port=5000-5001;mode="play, record"',
     [T(client_port=(5000, 5001), mode="PLAY,RECORD")],
     'RTP/AVP;unicast;client_port=5000-5001;mode="PLAY,RECORD"'),
    ("unknown_parameters_kept", "RTP/AVP;unicast;client_port=5000-5001;x-dynamic-rate=1;append;"
     'layers=2;x-note="quoted"',
     [T(client_port=(5000, 5001),
        extra=(("x-dynamic-rate", "1"), ("append", None), ("layers", "2"), ("x-note", "quoted")))],
     "RTP/AVP;unicast;client_port=5000-5001;x-dynamic-rate=1;append;layers=2;x-note=quoted"),
    ("unsupported_alternatives_dropped",
     "RTP/SAVP;unicast;client_port=5000-5001,RTP/AVPF;unicast,RTP/AVP/SCTP,"
     "RTP/AVP;unicast;client_port=5002-5003,RAW/RAW/UDP;unicast",
     [T(client_port=(5002, 5003))], "RTP/AVP;unicast;client_port=5002-5003"),
]

ERRORS: list[tuple[str, type[ValueError], str]] = [
    ("", ValueError, "empty Transport header"),
    (" , ,", ValueError, "empty Transport header"),
    ("RTP", ValueError, "bad transport 'RTP': expected RTP/AVP"),
    ("RTP/AVP;client_port=70000-70001", ValueError,
     "client_port '70000-70001' out of range 0..65535"),
    ("RTP/AVP;client_port=65535", ValueError, "client_port '65535' out of range"),
    ("RTP/AVP/TCP;interleaved=255", ValueError, "interleaved '255' out of range 0..255"),
    ("RTP/AVP/TCP;interleaved=256-257", ValueError, "interleaved '256-257' out of range"),
    ("RTP/AVP;client_port=a-b", ValueError, "bad client_port 'a-b'"),
    ("RTP/AVP;client_port=-1", ValueError, "bad client_port '-1'"),
    ("RTP/AVP;client_port=5000-", ValueError, "bad client_port '5000-'"),
    ("RTP/AVP;server_port=123456", ValueError, "bad server_port '123456'"),
    ("RTP/AVP;client_port", ValueError, "client_port needs a value"),
    ("RTP/AVP;multicast;ttl=256", ValueError, "ttl must be 0..255, got 256"),
    ("RTP/AVP;multicast;ttl=abc", ValueError, "bad ttl 'abc'"),
    ("RTP/AVP;ssrc=XYZ", ValueError, "bad ssrc 'XYZ': expected 1 to 8 hex digits"),
    ("RTP/AVP;ssrc=123456789", ValueError, "bad ssrc '123456789'"),
    ("RTP/AVP;unicast;multicast", ValueError, "both unicast and multicast"),
    ("RTP/AVP;unicast=1", ValueError, "unicast takes no value"),
    ("RTP/AVP;client_port=1-2;Client_Port=3-4", ValueError, "duplicate parameter client_port"),
    ('RTP/AVP;unicast;mode="PLAY', ValueError, "unterminated quoted string"),
    ('RTP/AVP;unicast;mode=PL"A"Y', ValueError, "bad quoting in mode"),
    ("RTP/AVP;bad name", ValueError, "bad parameter 'bad name'"),
    ("RTP/AVP;unicast;client_port=5000-5001,RTP/AVP;unicast;client_port=x", ValueError,
     "bad client_port 'x'"),
    ("RTP/AVP;" * 600, ValueError, "Transport header longer than 4096 characters"),
    (",".join(["RTP/AVP"] * 17), ValueError, "more than 16 transport-specs"),
    ("RTP/SAVP;unicast;client_port=5000-5001", UnsupportedTransport,
     "unsupported transport 'RTP/SAVP'"),
    ("RTP/AVP/SCTP;unicast", UnsupportedTransport, "unsupported lower transport 'RTP/AVP/SCTP'"),
    ("RTP/SAVP,RTP/AVPF;unicast", UnsupportedTransport,
     "unsupported transport 'RTP/SAVP'; unsupported transport 'RTP/AVPF'"),
]
# fmt: on


@pytest.mark.parametrize(("header", "specs", "written"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_parse_and_write_back(header: str, specs: list[TransportSpec], written: str | None) -> None:
    parsed = parse_transport(header)
    assert parsed == specs
    text = serialize_transport(parsed)
    assert text == (header if written is None else written)
    assert parse_transport(text) == specs


@pytest.mark.parametrize(("header", "kind", "message"), ERRORS)
def test_errors(header: str, kind: type[ValueError], message: str) -> None:
    with pytest.raises(kind, match=message) as info:
        parse_transport(header)
    if kind is ValueError:
        assert not isinstance(info.value, UnsupportedTransport), "a malformed header is a 400"


def test_spelling_of_udp_is_kept_but_not_compared() -> None:
    [explicit] = parse_transport("RTP/AVP/UDP;unicast;client_port=5000-5001")
    [implicit] = parse_transport("RTP/AVP;unicast;client_port=5000-5001")
    assert explicit == implicit
    assert explicit.explicit_udp and not implicit.explicit_udp
    assert explicit.serialize().startswith("RTP/AVP/UDP;")


def test_answers_as_the_server_builds_them() -> None:
    tcp = T(lower_transport="TCP", unicast=True, interleaved=(0, 1), ssrc=0x0C0A7A7E, mode=None)
    assert tcp.serialize() == "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0C0A7A7E"
    udp = T(client_port=(5000, 5001), server_port=(6000, 6001), ssrc=1)
    assert udp.serialize() == (
        "RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=00000001"
    )
    mc = T(unicast=False, destination="239.1.2.3", port=(5004, 5005), ttl=16)
    assert mc.serialize() == "RTP/AVP;multicast;destination=239.1.2.3;port=5004-5005;ttl=16"
    assert mc.multicast and not tcp.multicast
    assert tcp.effective_mode == "PLAY" and T(mode="RECORD").effective_mode == "RECORD"


@pytest.mark.parametrize(
    ("kwargs", "kind", "message"),
    [
        ({"client_port": (1,)}, ValueError,
         r"client_port must be two numbers in 0..65535, got \(1,\)"),
        ({"interleaved": (0, 256)}, ValueError, "interleaved must be two numbers in 0..255"),
        ({"port": (-1, 0)}, ValueError, "port must be two numbers"),
        ({"ttl": 300}, ValueError, "ttl must be 0..255, got 300"),
        ({"ssrc": 1 << 32}, ValueError, "ssrc must be a 32-bit number"),
        ({"destination": "a;b"}, ValueError, "destination 'a;b' contains a character"),
        ({"source": 'x"y'}, ValueError, "source 'x\"y' contains a character"),
        ({"mode": "PLAY;X"}, ValueError, "mode 'PLAY;X' contains a character"),
        ({"extra": (("client_port", "1"),)}, ValueError,
         "invalid extra parameter name 'client_port'"),
        ({"extra": (("x", "a,b"),)}, ValueError, "parameter x value 'a,b' needs quoting"),
        ({"protocol": "RTP/SAVP"}, UnsupportedTransport, "unsupported transport 'RTP/SAVP'"),
        ({"lower_transport": "SCTP"}, UnsupportedTransport, "unsupported lower transport 'SCTP'"),
    ],
)  # fmt: skip
def test_spec_validation(kwargs: dict[str, Any], kind: type[ValueError], message: str) -> None:
    with pytest.raises(kind, match=message):
        TransportSpec(**kwargs)


# -- properties ------------------------------------------------------------------------------

pairs = st.none() | st.tuples(st.integers(0, 65535), st.integers(0, 65535))
addresses = st.sampled_from(["192.0.2.10", "224.2.0.1", "::1", "[2001:db8::1]", "cam.local"])
param_names = st.from_regex(r"[A-Za-z0-9_.\-]{1,10}", fullmatch=True).filter(
    lambda n: n.lower() not in {
        "unicast", "multicast", "destination", "source", "interleaved", "port", "ttl",
        "client_port", "server_port", "ssrc", "mode",
    }
)  # fmt: skip
param_values = st.none() | st.from_regex(r"[A-Za-z0-9_.:/=+\-]{0,12}", fullmatch=True)
specs = st.builds(
    TransportSpec,
    lower_transport=st.sampled_from(["UDP", "TCP"]),
    unicast=st.booleans(),
    destination=st.none() | st.just("") | addresses,
    source=st.none() | addresses,
    interleaved=st.none() | st.tuples(st.integers(0, 255), st.integers(0, 255)),
    port=pairs,
    ttl=st.none() | st.integers(0, 255),
    client_port=pairs,
    server_port=pairs,
    ssrc=st.none() | st.integers(0, 0xFFFFFFFF),
    mode=st.none() | st.sampled_from(["PLAY", "RECORD", "PLAY,RECORD"]),
    extra=st.lists(
        st.tuples(param_names, param_values), max_size=3, unique_by=lambda p: p[0].lower()
    ).map(tuple),
    explicit_udp=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(offers=st.lists(specs, min_size=1, max_size=4))
def test_round_trip(offers: list[TransportSpec]) -> None:
    assert parse_transport(serialize_transport(offers)) == offers
