"""The `coaxgate` command: demo, run, emulate, check."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import logging
import resource
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from . import __version__, config
from .log import setup as setup_logging

log = logging.getLogger("coaxgate")

DEMO_CHANNELS = ("lobby", "entrance", "parking", "loading-dock")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _resolution(text: str) -> tuple[int, int]:
    try:
        return config.parse_resolution(text)
    except config.ConfigError as e:
        raise argparse.ArgumentTypeError(e.reason) from None


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("must be NAME:PASSWORD")
    return name, password


def _cameras(text: str) -> set[int]:
    try:
        return {int(part) for part in text.split(",") if part}
    except ValueError:
        raise argparse.ArgumentTypeError("must be camera numbers like 2 or 2,3") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="coaxgate",
        description=(
            "Streaming media gateway for analog-era video servers (Axis 2400 class): "
            "pulls Motion-JPEG from each input and re-serves it to any number of viewers."
        ),
    )
    parser.add_argument("--version", action="version", version=f"coaxgate {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity (default: info)",
    )
    parser.add_argument(
        "--loop",
        default="uvloop",
        choices=("uvloop", "asyncio"),
        help="event loop implementation (default: uvloop)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the gateway in front of a built-in four-input Axis 2400 emulator",
        description="Start an Axis 2400 emulator on loopback and a gateway in front of it, "
        "then print the URLs to open. Ctrl-C stops both.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address the gateway listens on")
    demo.add_argument("--http-port", type=_port, default=8080, help="gateway HTTP port (8080)")
    demo.add_argument("--rtsp-port", type=_port, default=8554, help="gateway RTSP port (8554)")
    demo.add_argument("--emulator-port", type=_port, default=0, help="emulator port (any free)")
    demo.add_argument("--fps", type=float, default=25.0, help="emulated frame rate (25)")
    demo.add_argument(
        "--resolution",
        type=_resolution,
        default=(704, 576),
        help="emulated size, e.g. 704x576 (PAL D1) or 704x480 (NTSC)",
    )

    run = sub.add_parser(
        "run",
        help="run the gateway from a configuration file",
        description="Run the gateway as configured in a TOML file until SIGINT or SIGTERM.",
    )
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="TOML configuration")
    run.add_argument("--http-port", type=_port, help="override server.http_port")
    run.add_argument("--rtsp-port", type=_port, help="override server.rtsp_port")

    emulate = sub.add_parser(
        "emulate",
        help="run only the Axis 2400 emulator",
        description="Serve the VAPIX API of an Axis 2400 video server (video.cgi, image.cgi, "
        "param.cgi) with synthetic analog-looking inputs, optionally with device faults.",
    )
    emulate.add_argument("--port", type=_port, required=True, help="HTTP port to listen on")
    emulate.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    emulate.add_argument("--channels", type=int, default=4, help="number of inputs (4)")
    emulate.add_argument("--fps", type=float, default=25.0, help="frame rate (25)")
    emulate.add_argument(
        "--resolution", type=_resolution, default=(704, 576), help="default size (704x576)"
    )
    emulate.add_argument("--compression", type=int, default=30, help="VAPIX compression 0..100")
    emulate.add_argument(
        "--user", type=_user, metavar="NAME:PASSWORD", help="require HTTP authentication"
    )
    emulate.add_argument(
        "--auth",
        choices=("basic", "digest"),
        default="basic",
        help="authentication scheme with --user (basic, as the 2400)",
    )
    emulate.add_argument("--labels", help="comma-separated names burned into each input")
    fault = emulate.add_argument_group("device faults")
    fault.add_argument(
        "--no-content-length", action="store_true", help="send parts without Content-Length"
    )
    fault.add_argument(
        "--restart-interval",
        type=int,
        default=0,
        metavar="MCUS",
        help="JPEG restart markers every MCUS MCUs (DRI)",
    )
    fault.add_argument(
        "--video-loss",
        type=_cameras,
        default=set(),
        metavar="N[,N]",
        help="inputs with no camera attached (blue video-loss picture)",
    )
    fault.add_argument(
        "--stall",
        type=_cameras,
        default=set(),
        metavar="N[,N]",
        help="inputs that stop sending but keep the connection open",
    )
    fault.add_argument(
        "--stall-after",
        type=int,
        default=25,
        metavar="FRAMES",
        help="frames sent before a --stall input goes silent (25)",
    )
    fault.add_argument(
        "--corrupt-every",
        type=int,
        default=0,
        metavar="N",
        help="every Nth part is truncated or garbage",
    )
    fault.add_argument(
        "--subsampling",
        choices=("422", "420", "444", "gray"),
        default="422",
        help="JPEG chroma subsampling (422 as the 2400; 444 and gray need re-encoding for RTP)",
    )

    check = sub.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate a TOML configuration; exit 0 if usable, 2 with the key and "
        "the reason if not.",
    )
    check.add_argument("-c", "--config", required=True, metavar="FILE", help="TOML configuration")

    cert = sub.add_parser(
        "cert",
        help="write a self-signed TLS certificate and key for the HTTPS and RTSPS listeners",
        description="Write a self-signed certificate (subjectAltName: the --host names and "
        "addresses) and its private key (mode 0600), then print the [tls] TOML to paste. "
        "Existing files are not replaced without --force.",
    )
    cert.add_argument("--cert", default="coaxgate.crt", metavar="FILE", help="(coaxgate.crt)")
    cert.add_argument("--key", default="coaxgate.key", metavar="FILE", help="(coaxgate.key)")
    cert.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="a host name or IP address clients use; repeat for more "
        "(default: localhost, 127.0.0.1, ::1)",
    )
    cert.add_argument("--days", type=int, default=825, help="validity in days (825)")
    cert.add_argument("--rsa", action="store_true", help="RSA 2048 instead of ECDSA P-256")
    cert.add_argument("--force", action="store_true", help="replace existing files")

    passwd = sub.add_parser(
        "passwd",
        help="print a [[users]] entry for a user, reading the password from standard input",
        description="Read a password from standard input (a terminal prompts twice) and print "
        "the [[users]] TOML entry to paste into the config: Digest HA1s (MD5, SHA-256) for "
        "the realm, and an scrypt hash for Basic. The password itself is never stored.",
    )
    passwd.add_argument("name", help="user name")
    passwd.add_argument("--role", choices=config.ROLES, default="viewer")
    passwd.add_argument("--realm", default="coaxgate", help="the [auth] realm (default coaxgate)")
    passwd.add_argument(
        "--channels", metavar="A,B", help="only these channels (default: every channel)"
    )
    return parser


def raise_fd_limit() -> None:
    """Hundreds of viewers need more descriptors than the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1 << 20), hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `coaxgate` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    raise_fd_limit()
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": cmd_demo,
        "run": cmd_run,
        "emulate": cmd_emulate,
        "check": cmd_check,
        "cert": cmd_cert,
        "passwd": cmd_passwd,
    }
    try:
        return handlers[args.command](args)
    except config.ConfigError as e:
        print(f"coaxgate: config error: {e}", file=sys.stderr)
        return 2


def _run_async(args: argparse.Namespace, main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    factory: Callable[[], asyncio.AbstractEventLoop]
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"coaxgate: cannot listen: {e.strerror}", file=sys.stderr)
            return 1
        raise
    return 0


def _with_ports(cfg: config.Config, http_port: int | None, rtsp_port: int | None) -> config.Config:
    server = cfg.server
    if http_port is not None:
        server = dataclasses.replace(server, http_port=http_port)
    if rtsp_port is not None:
        server = dataclasses.replace(server, rtsp_port=rtsp_port)
    return dataclasses.replace(cfg, server=server)


def cmd_run(args: argparse.Namespace) -> int:
    """coaxgate run -c FILE."""
    from .app import Gateway, serve_until_signalled

    cfg = _with_ports(config.load(args.config), args.http_port, args.rtsp_port)
    return _run_async(args, lambda: serve_until_signalled(Gateway(cfg)))


def cmd_check(args: argparse.Namespace) -> int:
    """coaxgate check -c FILE."""
    cfg = config.load(args.config)
    if cfg.tls.enabled:
        from .security.tls import server_context

        server_context(cfg.tls)  # a certificate that does not load, or fit its key, fails here
    print(f"{args.config}: OK, {len(cfg.channels)} channel(s)")
    for ch in cfg.channels:
        print(f"  {ch.index}. {ch.name}: {ch.kind} {ch.source}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    """coaxgate passwd NAME --role ROLE: the [[users]] entry for a password read from stdin."""
    import getpass
    import json

    from .security.users import MAX_PASSWORD, user_entry, user_toml

    name = args.name
    if not name or len(name) > 64 or any(c in name for c in ':"\\') or not name.isprintable():
        print('coaxgate: a user name is 1-64 printable characters, no : " \\', file=sys.stderr)
        return 2
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            print("coaxgate: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password or len(password) > MAX_PASSWORD:
        print(f"coaxgate: the password must be 1-{MAX_PASSWORD} characters", file=sys.stderr)
        return 2
    entry = user_entry(name, args.role, args.realm, password)
    text = user_toml(entry, args.realm)
    if args.channels:
        channels = [c.strip() for c in args.channels.split(",") if c.strip()]
        text += f"channels = {json.dumps(channels)}\n"
    sys.stdout.write(text)
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    """coaxgate cert [--cert FILE] [--key FILE] [--host NAME]... [--days N]."""
    import json
    import os
    from pathlib import Path

    from .security import tls

    cert_path, key_path = Path(args.cert).absolute(), Path(args.key).absolute()
    if cert_path == key_path:
        print("coaxgate: --cert and --key must be different files", file=sys.stderr)
        return 2
    if not 1 <= args.days <= 36500:
        print("coaxgate: --days must be 1..36500", file=sys.stderr)
        return 2
    if not args.force:
        for path in (cert_path, key_path):
            if path.exists():
                print(f"coaxgate: {path} exists; --force replaces it", file=sys.stderr)
                return 1
    try:
        cert_pem, key_pem = tls.self_signed(args.host or tls.DEFAULT_HOSTS, args.days, args.rsa)
    except ValueError as e:
        print(f"coaxgate: {e}", file=sys.stderr)
        return 2
    try:
        tls.write_private(key_path, key_pem, args.force)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL)
        fd = os.open(cert_path, flags, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem)
    except OSError as e:
        print(f"coaxgate: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    hosts = ", ".join(args.host or tls.DEFAULT_HOSTS)
    print(f"# self-signed for {hosts}, valid {args.days} days")
    print(f"# SHA-256 fingerprint {tls.fingerprint(cert_pem)}")
    print("[tls]")
    print(f"cert = {json.dumps(str(cert_path))}")
    print(f"key = {json.dumps(str(key_path))}")
    print("https_port = 8443")
    print("rtsps_port = 8322")
    print("# redirect_http = true   # the plain HTTP port answers 308 to HTTPS")
    return 0


def emulator_options(args: argparse.Namespace) -> Any:
    """EmulatorOptions from the `emulate` arguments."""
    from .sources.emulator import EmulatorOptions

    user, password = args.user if args.user else (None, None)
    return EmulatorOptions(
        channels=args.channels,
        fps=args.fps,
        resolution=args.resolution,
        compression=args.compression,
        user=user,
        password=password,
        auth=args.auth,
        labels=tuple(args.labels.split(",")) if args.labels else (),
        no_content_length=args.no_content_length,
        restart_interval=args.restart_interval,
        video_loss=frozenset(args.video_loss),
        stall=frozenset(args.stall),
        stall_after=args.stall_after,
        corrupt_every=args.corrupt_every,
        subsampling=args.subsampling,
    )


def cmd_emulate(args: argparse.Namespace) -> int:
    """coaxgate emulate --port P ..."""
    from .app import until_signalled
    from .sources.emulator import Emulator

    if not 1 <= args.channels <= 64:
        print("coaxgate: --channels must be 1..64", file=sys.stderr)
        return 2
    if not 0 < args.fps <= 60:
        print("coaxgate: --fps must be in (0, 60]", file=sys.stderr)
        return 2
    emulator = Emulator(emulator_options(args))

    async def serve() -> None:
        await emulator.start(args.host, args.port)
        try:
            await until_signalled()
        finally:
            await emulator.stop()

    return _run_async(args, serve)


def cmd_demo(args: argparse.Namespace) -> int:
    """coaxgate demo: the emulator and a gateway in front of it."""
    from .app import Gateway, serve_until_signalled
    from .sources.emulator import Emulator, EmulatorOptions

    w, h = args.resolution
    emulator = Emulator(
        EmulatorOptions(channels=4, fps=args.fps, resolution=(w, h), labels=DEMO_CHANNELS)
    )

    async def serve() -> None:
        eport = await emulator.start("127.0.0.1", args.emulator_port)
        cfg = config.parse(
            {
                "server": {
                    "host": args.host,
                    "http_port": args.http_port,
                    "rtsp_port": args.rtsp_port,
                },
                "rtsp": {"rtp_port": 0},
                "channels": [
                    {
                        "name": name,
                        "source": f"http://127.0.0.1:{eport}/axis-cgi/mjpg/video.cgi"
                        f"?camera={i}&resolution={w}x{h}",
                    }
                    for i, name in enumerate(DEMO_CHANNELS, 1)
                ],
            }
        )
        gateway = Gateway(cfg)
        try:
            await serve_until_signalled(gateway, lambda: _print_demo(gateway, eport))
        finally:
            await emulator.stop()

    return _run_async(args, serve)


def _print_demo(gateway: Any, emulator_port: int) -> None:
    host = gateway.config.server.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base = f"http://{shown}:{gateway.http_port}"
    lines = [
        "",
        f"coaxgate {__version__} demo: Axis 2400 emulator on http://127.0.0.1:{emulator_port}/",
        "",
        f"  {base}/                      all channels, live",
    ]
    rtsp = f"rtsp://{shown}:{gateway.rtsp_port}"
    for name, channel in gateway.channels.items():
        lines.append(f"  {base}/channels/{name}/mjpeg")
        lines.append(f"  {base}/axis-cgi/mjpg/video.cgi?camera={channel.index}")
        lines.append(f"  {rtsp}/{name}")
    lines += [
        f"  {rtsp}/axis-media/media.amp?camera=1&videocodec=jpeg",
        f"  {base}/channels/lobby/snapshot.jpg",
        f"  {base}/api/v1/channels",
        f"  {base}/metrics",
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
