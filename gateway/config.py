"""The validated configuration: TOML in, frozen dataclasses out.

Every error names the key and the reason (`channels[1].source: ...`); unknown
keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from .transcode.settings import DEINTERLACERS, ENCODERS, TranscodeSettings

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)
KINDS = ("mjpeg", "snapshot", "emulator", "rtsp")
RTSP_TRANSPORTS = ("tcp",)  # interleaved in the RTSP connection
AUTH_MODES = ("auto", "basic", "digest")
X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# Sizes the emulator (and the Axis 2400) produce.
RESOLUTION_RE = re.compile(r"^(\d{2,4})x(\d{2,4})$")


class ConfigError(ValueError):
    """A configuration value that cannot be used: `key` names it, `reason` says why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Listeners and process-wide settings."""

    host: str = "0.0.0.0"
    http_port: int = 8080
    rtsp_port: int = 8554
    shutdown_grace: float = 2.0
    max_connections: int = 4096  # every listener together
    max_connections_per_address: int = 256
    header_timeout: float = 10.0  # a new connection must send a whole request head by then


ROLES = ("viewer", "operator", "admin")  # each can do what the ones before it can
MAX_FILTER_ENTRIES = 256  # as on Axis devices


@dataclass(frozen=True, slots=True)
class UserConfig:
    """A user as `coaxgate passwd` prints it: hashes only, never the password."""

    name: str
    role: str
    ha1_md5: str | None = field(default=None, repr=False)
    ha1_sha256: str | None = field(default=None, repr=False)
    scrypt: str | None = field(default=None, repr=False)
    channels: tuple[str, ...] | None = None  # None: every channel


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Who may do what, and how they prove it."""

    realm: str = "coaxgate"
    anonymous_viewer: bool = True
    metrics_public: bool = False
    allow_basic_without_tls: bool = False
    nonce_ttl: float = 300.0
    failure_delay: float = 1.0  # seconds before a refusal of wrong credentials is sent
    lockout_failures: int = 10  # failures from one address within lockout_seconds ...
    lockout_seconds: float = 300.0  # ... lock it out for this long
    users: tuple[UserConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class IpFilterConfig:
    """Addresses and CIDR ranges let in (allow) or kept out (deny), before any parsing."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """HTTPS and RTSPS listeners; off without a certificate."""

    cert: str | None = None
    key: str | None = None
    https_port: int = 8443
    rtsps_port: int = 8322
    redirect_http: bool = False  # the plain HTTP port answers 308 to the HTTPS one

    @property
    def enabled(self) -> bool:
        """Whether TLS listeners run."""
        return self.cert is not None


@dataclass(frozen=True, slots=True)
class EgressConfig:
    """How much a viewer may fall behind before it loses frames, and for how long."""

    high_water: int = 512 * 1024
    stall_timeout: float = 10.0
    pacing: float = 0.25  # UDP: spread a frame's packets over this fraction of a frame interval
    socket_buffer: int = 256 * 1024  # TCP viewers' kernel send buffer; 0: the kernel's autotuning


FRAME_SIZE_POLICIES = ("reencode", "drop")
BITRATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKMG]?)(?:bit/s|bps|b/s|bit)?\s*$")


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """What viewers of a channel may take (0: no limit). Bit rates in bits per second."""

    max_fps: float = 0.0  # per viewer
    max_bitrate: int = 0  # per viewer
    burst: int = 0  # bits a viewer may send above its rate at once; 0: a quarter second's worth
    channel_bitrate: int = 0  # every viewer of the channel together
    channel_burst: int = 0
    max_frame_size: int = 0  # bytes; larger source frames are re-encoded or dropped
    max_frame_size_policy: str = "reencode"

    def public(self) -> dict[str, Any]:
        """JSON-ready, as the config API reports it."""
        return {
            "max_fps": self.max_fps or None,
            "max_bitrate": self.max_bitrate or None,
            "burst": self.burst or None,
            "channel_bitrate": self.channel_bitrate or None,
            "channel_burst": self.channel_burst or None,
            "max_frame_size": self.max_frame_size or None,
            "max_frame_size_policy": self.max_frame_size_policy,
        }


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    """A named stream profile (Axis style), chosen with `?streamprofile=NAME`."""

    name: str
    fps: float = 0.0
    bitrate: int = 0
    burst: int = 0


@dataclass(frozen=True, slots=True)
class RtspConfig:
    """RTSP sessions and the server's RTP/RTCP ports."""

    rtp_port: int = 8000  # RTCP on rtp_port + 1; 0 picks any free pair
    session_timeout: float = 60.0
    payload_size: int = 1400
    sender_report_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class QosConfig:
    """DSCP codepoints per traffic class (0-63)."""

    video: int = 34  # AF41
    audio: int = 46  # EF
    event: int = 26  # AF31
    management: int = 16  # CS2

    def codepoints(self) -> dict[str, int]:
        """Class name -> DSCP."""
        return {
            "video": self.video,
            "audio": self.audio,
            "event": self.event,
            "management": self.management,
        }


@dataclass(frozen=True, slots=True)
class TurnServer:
    """A TURN server offered to WebRTC peers."""

    url: str
    username: str | None = field(default=None, repr=False)
    credential: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class WebRtcConfig:
    """WHEP sessions: ICE servers, the UDP port range, limits."""

    stun: tuple[str, ...] = ()
    turn: tuple[TurnServer, ...] = ()
    udp_port_min: int = 0  # 0: ephemeral ports
    udp_port_max: int = 0
    connect_timeout: float = 15.0
    max_peers: int = 200
    peer_queue_frames: int = 8


@dataclass(frozen=True, slots=True)
class MulticastConfig:
    """One multicast group a channel is sent to, shared by all its multicast viewers."""

    group: str
    port: int
    ttl: int = 16
    interface: str | None = None  # an address or an interface name
    always_on: bool = False


@dataclass(frozen=True, slots=True)
class EmulatorSource:
    """Parameters of an in-process emulator source (`emulator:N?...`)."""

    camera: int = 1
    width: int = 704
    height: int = 576
    fps: float = 25.0
    quality: int = 70
    restart_interval: int = 0
    video_loss: bool = False
    stall_after: int = 0
    subsampling: str = "422"


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One input: where its frames come from and how the source is watched."""

    name: str
    index: int
    kind: str
    source: str  # without credentials: safe to log and to show
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    auth: str = "auto"
    poll_fps: float = 5.0
    stall_timeout: float = 5.0
    connect_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    max_ingest_frame: int = 4 << 20
    emulator: EmulatorSource | None = None
    rtsp_transport: str = "tcp"
    multicast: MulticastConfig | None = None
    transcode: TranscodeSettings = TranscodeSettings()  # noqa: RUF009 - frozen, shared safely
    limits: LimitsConfig = LimitsConfig()

    @property
    def has_credentials(self) -> bool:
        """Whether the source is reached with a user name and password."""
        return self.username is not None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole gateway configuration."""

    server: ServerConfig = ServerConfig()
    egress: EgressConfig = EgressConfig()
    rtsp: RtspConfig = RtspConfig()
    webrtc: WebRtcConfig = WebRtcConfig()
    transcode: TranscodeSettings = TranscodeSettings()  # noqa: RUF009 - frozen, shared safely
    qos: QosConfig = QosConfig()
    limits: LimitsConfig = LimitsConfig()
    profiles: tuple[ProfileConfig, ...] = ()
    auth: AuthConfig = AuthConfig()
    ip_filter: IpFilterConfig = IpFilterConfig()
    tls: TlsConfig = TlsConfig()
    channels: tuple[ChannelConfig, ...] = ()

    def channel(self, name: str) -> ChannelConfig | None:
        """The channel called `name`, if any."""
        for ch in self.channels:
            if ch.name == name:
                return ch
        return None

    def public(self) -> dict[str, Any]:
        """The configuration as JSON-ready data, with every secret left out."""
        return {
            "server": {
                "host": self.server.host,
                "http_port": self.server.http_port,
                "rtsp_port": self.server.rtsp_port,
                "max_connections": self.server.max_connections,
                "max_connections_per_address": self.server.max_connections_per_address,
                "header_timeout": self.server.header_timeout,
            },
            "auth": {
                "realm": self.auth.realm,
                "anonymous_viewer": self.auth.anonymous_viewer,
                "metrics_public": self.auth.metrics_public,
                "allow_basic_without_tls": self.auth.allow_basic_without_tls,
                "users": [
                    {"name": u.name, "role": u.role, "channels": u.channels}
                    for u in self.auth.users
                ],
            },
            "ip_filter": {"allow": list(self.ip_filter.allow), "deny": list(self.ip_filter.deny)},
            "tls": {
                "enabled": self.tls.enabled,
                "https_port": self.tls.https_port if self.tls.enabled else None,
                "rtsps_port": self.tls.rtsps_port if self.tls.enabled else None,
                "redirect_http": self.tls.redirect_http,
            },
            "egress": {
                "high_water": self.egress.high_water,
                "stall_timeout": self.egress.stall_timeout,
                "pacing": self.egress.pacing,
                "socket_buffer": self.egress.socket_buffer,
            },
            "qos": self.qos.codepoints(),
            "limits": self.limits.public(),
            "profiles": [
                {"name": p.name, "fps": p.fps or None, "bitrate": p.bitrate or None}
                for p in self.profiles
            ],
            "webrtc": {
                "stun": list(self.webrtc.stun),
                "turn": [t.url for t in self.webrtc.turn],
                "udp_ports": (
                    f"{self.webrtc.udp_port_min}-{self.webrtc.udp_port_max}"
                    if self.webrtc.udp_port_min
                    else None
                ),
                "max_peers": self.webrtc.max_peers,
            },
            "transcode": {
                "encoder": self.transcode.encoder,
                "preset": self.transcode.preset,
                "bitrate": self.transcode.bitrate,
                "crf": self.transcode.crf,
                "gop": self.transcode.gop_seconds,
                "deinterlace": self.transcode.deinterlace,
                "scale": list(self.transcode.scale) if self.transcode.scale else None,
                "idle_timeout": self.transcode.idle_timeout,
            },
            "rtsp": {
                "rtp_port": self.rtsp.rtp_port,
                "session_timeout": self.rtsp.session_timeout,
                "payload_size": self.rtsp.payload_size,
            },
            "channels": [
                {
                    "name": ch.name,
                    "index": ch.index,
                    "kind": ch.kind,
                    "source": ch.source,
                    "auth": ch.auth if ch.has_credentials else None,
                    "poll_fps": ch.poll_fps if ch.kind == "snapshot" else None,
                    "stall_timeout": ch.stall_timeout,
                    "multicast": (
                        {
                            "group": ch.multicast.group,
                            "port": ch.multicast.port,
                            "ttl": ch.multicast.ttl,
                            "interface": ch.multicast.interface,
                            "always_on": ch.multicast.always_on,
                        }
                        if ch.multicast
                        else None
                    ),
                    "limits": ch.limits.public(),
                }
                for ch in self.channels
            ],
        }


class _Table:
    """A TOML table being read: takes keys one by one, then rejects what is left."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path or "<root>", f"must be a table, got {_kind(data)}")
        self.data = dict(data)
        self.path = path

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str, default: Any = None) -> Any:
        return self.data.pop(name, default)

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.take(name, default)
        if value is not None and not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, got {_kind(value)}")
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        value = self.take(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(name), f"must be an integer, got {_kind(value)}")
        if not lo <= value <= hi:
            raise ConfigError(self.key(name), f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        value = self.take(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.key(name), f"must be a number, got {_kind(value)}")
        if not lo <= value <= hi:
            raise ConfigError(self.key(name), f"must be between {lo} and {hi}, got {value}")
        return float(value)

    def size(self, name: str, default: int, lo: int, hi: int) -> int:
        """A byte count written as an integer or as a string like "512K" or "4M"."""
        value = self.take(name, default)
        if isinstance(value, str):
            value = parse_size(value, self.key(name))
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(name), f"must be a size like 4M, got {_kind(value)}")
        if not lo <= value <= hi:
            raise ConfigError(self.key(name), f"must be between {lo} and {hi} bytes, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.take(name, default)
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, got {_kind(value)}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default)
        assert value is not None
        if value not in choices:
            raise ConfigError(self.key(name), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def finish(self) -> None:
        for name in self.data:
            raise ConfigError(self.key(name), "unknown key")


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def parse_size(text: str, key: str = "size") -> int:
    """Parse "4M", "512K", "1.5M" or "1000" into bytes (binary multiples)."""
    m = SIZE_RE.match(text)
    if not m:
        raise ConfigError(key, f"must be a size like 512K or 4M, got {text!r}")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def parse_resolution(text: str, key: str = "resolution") -> tuple[int, int]:
    """Parse "704x576" into (width, height)."""
    m = RESOLUTION_RE.match(text)
    if not m:
        raise ConfigError(key, f"must look like 704x576, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML configuration file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(str(path), f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), f"not valid TOML: {e}") from None
    return parse(data, environ)


def parse(data: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Config:
    """Validate parsed TOML data into a Config."""
    env = os.environ if environ is None else environ
    root = _Table(data, "")
    server = _server(_Table(root.take("server", {}), "server"))
    egress = _egress(_Table(root.take("egress", {}), "egress"))
    rtsp = _rtsp(_Table(root.take("rtsp", {}), "rtsp"))
    webrtc = _webrtc(_Table(root.take("webrtc", {}), "webrtc"), env)
    transcode = _transcode(_Table(root.take("transcode", {}), "transcode"), TranscodeSettings())
    qos = _qos(_Table(root.take("qos", {}), "qos"))
    limits = _limits(_Table(root.take("limits", {}), "limits"), LimitsConfig())
    profiles = _profiles(root.take("profiles", []))
    raw_channels = root.take("channels", [])
    if not isinstance(raw_channels, list):
        raise ConfigError("channels", "must be an array of tables ([[channels]])")
    channels: list[ChannelConfig] = []
    for i, raw in enumerate(raw_channels):
        ch = _channel(_Table(raw, f"channels[{i}]"), i + 1, env, transcode, limits)
        if any(c.name == ch.name for c in channels):
            raise ConfigError(f"channels[{i}].name", f"duplicate channel name {ch.name!r}")
        channels.append(ch)
    users = _users(root.take("users", []), {c.name for c in channels})
    auth = _auth(_Table(root.take("auth", {}), "auth"), users)
    ip_filter = _ip_filter(_Table(root.take("ip_filter", {}), "ip_filter"))
    tls = _tls(_Table(root.take("tls", {}), "tls"))
    root.finish()
    if tls.redirect_http and not tls.enabled:
        raise ConfigError("tls.redirect_http", "needs tls.cert and tls.key")
    if server.http_port and server.http_port == server.rtsp_port:
        raise ConfigError("server.rtsp_port", "must differ from server.http_port")
    if tls.enabled:
        taken = {"server.http_port": server.http_port, "server.rtsp_port": server.rtsp_port}
        for name, port in (("tls.https_port", tls.https_port), ("tls.rtsps_port", tls.rtsps_port)):
            for other, used in taken.items():
                if port and port == used:
                    raise ConfigError(name, f"must differ from {other}")
            taken[name] = port
    groups: dict[tuple[str, int], str] = {}
    for i, ch in enumerate(channels):
        if ch.multicast is None:
            continue
        key = (ch.multicast.group, ch.multicast.port)
        if key in groups:
            raise ConfigError(
                f"channels[{i}].multicast.port",
                f"{key[0]}:{key[1]} is already used by channel {groups[key]!r}",
            )
        groups[key] = ch.name
    return Config(
        server=server,
        egress=egress,
        rtsp=rtsp,
        webrtc=webrtc,
        transcode=transcode,
        qos=qos,
        limits=limits,
        profiles=profiles,
        auth=auth,
        ip_filter=ip_filter,
        tls=tls,
        channels=tuple(channels),
    )


def _server(t: _Table) -> ServerConfig:
    host = t.string("host", "0.0.0.0")
    assert host is not None
    cfg = ServerConfig(
        host=host,
        http_port=t.integer("http_port", 8080, 0, 65535),
        rtsp_port=t.integer("rtsp_port", 8554, 0, 65535),
        shutdown_grace=t.number("shutdown_grace", 2.0, 0.0, 60.0),
        max_connections=t.integer("max_connections", 4096, 16, 1_000_000),
        max_connections_per_address=t.integer("max_connections_per_address", 256, 1, 1_000_000),
        header_timeout=t.number("header_timeout", 10.0, 0.5, 600.0),
    )
    t.finish()
    return cfg


HEX_RE = re.compile(r"^[0-9a-f]+$")
SCRYPT_RE = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")


def _users(raw: Any, channel_names: set[str]) -> tuple[UserConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError("users", "must be an array of tables ([[users]])")
    users: list[UserConfig] = []
    for i, item in enumerate(raw):
        t = _Table(item, f"users[{i}]")
        name = t.string("name")
        if not name or len(name) > 64 or any(c in name for c in ':"\\') or not name.isprintable():
            raise ConfigError(t.key("name"), 'is required: 1-64 printable characters, no : " \\')
        if any(u.name == name for u in users):
            raise ConfigError(t.key("name"), f"user {name!r} is defined twice")
        role = t.choice("role", "viewer", ROLES)
        ha1_md5 = t.string("ha1_md5")
        if ha1_md5 is not None and not (len(ha1_md5) == 32 and HEX_RE.match(ha1_md5)):
            raise ConfigError(t.key("ha1_md5"), "must be 32 lower-case hex digits")
        ha1_sha256 = t.string("ha1_sha256")
        if ha1_sha256 is not None and not (len(ha1_sha256) == 64 and HEX_RE.match(ha1_sha256)):
            raise ConfigError(t.key("ha1_sha256"), "must be 64 lower-case hex digits")
        scrypt = t.string("scrypt")
        if scrypt is not None and not SCRYPT_RE.match(scrypt):
            raise ConfigError(t.key("scrypt"), "must be scrypt$N$r$p$salt$hash")
        if ha1_md5 is None and ha1_sha256 is None and scrypt is None:
            raise ConfigError(t.key("name"), "has no password hash: use coaxgate passwd")
        channels = t.take("channels")
        if channels is not None:
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
                raise ConfigError(t.key("channels"), "must be an array of channel names")
            for c in channels:
                if c not in channel_names:
                    raise ConfigError(t.key("channels"), f"no channel {c!r}")
            channels = tuple(channels)
        users.append(UserConfig(name, role, ha1_md5, ha1_sha256, scrypt, channels))
        t.finish()
    return tuple(users)


def _auth(t: _Table, users: tuple[UserConfig, ...]) -> AuthConfig:
    realm = t.string("realm", "coaxgate")
    if not realm or len(realm) > 64 or '"' in realm or not realm.isprintable():
        raise ConfigError(t.key("realm"), 'must be 1-64 printable characters without "')
    cfg = AuthConfig(
        realm=realm,
        # Open for viewing only while no user is configured.
        anonymous_viewer=t.boolean("anonymous_viewer", not users),
        metrics_public=t.boolean("metrics_public", False),
        allow_basic_without_tls=t.boolean("allow_basic_without_tls", False),
        nonce_ttl=t.number("nonce_ttl", 300.0, 5.0, 86400.0),
        failure_delay=t.number("failure_delay", 1.0, 0.0, 10.0),
        lockout_failures=t.integer("lockout_failures", 10, 1, 10_000),
        lockout_seconds=t.number("lockout_seconds", 300.0, 0.0, 86400.0),
        users=users,
    )
    t.finish()
    return cfg


def _networks(t: _Table, name: str) -> tuple[str, ...]:
    raw = t.take(name, [])
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ConfigError(t.key(name), "must be an array of addresses or CIDR ranges")
    if len(raw) > MAX_FILTER_ENTRIES:
        raise ConfigError(t.key(name), f"at most {MAX_FILTER_ENTRIES} entries")
    out = []
    for i, text in enumerate(raw):
        try:
            out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise ConfigError(f"{t.key(name)}[{i}]", f"not an address or range: {text!r}") from None
    return tuple(out)


def _ip_filter(t: _Table) -> IpFilterConfig:
    cfg = IpFilterConfig(allow=_networks(t, "allow"), deny=_networks(t, "deny"))
    t.finish()
    return cfg


def _tls(t: _Table) -> TlsConfig:
    cert, key = t.string("cert"), t.string("key")
    if (cert is None) != (key is None):
        raise ConfigError(t.key("key" if key is None else "cert"), "cert and key go together")
    for name, path in (("cert", cert), ("key", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(t.key(name), f"no such file: {path}")
    cfg = TlsConfig(
        cert=cert,
        key=key,
        https_port=t.integer("https_port", 8443, 0, 65535),
        rtsps_port=t.integer("rtsps_port", 8322, 0, 65535),
        redirect_http=t.boolean("redirect_http", False),
    )
    t.finish()
    return cfg


def _egress(t: _Table) -> EgressConfig:
    cfg = EgressConfig(
        high_water=t.size("high_water", 512 * 1024, 16 * 1024, 64 << 20),
        stall_timeout=t.number("stall_timeout", 10.0, 0.5, 3600.0),
        pacing=t.number("pacing", 0.25, 0.0, 0.9),
        socket_buffer=t.size("socket_buffer", 256 * 1024, 0, 64 << 20),
    )
    t.finish()
    return cfg


def _rtsp(t: _Table) -> RtspConfig:
    rtp_port = t.integer("rtp_port", 8000, 0, 65534)
    if rtp_port % 2:
        raise ConfigError(t.key("rtp_port"), "must be even (RTCP uses the next port)")
    cfg = RtspConfig(
        rtp_port=rtp_port,
        session_timeout=t.number("session_timeout", 60.0, 5.0, 3600.0),
        payload_size=t.integer("payload_size", 1400, 400, 8900),
        sender_report_interval=t.number("sender_report_interval", 5.0, 0.5, 60.0),
    )
    t.finish()
    return cfg


def _ice_url(url: str, key: str, schemes: tuple[str, ...]) -> str:
    scheme = url.partition(":")[0].lower()
    if scheme not in schemes or not url.partition(":")[2]:
        raise ConfigError(key, f"must be a {' or '.join(schemes)} URL, got {url!r}")
    return url


def _webrtc(t: _Table, env: Mapping[str, str]) -> WebRtcConfig:
    stun = t.take("stun", [])
    if not isinstance(stun, list) or not all(isinstance(u, str) for u in stun):
        raise ConfigError(t.key("stun"), "must be an array of stun: URLs")
    stun_urls = tuple(_ice_url(u, t.key("stun"), ("stun", "stuns")) for u in stun)
    raw_turn = t.take("turn", [])
    if not isinstance(raw_turn, list):
        raise ConfigError(t.key("turn"), "must be an array of tables ([[webrtc.turn]])")
    turn = []
    for i, raw in enumerate(raw_turn):
        tt = _Table(raw, f"{t.key('turn')}[{i}]")
        url = tt.string("url")
        if url is None:
            raise ConfigError(tt.key("url"), "is required")
        username = tt.string("username")
        credential = tt.string("credential")
        credential_env = tt.string("credential_env")
        if credential_env is not None:
            if credential is not None:
                raise ConfigError(tt.key("credential_env"), "use credential or credential_env")
            if credential_env not in env:
                raise ConfigError(
                    tt.key("credential_env"), f"environment variable {credential_env} is not set"
                )
            credential = env[credential_env]
        tt.finish()
        turn.append(
            TurnServer(_ice_url(url, tt.key("url"), ("turn", "turns")), username, credential)
        )
    low = high = 0
    ports = t.string("udp_ports")
    if ports is not None:
        a, sep, b = ports.partition("-")
        if not sep or not a.strip().isdigit() or not b.strip().isdigit():
            raise ConfigError(t.key("udp_ports"), f"must look like 40000-40100, got {ports!r}")
        low, high = int(a), int(b)
        if not 1024 <= low <= high <= 65535:
            raise ConfigError(t.key("udp_ports"), "must be a range within 1024-65535")
    cfg = WebRtcConfig(
        stun=stun_urls,
        turn=tuple(turn),
        udp_port_min=low,
        udp_port_max=high,
        connect_timeout=t.number("connect_timeout", 15.0, 1.0, 300.0),
        max_peers=t.integer("max_peers", 200, 1, 10000),
        peer_queue_frames=t.integer("peer_queue_frames", 8, 2, 250),
    )
    t.finish()
    return cfg


def _multicast(t: _Table) -> MulticastConfig:
    group = t.string("group")
    if group is None:
        raise ConfigError(t.key("group"), "is required")
    try:
        address = ipaddress.ip_address(group)
    except ValueError:
        raise ConfigError(t.key("group"), f"not an IP address: {group!r}") from None
    if not address.is_multicast:
        raise ConfigError(t.key("group"), f"{group} is not a multicast address")
    port = t.integer("port", 5004, 1024, 65534)
    if port % 2:
        raise ConfigError(t.key("port"), "must be even (RTCP uses the next port)")
    cfg = MulticastConfig(
        group=str(address),
        port=port,
        ttl=t.integer("ttl", 16, 0, 255),
        interface=t.string("interface"),
        always_on=t.boolean("always_on", False),
    )
    t.finish()
    return cfg


def parse_bitrate(value: Any, key: str) -> int:
    """Bits per second from an integer or a string like "4M", "512k", "1.5Mbit/s" (SI units)."""
    if isinstance(value, str):
        m = BITRATE_RE.match(value)
        if not m:
            raise ConfigError(key, f"must be a bit rate like 512k or 4M, got {value!r}")
        scale = {"": 1, "k": 1000, "K": 1000, "M": 1_000_000, "G": 1_000_000_000}[m.group(2)]
        value = round(float(m.group(1)) * scale)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be a bit rate like 4M, got {_kind(value)}")
    if not 0 <= value <= 10_000_000_000:
        raise ConfigError(key, f"must be between 0 and 10G, got {value}")
    return value


def _limits(t: _Table, base: LimitsConfig) -> LimitsConfig:
    """Limits: keys not given keep `base` (the global [limits] for a channel)."""

    def rate(name: str, default: int) -> int:
        return parse_bitrate(t.take(name), t.key(name)) if name in t.data else default

    cfg = LimitsConfig(
        max_fps=t.number("max_fps", base.max_fps, 0.0, 100.0),
        max_bitrate=rate("max_bitrate", base.max_bitrate),
        burst=rate("burst", base.burst),
        channel_bitrate=rate("channel_bitrate", base.channel_bitrate),
        channel_burst=rate("channel_burst", base.channel_burst),
        max_frame_size=t.size("max_frame_size", base.max_frame_size, 0, 64 << 20),
        max_frame_size_policy=t.choice(
            "max_frame_size_policy", base.max_frame_size_policy, FRAME_SIZE_POLICIES
        ),
    )
    if 0 < cfg.max_frame_size < 4096:
        raise ConfigError(t.key("max_frame_size"), "must be 0 (no limit) or at least 4K")
    t.finish()
    return cfg


def _profiles(raw: Any) -> tuple[ProfileConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError("profiles", "must be an array of tables ([[profiles]])")
    profiles: list[ProfileConfig] = []
    for i, item in enumerate(raw):
        t = _Table(item, f"profiles[{i}]")
        name = t.string("name")
        if name is None or not NAME_RE.match(name):
            raise ConfigError(t.key("name"), f"is required, [A-Za-z0-9_-] only; got {name!r}")
        if any(p.name == name for p in profiles):
            raise ConfigError(t.key("name"), f"profile {name!r} is defined twice")
        profile = ProfileConfig(
            name=name,
            fps=t.number("fps", 0.0, 0.0, 100.0),
            bitrate=parse_bitrate(t.take("bitrate", 0), t.key("bitrate")),
            burst=parse_bitrate(t.take("burst", 0), t.key("burst")),
        )
        t.finish()
        profiles.append(profile)
    return tuple(profiles)


def _qos(t: _Table) -> QosConfig:
    def dscp(name: str, default: int) -> int:
        value = t.take(name, default)
        if isinstance(value, str):  # "0x22", "34", "AF41" is not accepted: numbers only
            text = value.strip().lower()
            try:
                value = int(text, 16) if text.startswith("0x") else int(text, 10)
            except ValueError:
                raise ConfigError(t.key(name), f"must be a DSCP 0-63, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
            raise ConfigError(t.key(name), f"must be a DSCP 0-63, got {value!r}")
        return value

    cfg = QosConfig(
        video=dscp("video", 34),
        audio=dscp("audio", 46),
        event=dscp("event", 26),
        management=dscp("management", 16),
    )
    t.finish()
    return cfg


def _transcode(t: _Table, base: TranscodeSettings) -> TranscodeSettings:
    """Encoder settings: keys not given keep `base` (the global [transcode] for a channel)."""
    # bitrate and crf are alternatives: naming one here overrides the other inherited.
    if "bitrate" in t.data and "crf" in t.data:
        raise ConfigError(t.key("crf"), "set either bitrate or crf, not both")
    bitrate, crf = base.bitrate, base.crf
    if "bitrate" in t.data:
        bitrate, crf = t.size("bitrate", 0, 64_000, 100_000_000), None
    elif "crf" in t.data:
        bitrate, crf = None, t.integer("crf", 23, 0, 51)
    scale = base.scale
    text = t.string("scale")
    if text is not None:
        scale = parse_resolution(text, t.key("scale")) if text else None
        if scale is not None and (scale[0] % 2 or scale[1] % 2 or min(scale) < 16):
            raise ConfigError(t.key("scale"), "width and height must be even and at least 16")
    encoder = t.choice("encoder", base.encoder, ENCODERS)
    deinterlace = t.choice("deinterlace", base.deinterlace, DEINTERLACERS)
    preset = t.choice("preset", base.preset, X264_PRESETS)
    cfg = TranscodeSettings(
        encoder=encoder,  # type: ignore[arg-type]
        preset=preset,
        bitrate=bitrate,
        crf=crf,
        gop_seconds=t.number("gop", base.gop_seconds, 0.1, 60.0),
        deinterlace=deinterlace,  # type: ignore[arg-type]
        scale=scale,
        idle_timeout=t.number("idle_timeout", base.idle_timeout, 0.0, 3600.0),
        queue_frames=t.integer("queue_frames", base.queue_frames, 1, 100),
        threads=base.threads,
    )
    t.finish()
    return cfg


def _channel(
    t: _Table,
    index: int,
    env: Mapping[str, str],
    transcode: TranscodeSettings,
    limits: LimitsConfig,
) -> ChannelConfig:
    name = t.string("name")
    if name is None:
        raise ConfigError(t.key("name"), "is required")
    if not NAME_RE.match(name):
        raise ConfigError(t.key("name"), f"must match [A-Za-z0-9_-]{{1,64}}, got {name!r}")
    source = t.string("source")
    if source is None:
        raise ConfigError(t.key("source"), "is required")
    parts = urlsplit(source)
    scheme = parts.scheme.lower()
    default_kind = {
        "http": "mjpeg",
        "https": "mjpeg",
        "emulator": "emulator",
        "rtsp": "rtsp",
    }.get(scheme)
    kind = t.choice("kind", default_kind or "mjpeg", KINDS)
    if kind in ("mjpeg", "snapshot") and scheme not in ("http", "https"):
        raise ConfigError(t.key("source"), f"a {kind} source must be an http or https URL")
    if kind == "rtsp" and scheme != "rtsp":
        raise ConfigError(t.key("source"), "an rtsp source must be an rtsp:// URL")
    if kind == "emulator" and scheme != "emulator":
        raise ConfigError(
            t.key("source"), "an emulator source looks like emulator:1?resolution=704x576"
        )

    username = t.string("username")
    password = t.string("password")
    password_env = t.string("password_env")
    if kind != "emulator":
        if not parts.hostname:
            raise ConfigError(t.key("source"), "has no host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ConfigError(t.key("source"), "has an invalid port") from None
        if parts.username is not None:
            if username is not None:
                raise ConfigError(t.key("username"), "given twice: in the URL and as a key")
            username = unquote(parts.username)
            if parts.password is not None:
                if password is not None or password_env is not None:
                    raise ConfigError(t.key("password"), "given twice: in the URL and as a key")
                password = unquote(parts.password)
    if password is not None and password_env is not None:
        raise ConfigError(t.key("password_env"), "use either password or password_env, not both")
    if password_env is not None:
        if password_env not in env:
            raise ConfigError(
                t.key("password_env"), f"environment variable {password_env} is not set"
            )
        password = env[password_env]
    if password is not None and username is None:
        raise ConfigError(t.key("username"), "a password needs a user name")
    if username is not None and password is None:
        password = ""

    emulator = _emulator_source(parts, t.key("source")) if kind == "emulator" else None
    cfg = ChannelConfig(
        name=name,
        index=index,
        kind=kind,
        source=_strip_userinfo(source) if kind != "emulator" else source,
        username=username,
        password=password,
        auth=t.choice("auth", "auto", AUTH_MODES),
        poll_fps=t.number("poll_fps", 5.0, 0.1, 60.0),
        stall_timeout=t.number("stall_timeout", 5.0, 0.2, 600.0),
        connect_timeout=t.number("connect_timeout", 10.0, 0.1, 120.0),
        reconnect_min=t.number("reconnect_min", 0.5, 0.01, 60.0),
        reconnect_max=t.number("reconnect_max", 30.0, 0.01, 3600.0),
        max_ingest_frame=t.size("max_ingest_frame", 4 << 20, 1024, 64 << 20),
        emulator=emulator,
        rtsp_transport=t.choice("rtsp_transport", "tcp", RTSP_TRANSPORTS),
        multicast=_multicast(_Table(t.take("multicast"), t.key("multicast")))
        if "multicast" in t.data
        else None,
        transcode=_transcode(_Table(t.take("transcode", {}), t.key("transcode")), transcode),
        limits=_limits(_Table(t.take("limits", {}), t.key("limits")), limits),
    )
    if cfg.reconnect_max < cfg.reconnect_min:
        raise ConfigError(t.key("reconnect_max"), "must not be below reconnect_min")
    t.finish()
    return cfg


def _emulator_source(parts: Any, key: str) -> EmulatorSource:
    camera_text = (parts.netloc or parts.path).strip("/") or "1"
    if not camera_text.isdigit() or not 1 <= int(camera_text) <= 64:
        raise ConfigError(key, f"emulator camera must be 1..64, got {camera_text!r}")
    q = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    known = {
        "resolution",
        "fps",
        "quality",
        "restart_interval",
        "video_loss",
        "stall_after",
        "subsampling",
    }
    for k in q:
        if k not in known:
            raise ConfigError(key, f"unknown emulator parameter {k!r}")
    width, height = parse_resolution(q.get("resolution", "704x576"), key)
    subsampling = q.get("subsampling", "422")
    if subsampling not in ("420", "422", "444", "gray"):
        raise ConfigError(
            key, f"emulator subsampling must be 420, 422, 444 or gray, got {subsampling!r}"
        )
    try:
        return EmulatorSource(
            camera=int(camera_text),
            width=width,
            height=height,
            fps=float(q.get("fps", "25")),
            quality=int(q.get("quality", "70")),
            restart_interval=int(q.get("restart_interval", "0")),
            video_loss=q.get("video_loss", "0") in ("1", "true", "yes"),
            stall_after=int(q.get("stall_after", "0")),
            subsampling=subsampling,
        )
    except ValueError:
        raise ConfigError(key, "emulator parameters must be numbers") from None


def _strip_userinfo(url: str) -> str:
    """The URL without user name and password, so it can be logged and shown."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
