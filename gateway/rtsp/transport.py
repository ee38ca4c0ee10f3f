"""The RTSP Transport header (RFC 2326 12.39): parse the client's offers, write the answer.

A SETUP request carries one or more transport-specs, comma-separated in the
client's order of preference; the server answers with the one it picked,
completed (server_port, ssrc, ...)::

    RTP/AVP;unicast;client_port=5000-5001             (GStreamer, VLC/live555)
    RTP/AVP/UDP;unicast;client_port=5000-5001         (ffmpeg)
    RTP/AVP/TCP;unicast;interleaved=0-1               (all of them)
    RTP/AVP;multicast                                 (GStreamer, ffmpeg: RTP/AVP/UDP)

Offers this gateway cannot serve (another profile such as RTP/SAVP, another
lower transport) are dropped from the list; a malformed offer makes the whole
header invalid. ``UnsupportedTransport`` (answer 461) and plain ``ValueError``
(answer 400) tell the two apart when nothing usable is left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

MAX_HEADER = 4096  # more than any client sends; checked before splitting
MAX_SPECS = 16

_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_PORT = re.compile(r"[0-9]{1,5}")
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
_VALUE_OK = re.compile(r"[^\x00-\x1f\x7f;,\"]*")  # what serialize can write unquoted
_KNOWN = (
    "unicast", "multicast", "destination", "source", "interleaved", "port", "ttl",
    "client_port", "server_port", "ssrc", "mode",
)  # fmt: skip


class UnsupportedTransport(ValueError):
    """Well-formed, but no offer is a transport this gateway serves (RTSP 461)."""


@dataclass(frozen=True, slots=True)
class TransportSpec:
    """One transport-spec of a Transport header.

    ``unicast`` is True unless the spec says ``multicast``: RFC 2326 makes multicast
    the default, but clients that leave it out (``RTP/AVP/TCP;interleaved=0-1``)
    mean unicast, and that is what live555 and gortsplib servers assume too.
    A port pair given as one number ``a`` means ``(a, a + 1)`` (RTP, RTCP).
    ``mode`` None means not stated, which RFC 2326 defines as PLAY.
    ``extra`` keeps parameters this module does not know, in order, for the echo.
    """

    protocol: str = "RTP/AVP"
    lower_transport: Literal["UDP", "TCP"] = "UDP"
    unicast: bool = True
    destination: str | None = None  # "" when given without an address
    source: str | None = None
    interleaved: tuple[int, int] | None = None
    port: tuple[int, int] | None = None
    ttl: int | None = None
    client_port: tuple[int, int] | None = None
    server_port: tuple[int, int] | None = None
    ssrc: int | None = None
    mode: str | None = None
    extra: tuple[tuple[str, str | None], ...] = ()
    # Whether the text said "RTP/AVP/UDP" rather than "RTP/AVP" (the same thing):
    # kept so that an answer can be spelled like the offer, ignored by ==.
    explicit_udp: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.protocol != "RTP/AVP":
            raise UnsupportedTransport(f"unsupported transport {self.protocol!r}")
        if self.lower_transport not in ("UDP", "TCP"):
            raise UnsupportedTransport(f"unsupported lower transport {self.lower_transport!r}")
        for name, top in (
            ("interleaved", 255),
            ("port", 65535),
            ("client_port", 65535),
            ("server_port", 65535),
        ):
            pair = getattr(self, name)
            if pair is None:
                continue
            if len(pair) != 2 or not all(isinstance(v, int) and 0 <= v <= top for v in pair):
                raise ValueError(f"{name} must be two numbers in 0..{top}, got {pair!r}")
        if self.ttl is not None and not 0 <= self.ttl <= 255:
            raise ValueError(f"ttl must be 0..255, got {self.ttl}")
        if self.ssrc is not None and not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise ValueError(f"ssrc must be a 32-bit number, got {self.ssrc}")
        for name in ("destination", "source", "mode"):
            value = getattr(self, name)
            # A mode may be a list ("PLAY,RECORD"): serialize quotes it.
            text = value.replace(",", "") if name == "mode" and value else value
            if value is not None and not _VALUE_OK.fullmatch(text):
                raise ValueError(f"{name} {value!r} contains a character a header cannot hold")
        for key, value in self.extra:
            if not _PARAM_NAME.fullmatch(key) or key.lower() in _KNOWN:
                raise ValueError(f"invalid extra parameter name {key!r}")
            if value is not None and not _VALUE_OK.fullmatch(value):
                raise ValueError(f"parameter {key} value {value!r} needs quoting")

    @property
    def multicast(self) -> bool:
        """The spec asks for (or offers) multicast delivery."""
        return not self.unicast

    @property
    def effective_mode(self) -> str:
        """The mode, PLAY when not stated."""
        return self.mode or "PLAY"

    def serialize(self) -> str:
        """The transport-spec as header text."""
        lower = self.lower_transport
        spelled = lower == "TCP" or self.explicit_udp
        parts = [f"{self.protocol}/{lower}" if spelled else self.protocol]
        parts.append("unicast" if self.unicast else "multicast")
        if self.destination is not None:
            dest = self.destination
            parts.append(f"destination={_quoted(dest)}" if dest else "destination")
        if self.source is not None:
            parts.append(f"source={_quoted(self.source)}")
        for name in ("interleaved", "port"):
            pair = getattr(self, name)
            if pair is not None:
                parts.append(f"{name}={pair[0]}-{pair[1]}")
        if self.ttl is not None:
            parts.append(f"ttl={self.ttl}")
        for name in ("client_port", "server_port"):
            pair = getattr(self, name)
            if pair is not None:
                parts.append(f"{name}={pair[0]}-{pair[1]}")
        if self.ssrc is not None:
            parts.append(f"ssrc={self.ssrc:08X}")
        if self.mode is not None:
            # RFC 2326 quotes the mode list; clients send it bare. Quote only a list.
            parts.append(f'mode="{self.mode}"' if "," in self.mode else f"mode={self.mode}")
        for key, value in self.extra:
            parts.append(key if value is None else f"{key}={_quoted(value)}")
        return ";".join(parts)


def _quoted(value: str) -> str:
    """A value as written: quoted when the parser would strip its leading or trailing space."""
    return f'"{value}"' if value != value.strip() else value


def serialize_transport(specs: Iterable[TransportSpec]) -> str:
    """Several transport-specs as one header value, in order of preference."""
    return ",".join(spec.serialize() for spec in specs)


def _split(text: str, sep: str) -> list[str]:
    """Split on sep outside double quotes (mode="PLAY,RECORD" holds a comma)."""
    out, start, quoted = [], 0, False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            out.append(text[start:i])
            start = i + 1
    if quoted:
        raise ValueError(f"unterminated quoted string in {text!r}")
    out.append(text[start:])
    return out


def _pair(name: str, value: str | None, top: int) -> tuple[int, int]:
    if value is None:
        raise ValueError(f"{name} needs a value")
    first, dash, second = value.partition("-")
    if not _PORT.fullmatch(first.strip()) or (dash and not _PORT.fullmatch(second.strip())):
        raise ValueError(f"bad {name} {value!r}")
    a = int(first)
    b = int(second) if dash else a + 1
    if a > top or b > top:
        raise ValueError(f"{name} {value!r} out of range 0..{top}")
    return a, b


def _unquote(name: str, value: str | None) -> str:
    if value is None:
        raise ValueError(f"{name} needs a value")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if '"' in value:
        raise ValueError(f"bad quoting in {name} {value!r}")
    return value


def parse_transport_spec(text: str) -> TransportSpec:
    """Parse one transport-spec; ``UnsupportedTransport`` for a transport not served."""
    params = [p.strip() for p in _split(text, ";")]
    head = params[0].upper()
    proto, _, lower = head.partition("/")
    profile, _, lower = lower.partition("/")
    if not proto or not profile:
        raise ValueError(f"bad transport {params[0]!r}: expected RTP/AVP[/UDP|/TCP]")
    if (proto, profile) != ("RTP", "AVP"):
        raise UnsupportedTransport(f"unsupported transport {params[0]!r}")
    if lower not in ("", "UDP", "TCP"):
        raise UnsupportedTransport(f"unsupported lower transport {params[0]!r}")
    pairs: dict[str, tuple[int, int]] = {}
    texts: dict[str, str] = {}
    seen: set[str] = set()
    extra: list[tuple[str, str | None]] = []
    delivery: str | None = None
    ttl: int | None = None
    ssrc: int | None = None
    for param in params[1:]:
        if not param:
            continue  # "a;;b" and a trailing ";" occur in the wild
        raw_name, eq, raw_value = param.partition("=")
        name = raw_name.strip()
        value = raw_value.strip() if eq else None
        if not _PARAM_NAME.fullmatch(name):
            raise ValueError(f"bad parameter {param!r}")
        key = name.lower()
        if key in ("unicast", "multicast"):
            if value is not None:
                raise ValueError(f"{key} takes no value")
            if delivery is not None and delivery != key:
                raise ValueError("both unicast and multicast")
            delivery = key
            continue
        if key in seen:
            raise ValueError(f"duplicate parameter {key}")
        seen.add(key)
        if key in ("interleaved", "port", "client_port", "server_port"):
            pairs[key] = _pair(key, value, 255 if key == "interleaved" else 65535)
        elif key == "ttl":
            if value is None or not value.isascii() or not value.isdigit() or len(value) > 3:
                raise ValueError(f"bad ttl {value!r}")
            ttl = int(value)
        elif key == "ssrc":
            if value is None or not _HEX.fullmatch(value):
                raise ValueError(f"bad ssrc {value!r}: expected 1 to 8 hex digits")
            ssrc = int(value, 16)
        elif key == "mode":
            texts[key] = ",".join(m.strip() for m in _unquote(key, value).upper().split(","))
        elif key == "destination":
            texts[key] = "" if value is None else _unquote(key, value)
        elif key == "source":
            texts[key] = _unquote(key, value)
        else:
            if value is not None and not _VALUE_OK.fullmatch(value):
                value = _unquote(name, value)
                if not _VALUE_OK.fullmatch(value):
                    raise ValueError(f"bad parameter {param!r}")
            extra.append((name, value))
    return TransportSpec(
        lower_transport="TCP" if lower == "TCP" else "UDP",
        unicast=delivery != "multicast",
        destination=texts.get("destination"),
        source=texts.get("source"),
        interleaved=pairs.get("interleaved"),
        port=pairs.get("port"),
        ttl=ttl,
        client_port=pairs.get("client_port"),
        server_port=pairs.get("server_port"),
        ssrc=ssrc,
        mode=texts.get("mode"),
        extra=tuple(extra),
        explicit_udp=lower == "UDP",
    )


def parse_transport(value: str) -> list[TransportSpec]:
    """Parse a Transport header: the specs this gateway can serve, in preference order.

    Raises ``ValueError`` for a malformed header, ``UnsupportedTransport`` (a
    ValueError) when every spec is well-formed but none is RTP/AVP over UDP or TCP.
    """
    if len(value) > MAX_HEADER:
        raise ValueError(f"Transport header longer than {MAX_HEADER} characters")
    texts = [t.strip() for t in _split(value, ",")]
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("empty Transport header")
    if len(texts) > MAX_SPECS:
        raise ValueError(f"more than {MAX_SPECS} transport-specs")
    specs: list[TransportSpec] = []
    refused: list[str] = []
    for text in texts:
        try:
            specs.append(parse_transport_spec(text))
        except UnsupportedTransport as e:
            refused.append(str(e))
    if not specs:
        raise UnsupportedTransport("; ".join(refused))
    return specs
