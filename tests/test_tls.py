"""TLS: `coaxgate cert`, HTTPS and RTSPS listeners with real clients, the HTTP redirect."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import config
from gateway.app import Gateway
from gateway.config import ConfigError

from .gst import rtspsrc_ok
from .rtsp_client import RtspClient
from .support import ROOT, gateway_running, read_mjpeg, require_peer, run_peer
from .test_listeners import client_hello, exchange


def coaxgate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the coaxgate command."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def tls_table(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The [tls] table `coaxgate cert` printed, for a pair it wrote (ports: any free)."""
    tmp = tmp_path_factory.mktemp("tls")
    done = coaxgate("cert", "--cert", str(tmp / "c.pem"), "--key", str(tmp / "k.pem"))
    assert done.returncode == 0, done.stderr
    table = dict(tomllib.loads(done.stdout)["tls"])
    return {**table, "https_port": 0, "rtsps_port": 0}


def _insecure() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_cert_command(tmp_path: Path) -> None:
    from cryptography import x509

    cert, key = tmp_path / "gw.crt", tmp_path / "gw.key"
    args = ["cert", "--cert", str(cert), "--key", str(key), "--days", "30"]
    done = coaxgate(*args, "--host", "cam.example.org", "--host", "192.0.2.7", "--host", "::1")
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    # What it printed is the [tls] table to paste; the config takes it as it is.
    cfg = config.parse(tomllib.loads(done.stdout))
    assert cfg.tls.enabled and cfg.tls.cert == str(cert) and cfg.tls.key == str(key)
    assert (cfg.tls.https_port, cfg.tls.rtsps_port) == (8443, 8322)
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cam.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7", "::1"]
    days = (loaded.not_valid_after_utc - loaded.not_valid_before_utc).days
    assert 30 <= days <= 31
    ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    # Existing files are kept unless --force.
    before = cert.read_bytes(), key.read_bytes()
    again = coaxgate(*args)
    assert again.returncode == 1 and "--force" in again.stderr
    assert (cert.read_bytes(), key.read_bytes()) == before
    forced = coaxgate(*args, "--force", "--rsa")
    assert forced.returncode == 0, forced.stderr
    assert cert.read_bytes() != before[0]
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    bad = coaxgate(
        "cert", "--cert", str(tmp_path / "x"), "--key", str(tmp_path / "y"), "--host", "a b"
    )
    assert bad.returncode == 2 and not (tmp_path / "x").exists()


def test_tls_config_checks(tls_table: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls.https_port.*must differ from server.http_port"):
        config.parse({"server": {"http_port": 9000}, "tls": {**tls_table, "https_port": 9000}})
    with pytest.raises(ConfigError, match=r"tls.rtsps_port.*must differ from tls.https_port"):
        config.parse({"tls": {**tls_table, "https_port": 9001, "rtsps_port": 9001}})
    with pytest.raises(ConfigError, match=r"tls\.cert"):
        Gateway(config.parse({"tls": {**tls_table, "cert": tls_table["key"]}}))
    path = tmp_path / "bad.toml"
    path.write_text(
        f"[tls]\ncert = {json.dumps(tls_table['key'])}\nkey = {json.dumps(tls_table['key'])}\n"
    )
    done = coaxgate("check", "-c", str(path))
    assert done.returncode == 2 and "tls.cert" in done.stderr, done.stderr


async def test_https_api_and_mjpeg(loop_name: str, tls_table: dict[str, Any]) -> None:
    curl = require_peer("curl")
    async with gateway_running({"tls": tls_table}) as gw:
        url = f"https://127.0.0.1:{gw.https_port}/api/v1/channels"
        rc, out, err = await run_peer(curl, "-sS", "-k", "--fail", url)
        assert rc == 0, err
        assert [c["name"] for c in json.loads(out)["channels"]] == ["cam1"]
        # The certificate `coaxgate cert` wrote verifies for 127.0.0.1 (subjectAltName).
        cacert = ["--cacert", tls_table["cert"]]
        rc, out, err = await run_peer(curl, "-sS", "--fail", *cacert, "-o", "/dev/null", url)
        assert rc == 0, err
        assert gw.tls_context is not None
        assert gw.tls_context.minimum_version == ssl.TLSVersion.TLSv1_2
        connector = aiohttp.TCPConnector(ssl=_insecure())
        async with aiohttp.ClientSession(connector=connector) as http:
            mjpeg = f"https://127.0.0.1:{gw.https_port}/channels/cam1/mjpeg"
            received = await read_mjpeg(mjpeg, frames=25, http=http)
        assert len(received.frames) >= 25
        assert all(f[:2] == b"\xff\xd8" for f in received.frames)
        # The plain port serves as before (no redirect asked for).
        rc, out, err = await run_peer(
            curl, "-sS", "--fail", f"http://127.0.0.1:{gw.http_port}/healthz"
        )
        assert rc == 0, err


async def test_tls_handshake_deadline_and_failures(
    loop_name: str, tls_table: dict[str, Any]
) -> None:
    async with gateway_running({"tls": tls_table, "server": {"header_timeout": 1.0}}) as gw:
        keeper = gw.gatekeeper
        for port, listener in ((gw.https_port, "https"), (gw.rtsps_port, "rtsps")):
            # Silent after connecting, or after the ClientHello: cut at the deadline.
            for payload in (b"", client_hello()):
                start = time.monotonic()
                await exchange(port, "127.0.0.2", payload)
                # Our deadline (1 s), not asyncio's handshake timeout (6 s), ended it.
                assert 0.9 <= time.monotonic() - start < 1.0 + 5.0
            assert keeper.refused[(listener, "header_timeout")] == 2
            # Not TLS at all: the handshake fails, the connection ends.
            reply = await exchange(port, "127.0.0.2", b"GET / HTTP/1.1\r\n\r\n", timeout=3.0)
            assert not reply.startswith(b"HTTP")
        for _ in range(100):
            if keeper.total == 0:
                break
            await asyncio.sleep(0.02)
        assert keeper.total == 0 and keeper.per_address("127.0.0.2") == 0


@pytest.mark.loops("uvloop")
async def test_rtsps_ffmpeg(loop_name: str, tls_table: dict[str, Any]) -> None:
    ffmpeg, ffprobe = require_peer("ffmpeg"), require_peer("ffprobe")
    async with gateway_running({"tls": tls_table}) as gw:
        url = f"rtsps://127.0.0.1:{gw.rtsps_port}/cam1"
        rc, out, err = await run_peer(
            ffprobe, "-v", "error", "-rtsp_transport", "tcp", "-show_streams", "-of", "json", url
        )
        assert rc == 0, err
        (stream,) = json.loads(out)["streams"]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("mjpeg", 176, 144)
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp", "-i", url,
            "-frames:v", "25", "-f", "null", "-",
        )  # fmt: skip
        assert rc == 0, err
        assert "frame=   25" in err, err
        assert not list(gw.sessions)


@pytest.mark.loops("uvloop")
@pytest.mark.parametrize("protocols", ["tcp", "udp"])
async def test_rtsps_gstreamer(loop_name: str, protocols: str, tls_table: dict[str, Any]) -> None:
    gst = require_peer("gst-launch-1.0")
    async with gateway_running({"tls": tls_table}) as gw:
        url = f"rtsps://127.0.0.1:{gw.rtsps_port}/cam1"
        rc, out, err = await run_peer(
            gst, "-q", "rtspsrc", f"location={url}", "tls-validation-flags=0",
            f"protocols={protocols}", "!", "rtpjpegdepay", "!", "jpegdec", "!",
            "fakesink", "num-buffers=25",
        )  # fmt: skip
        assert rtspsrc_ok(rc, out + err), out + err


class TlsRtspClient(RtspClient):
    """The test RTSP client over TLS."""

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, ssl=_insecure()
        )
        self._task = asyncio.create_task(self._read())


async def test_rtsps_udp_and_secure_flag(loop_name: str, tls_table: dict[str, Any]) -> None:
    async with gateway_running({"tls": tls_table}) as gw:
        secure = TlsRtspClient("127.0.0.1", gw.rtsps_port)
        plain = RtspClient("127.0.0.1", gw.rtsp_port)
        try:
            await secure.connect()
            await plain.connect()
            # Media over UDP, control over TLS: as over RTSP.
            setup = await secure.play_session(f"rtsps://127.0.0.1:{gw.rtsps_port}/cam1", "udp")
            assert "server_port=" in (setup.headers.get("Transport") or "")
            reply = await plain.request("OPTIONS", f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1")
            assert reply.status == 200
            for _ in range(100):
                if len(secure.media.frames) >= 10:
                    break
                await asyncio.sleep(0.05)
            assert len(secure.media.frames) >= 10
            flags = {c.secure for c in gw.rtsp.connections if c.protocol == "rtsp_tcp"}
            assert flags == {True, False}
            (viewer,) = [s for s in gw.sessions]
            assert viewer.protocol == "rtsp_udp"
        finally:
            await secure.close()
            await plain.close()


async def test_redirect_http(loop_name: str, tls_table: dict[str, Any]) -> None:
    async with gateway_running({"tls": {**tls_table, "redirect_http": True}}) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        https = f"https://127.0.0.1:{gw.https_port}"
        async with aiohttp.ClientSession() as http:
            for method, path in (
                ("GET", "/channels/cam1/mjpeg?fps=5&x=y"),
                ("POST", "/channels/cam1/whep"),
                ("GET", "/"),
            ):
                async with http.request(method, base + path, allow_redirects=False) as resp:
                    assert resp.status == 308
                    assert resp.headers["Location"] == https + path
            headers = {"Host": "[::1]:8080"}
            async with http.get(base + "/healthz", headers=headers, allow_redirects=False) as resp:
                assert resp.headers["Location"] == f"https://[::1]:{gw.https_port}/healthz"
            headers = {"Host": "evil.example/x"}  # not a host: the address it came in on
            async with http.get(base + "/healthz", headers=headers, allow_redirects=False) as resp:
                assert resp.headers["Location"] == https + "/healthz"
            # The target as sent, escapes and all (aiohttp's client would normalize it).
            target = b"/a%2Fb/../c?q=%2F&r"
            raw = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            reply = await exchange(gw.http_port, send=raw)
            assert reply.startswith(b"HTTP/1.1 308")
            location = f"https://127.0.0.1:{gw.https_port}".encode() + target
            assert b"\r\nLocation: " + location + b"\r\n" in reply, reply
            # The tunnel's GET leg is redirected too: every request is.
            tunnel = {"x-sessioncookie": "abc", "Accept": "application/x-rtsp-tunnelled"}
            async with http.get(base + "/cam1", headers=tunnel, allow_redirects=False) as resp:
                assert resp.status == 308
        connector = aiohttp.TCPConnector(ssl=_insecure())
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.get(base + "/api/v1/channels") as resp,  # followed to HTTPS
        ):
            assert resp.status == 200 and resp.url.scheme == "https"
            assert (await resp.json())["channels"][0]["name"] == "cam1"
