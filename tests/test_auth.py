"""Users, roles, Digest and Basic on RTSP and HTTP, lockouts: unit checks and real clients."""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import config
from gateway.config import ConfigError
from gateway.security import auth
from gateway.security.auth import ANONYMOUS, Authenticator, BasicPending, Identity, Refusal
from gateway.security.digest import response_for
from gateway.security.users import scrypt_verify, user_entry

from .gst import rtspsrc_ok
from .rtsp_client import RtspClient
from .support import free_port, metric, require_peer, run_peer, serving

REALM = "coaxgate"
PASSWORDS = {"alice": "wonder land", "olga": "op3rator!", "root": "adm1n", "cleo": "only-cam2"}
ROLE = {"alice": "viewer", "olga": "operator", "root": "admin", "cleo": "viewer"}


def _users() -> list[dict[str, Any]]:
    users = []
    for name, password in PASSWORDS.items():
        entry: dict[str, Any] = user_entry(name, ROLE[name], REALM, password)
        if name == "cleo":
            entry["channels"] = ["cam2"]
        users.append(entry)
    return users


USERS = _users()  # scrypt is slow: hash once for the module


def _config(**auth_options: Any) -> config.Config:
    return config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "rtsp": {"rtp_port": 0},
            "auth": {"failure_delay": 0.2, **auth_options},
            "users": USERS,
            "channels": [
                {"name": f"cam{i}", "source": f"emulator:{i}?resolution=352x288&fps=25"}
                for i in (1, 2)
            ],
        }
    )


# -- config and passwd -------------------------------------------------------------------


def test_users_config() -> None:
    cfg = _config()
    assert cfg.auth.anonymous_viewer is False  # users exist: no anonymous viewing by default
    assert [u.name for u in cfg.auth.users] == list(PASSWORDS)
    assert cfg.auth.users[3].channels == ("cam2",)
    public = cfg.public()["auth"]
    assert public["users"][0] == {"name": "alice", "role": "viewer", "channels": None}
    assert "ha1" not in repr(public) and "scrypt" not in repr(public)
    assert config.parse({}).auth.anonymous_viewer is True


@pytest.mark.parametrize(
    ("users", "key", "reason"),
    [
        ([{"name": "bob", "role": "viewer"}], "users[0].name", "no password hash"),
        ([{"name": "bob", "role": "god", "ha1_md5": "0" * 32}], "users[0].role", "one of"),
        ([{"name": "a:b", "ha1_md5": "0" * 32}], "users[0].name", "printable"),
        ([{"name": "bob", "ha1_md5": "xyz"}], "users[0].ha1_md5", "hex"),
        ([{"name": "bob", "scrypt": "md5$1"}], "users[0].scrypt", "scrypt$N"),
        ([{"name": "bob", "ha1_md5": "0" * 32, "channels": ["nope"]}], "users[0].channels", "no"),
        (
            [{"name": "bob", "ha1_md5": "0" * 32}, {"name": "bob", "ha1_md5": "0" * 32}],
            "users[1].name",
            "twice",
        ),
    ],
)
def test_bad_users(users: list[dict[str, Any]], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.parse({"users": users, "channels": [{"name": "cam1", "source": "emulator:1"}]})
    assert e.value.key == key and reason in e.value.reason


def test_passwd_prints_an_entry_the_config_accepts() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "passwd", "dave", "--role", "operator"],
        input="hunter2 with spaces\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "hunter2" not in proc.stdout
    import tomllib

    data = tomllib.loads(proc.stdout)
    cfg = config.parse(data)
    (user,) = cfg.auth.users
    assert (user.name, user.role) == ("dave", "operator")
    assert user.scrypt is not None and scrypt_verify(user.scrypt, "hunter2 with spaces")
    assert not scrypt_verify(user.scrypt, "hunter2")
    bad = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "passwd", "dave"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "password" in bad.stderr


# -- the authenticator -------------------------------------------------------------------


def _digest(
    a: Authenticator, name: str, password: str, method: str, uri: str, algorithm: str = "MD5"
) -> str:
    challenge = a.challenges(secure=False)[0]
    nonce = challenge.split('nonce="')[1].split('"')[0]
    from gateway.security.digest import ha1

    response = response_for(algorithm, ha1(algorithm, name, REALM, password), nonce, method, uri)
    return (
        f'Digest username="{name}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}'
    )


def _check(a: Authenticator, header: str | None, need: str, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "protocol": "http",
        "method": "GET",
        "uri": "/x",
        "authorization": header,
        "peer": "192.0.2.7",
        "secure": False,
        "need": need,
    }
    args.update(kw)
    return a.check(**args)


def test_roles_and_channel_lists() -> None:
    a = Authenticator(_config().auth)
    alice = _check(a, _digest(a, "alice", PASSWORDS["alice"], "GET", "/x"), auth.VIEW)
    assert alice == Identity("alice", "viewer")
    assert isinstance(_check(a, None, auth.VIEW), Refusal)  # anonymous viewing is off
    assert _check(a, None, auth.PUBLIC) is ANONYMOUS
    for name, need, ok in [
        ("alice", auth.OPERATE, False),
        ("olga", auth.OPERATE, True),
        ("olga", auth.ADMIN, False),
        ("root", auth.ADMIN, True),
        ("root", auth.METRICS, True),
        ("olga", auth.METRICS, False),
    ]:
        got = _check(a, _digest(a, name, PASSWORDS[name], "GET", "/x"), need)
        assert isinstance(got, Identity) is ok, (name, need, got)
        if not ok:
            assert got.status == 403
    cleo = _digest(a, "cleo", PASSWORDS["cleo"], "GET", "/x")
    assert isinstance(_check(a, cleo, auth.VIEW, channel="cam2"), Identity)
    refused = _check(a, cleo, auth.VIEW, channel="cam1")
    assert isinstance(refused, Refusal) and refused.status == 403
    public_metrics = Authenticator(_config(metrics_public=True).auth)
    assert _check(public_metrics, None, auth.METRICS) is ANONYMOUS


def test_without_users_viewing_is_open_and_admin_is_loopback_only() -> None:
    a = Authenticator(config.parse({}).auth)
    assert a.open
    assert _check(a, None, auth.VIEW) is ANONYMOUS
    assert _check(a, None, auth.ADMIN, loopback=True) is ANONYMOUS
    refused = _check(a, None, auth.ADMIN, loopback=False)
    assert isinstance(refused, Refusal) and refused.status == 403


def test_wrong_passwords_are_delayed_counted_and_locked_out() -> None:
    now = [1000.0]
    cfg = _config(lockout_failures=3, lockout_seconds=60)
    a = Authenticator(cfg.auth, clock=lambda: now[0])
    for _ in range(3):
        got = _check(a, _digest(a, "alice", "nope", "GET", "/x"), auth.VIEW)
        assert isinstance(got, Refusal) and got.status == 401 and got.delay == 0.2
        assert any(c.startswith("Digest") for c in got.challenges)
    assert a.failures["http"] == 3 and a.lockouts == 1
    locked = _check(a, _digest(a, "alice", PASSWORDS["alice"], "GET", "/x"), auth.VIEW)
    assert isinstance(locked, Refusal) and locked.status == 429
    # Another address is not locked out; the address comes back after the lockout.
    assert isinstance(
        _check(a, _digest(a, "alice", PASSWORDS["alice"], "GET", "/x"), auth.VIEW, peer="x"),
        Identity,
    )
    now[0] += 61
    assert isinstance(
        _check(a, _digest(a, "alice", PASSWORDS["alice"], "GET", "/x"), auth.VIEW), Identity
    )


def test_basic_needs_tls_and_is_checked_slowly_once() -> None:
    a = Authenticator(_config().auth)
    token = base64.b64encode(b"alice:" + PASSWORDS["alice"].encode()).decode()
    plain = _check(a, f"Basic {token}", auth.VIEW)
    assert isinstance(plain, Refusal) and plain.status == 401
    assert not any(c.startswith("Basic") for c in plain.challenges)
    assert any(c.startswith("Basic") for c in a.challenges(secure=True))
    pending = _check(a, f"Basic {token}", auth.VIEW, secure=True)
    assert isinstance(pending, BasicPending)
    assert a.check_basic(pending)
    assert _check(a, f"Basic {token}", auth.VIEW, secure=True) == Identity("alice", "viewer")
    wrong = base64.b64encode(b"alice:guess").decode()
    pending = _check(a, f"Basic {wrong}", auth.VIEW, secure=True)
    assert isinstance(pending, BasicPending) and not a.check_basic(pending)
    nobody = base64.b64encode(b"mallory:guess").decode()
    pending = _check(a, f"Basic {nobody}", auth.VIEW, secure=True)
    assert isinstance(pending, BasicPending) and not a.check_basic(pending)


def test_an_expired_nonce_is_stale_not_a_failure() -> None:
    now = [5000.0]
    a = Authenticator(_config(nonce_ttl=10).auth)
    a.digest._clock = lambda: now[0]
    header = _digest(a, "alice", PASSWORDS["alice"], "GET", "/x")
    now[0] += 11
    got = _check(a, header, auth.VIEW)
    assert isinstance(got, Refusal) and got.status == 401
    assert all("stale=true" in c for c in got.challenges if c.startswith("Digest"))
    assert a.failures["http"] == 0


# -- HTTP with real clients --------------------------------------------------------------


async def _curl(*args: str) -> tuple[int, str]:
    curl = require_peer("curl")
    rc, out, err = await run_peer(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", *args)
    assert rc == 0, err
    return int(out), err


async def test_http_digest_with_curl(loop_name: str) -> None:
    async with serving(_config()) as gw:
        base = f"http://127.0.0.1:{gw.http_port}"
        user = f"alice:{PASSWORDS['alice']}"
        assert (await _curl(f"{base}/channels/cam1/snapshot.jpg"))[0] == 401
        assert (await _curl("--digest", "-u", user, f"{base}/channels/cam1/snapshot.jpg"))[0] == 200
        assert (await _curl("--digest", "-u", user, f"{base}/axis-cgi/jpg/image.cgi?camera=2"))[
            0
        ] == 200
        # Roles: a viewer may not read sessions or config; an operator sessions; an admin both.
        assert (await _curl("--digest", "-u", user, f"{base}/api/v1/sessions"))[0] == 403
        olga = f"olga:{PASSWORDS['olga']}"
        assert (await _curl("--digest", "-u", olga, f"{base}/api/v1/sessions"))[0] == 200
        assert (await _curl("--digest", "-u", olga, f"{base}/api/v1/config"))[0] == 403
        root = f"root:{PASSWORDS['root']}"
        assert (await _curl("--digest", "-u", root, f"{base}/api/v1/config"))[0] == 200
        assert (await _curl("--digest", "-u", root, f"{base}/metrics"))[0] == 200
        assert (await _curl(f"{base}/metrics"))[0] == 401
        assert (await _curl(f"{base}/healthz"))[0] == 200
        # A per-user channel list.
        cleo = f"cleo:{PASSWORDS['cleo']}"
        assert (await _curl("--digest", "-u", cleo, f"{base}/channels/cam1/snapshot.jpg"))[0] == 403
        assert (await _curl("--digest", "-u", cleo, f"{base}/channels/cam2/snapshot.jpg"))[0] == 200
        # Basic on plain HTTP is refused; a wrong password is held back and counted.
        assert (await _curl("--basic", "-u", user, f"{base}/channels/cam1/snapshot.jpg"))[0] == 401
        before = gw.auth.failures["http"]
        t0 = time.monotonic()
        code, _ = await _curl("--digest", "-u", "alice:wrong", f"{base}/channels/cam1/snapshot.jpg")
        assert code == 401 and time.monotonic() - t0 >= 0.19
        assert gw.auth.failures["http"] > before
        async with serving(_config(allow_basic_without_tls=True, metrics_public=True)) as gw2:
            base2 = f"http://127.0.0.1:{gw2.http_port}"
            assert (await _curl("--basic", "-u", user, f"{base2}/channels/cam1/snapshot.jpg"))[
                0
            ] == 200
            async with aiohttp.ClientSession() as http:
                text = await (await http.get(f"{base2}/metrics")).text()
            assert metric(text, "coaxgate_auth_failures_total", protocol="http") == 0


def _basic_header(name: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{PASSWORDS[name]}".encode()).decode()


async def test_mjpeg_stream_with_digest(loop_name: str) -> None:
    async with serving(_config()) as gw:
        url = f"http://127.0.0.1:{gw.http_port}/channels/cam1/mjpeg"
        async with aiohttp.ClientSession() as http:
            first = await http.get(url)
            assert first.status == 401
            challenge = first.headers.getall("WWW-Authenticate")
            assert [c.split(" ")[0] for c in challenge] == ["Digest", "Digest"]
            a = gw.auth
            header = _digest(a, "alice", PASSWORDS["alice"], "GET", "/channels/cam1/mjpeg")
            async with http.get(url, headers={"Authorization": header}) as resp:
                assert resp.status == 200
                data = await resp.content.readexactly(2000)
                assert b"--myboundary" in data


# -- RTSP with real clients --------------------------------------------------------------


async def test_rtsp_digest_with_ffmpeg_and_gstreamer(loop_name: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    gst = require_peer("gst-launch-1.0")
    async with serving(_config()) as gw:
        port = gw.rtsp_port
        for transport in ("udp", "tcp"):
            url = f"rtsp://alice:wonder%20land@127.0.0.1:{port}/cam1"
            rc, _, err = await run_peer(
                ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", transport,
                "-i", url, "-frames:v", "25", "-f", "null", "-",
            )  # fmt: skip
            assert rc == 0 and "frame=   25" in err, err
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-i", f"rtsp://alice:nope@127.0.0.1:{port}/cam1",
            "-frames:v", "1", "-f", "null", "-",
        )  # fmt: skip
        assert rc != 0 and "401" in err, err
        assert gw.auth.failures["rtsp"] >= 1
        rc, out, err = await run_peer(
            gst, "-q", "rtspsrc", f"location=rtsp://127.0.0.1:{port}/cam2", "user-id=alice",
            f"user-pw={PASSWORDS['alice']}", "protocols=tcp", "!", "rtpjpegdepay", "!",
            "jpegdec", "!", "fakesink", "num-buffers=25",
        )  # fmt: skip
        assert rtspsrc_ok(rc, out + err), out + err
        rc, out, err = await run_peer(
            gst, "-q", "rtspsrc", f"location=rtsp://127.0.0.1:{port}/cam2", "user-id=alice",
            "user-pw=nope", "!", "rtpjpegdepay", "!", "jpegdec", "!", "fakesink",
            "num-buffers=1",
        )  # fmt: skip
        assert rc != 0 and ("Unauthorized" in out + err or "401" in out + err), out + err
        # cleo may watch cam2 only.
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-i",
            f"rtsp://cleo:{PASSWORDS['cleo']}@127.0.0.1:{port}/cam1", "-frames:v", "1",
            "-f", "null", "-",
        )  # fmt: skip
        assert rc != 0 and "403" in err, err


async def test_a_session_cannot_be_used_by_another_user_or_connection(loop_name: str) -> None:
    async with serving(_config(anonymous_viewer=True)) as gw:
        url = f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1"
        owner = RtspClient("127.0.0.1", gw.rtsp_port)
        await owner.connect()
        try:
            a = gw.auth
            header = _digest(a, "alice", PASSWORDS["alice"], "DESCRIBE", url)
            desc = await owner.request("DESCRIBE", url, {"Authorization": header})
            assert desc.status == 200
            header = _digest(a, "alice", PASSWORDS["alice"], "SETUP", url + "/trackID=0")
            setup = await owner.request(
                "SETUP",
                url + "/trackID=0",
                {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1", "Authorization": header},
            )
            assert setup.status == 200
            session = (setup.headers.get("Session") or "").split(";")[0]
            # The same connection, anonymous (allowed to view): not alice's session.
            owner.session = session
            play = await owner.request("PLAY", url)
            assert play.status == 454
            # A second connection replaying the id, with or without credentials.
            thief = RtspClient("127.0.0.1", gw.rtsp_port)
            await thief.connect()
            try:
                thief.session = session
                assert (await thief.request("PLAY", url)).status == 454
                header = _digest(a, "alice", PASSWORDS["alice"], "PLAY", url)
                assert (await thief.request("PLAY", url, {"Authorization": header})).status == 454
            finally:
                await thief.close()
            header = _digest(a, "alice", PASSWORDS["alice"], "PLAY", url)
            assert (await owner.request("PLAY", url, {"Authorization": header})).status == 200
        finally:
            await owner.close()


async def test_rtsp_lockout_and_delay(loop_name: str) -> None:
    async with serving(_config(lockout_failures=2, lockout_seconds=30)) as gw:
        url = f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1"
        c = RtspClient("127.0.0.1", gw.rtsp_port)
        await c.connect()
        try:
            assert (await c.request("OPTIONS", url)).status == 200  # needs nothing
            first = await c.request("DESCRIBE", url)
            assert first.status == 401
            assert len(first.headers.get_all("WWW-Authenticate")) == 2
            t0 = time.monotonic()
            bad = _digest(gw.auth, "alice", "nope", "DESCRIBE", url)
            assert (await c.request("DESCRIBE", url, {"Authorization": bad})).status == 401
            assert time.monotonic() - t0 >= 0.19
            # Requests queued behind a delayed refusal are answered in order.
            c.cseq += 1
            c.send_raw(
                f"DESCRIBE {url} RTSP/1.0\r\nCSeq: {c.cseq}\r\nAuthorization: {bad}\r\n\r\n"
                f"OPTIONS {url} RTSP/1.0\r\nCSeq: {c.cseq + 1}\r\n\r\n".encode()
            )
            r1, r2 = await c.response(), await c.response()
            c.cseq += 1
            assert (r1.headers.get("CSeq"), r2.headers.get("CSeq")) == (
                str(c.cseq - 1),
                str(c.cseq),
            )
            good = _digest(gw.auth, "alice", PASSWORDS["alice"], "DESCRIBE", url)
            assert (await c.request("DESCRIBE", url, {"Authorization": good})).status == 403
        finally:
            await c.close()
        assert gw.auth.lockouts == 1


async def test_rtsp_basic_when_allowed(loop_name: str) -> None:
    ffmpeg = require_peer("ffmpeg")
    async with serving(_config(allow_basic_without_tls=True)) as gw:
        c = RtspClient("127.0.0.1", gw.rtsp_port)
        await c.connect()
        url = f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1"
        try:
            first = await c.request("DESCRIBE", url)
            assert first.headers.get_all("WWW-Authenticate")[-1].startswith("Basic")
            ok = await c.request("DESCRIBE", url, {"Authorization": _basic_header("alice")})
            assert ok.status == 200
            # Requests behind the slow check wait their turn.
            ok = await c.request("OPTIONS", url, {"Authorization": _basic_header("alice")})
            assert ok.status == 200
        finally:
            await c.close()
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp", "-i",
            f"rtsp://127.0.0.1:{gw.rtsp_port}/cam1", "-frames:v", "1", "-f", "null", "-",
        )  # fmt: skip
        assert rc != 0 and "401" in err


async def test_open_gateway_warns(loop_name: str, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "rtsp": {"rtp_port": 0},
            "channels": [{"name": "cam1", "source": "emulator:1?resolution=352x288"}],
        }
    )
    with caplog.at_level(logging.WARNING):
        async with serving(cfg) as gw, aiohttp.ClientSession() as http:
            resp = await http.get(f"http://127.0.0.1:{gw.http_port}/api/v1/config")
            assert resp.status == 200  # loopback
    assert any("no [[users]] configured" in r.message for r in caplog.records)


# -- over TLS ----------------------------------------------------------------------------


@pytest.mark.loops("uvloop")
async def test_digest_and_basic_over_https_and_rtsps(loop_name: str, tmp_path: Path) -> None:
    """curl --digest and --basic over HTTPS; ffmpeg and rtspsrc with Digest over RTSPS."""
    ffmpeg, gst = require_peer("ffmpeg"), require_peer("gst-launch-1.0")
    cert, key = f"{tmp_path}/c.pem", f"{tmp_path}/k.pem"
    rc, _, err = await run_peer(
        sys.executable, "-m", "gateway.cli", "cert", "--cert", cert, "--key", key
    )
    assert rc == 0, err
    cfg = config.parse(
        {
            "server": {"host": "127.0.0.1", "http_port": free_port(), "rtsp_port": free_port()},
            "rtsp": {"rtp_port": 0},
            "tls": {"cert": cert, "key": key, "https_port": 0, "rtsps_port": 0},
            "auth": {"failure_delay": 0.2},
            "users": USERS,
            "channels": [
                {"name": f"cam{i}", "source": f"emulator:{i}?resolution=352x288&fps=25"}
                for i in (1, 2)
            ],
        }
    )
    async with serving(cfg) as gw:
        base = f"https://127.0.0.1:{gw.https_port}"
        user = f"alice:{PASSWORDS['alice']}"
        snapshot = f"{base}/channels/cam1/snapshot.jpg"
        assert (await _curl("-k", snapshot))[0] == 401
        assert (await _curl("-k", "--digest", "-u", user, snapshot))[0] == 200
        assert (await _curl("-k", "--basic", "-u", user, snapshot))[0] == 200  # Basic: TLS only
        assert (await _curl("-k", "--basic", "-u", "alice:wrong", snapshot))[0] == 401
        assert gw.auth.failures["http"] == 1
        # Basic is offered over TLS, after the Digest challenges.
        async with aiohttp.ClientSession() as http:
            resp = await http.get(snapshot, ssl=False)
            schemes = [c.split(" ")[0] for c in resp.headers.getall("WWW-Authenticate")]
        assert schemes == ["Digest", "Digest", "Basic"]
        url = f"rtsps://alice:wonder%20land@127.0.0.1:{gw.rtsps_port}/cam1"
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp", "-i", url,
            "-frames:v", "25", "-f", "null", "-",
        )  # fmt: skip
        assert rc == 0 and "frame=   25" in err, err
        rc, out, err = await run_peer(
            gst, "-q", "rtspsrc", f"location=rtsps://127.0.0.1:{gw.rtsps_port}/cam1",
            "tls-validation-flags=0", "user-id=alice", f"user-pw={PASSWORDS['alice']}",
            "protocols=tcp", "!", "rtpjpegdepay", "!", "jpegdec", "!", "fakesink",
            "num-buffers=25",
        )  # fmt: skip
        assert rtspsrc_ok(rc, out + err), out + err
        rc, _, err = await run_peer(
            ffmpeg, "-hide_banner", "-nostdin", "-rtsp_transport", "tcp", "-i",
            f"rtsps://alice:nope@127.0.0.1:{gw.rtsps_port}/cam1", "-frames:v", "1",
            "-f", "null", "-",
        )  # fmt: skip
        assert rc != 0 and "401" in err, err
        assert gw.auth.failures["rtsp"] >= 1
