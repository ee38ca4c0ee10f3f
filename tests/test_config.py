"""Config validation: every error names the key and the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway import config
from gateway.config import ConfigError

LOBBY = "http://user:s3cret@192.0.2.10/axis-cgi/mjpg/video.cgi?camera=1&resolution=704x576"


def test_minimal_channel_defaults() -> None:
    cfg = config.parse({"channels": [{"name": "lobby", "source": LOBBY}]})
    (ch,) = cfg.channels
    assert ch.kind == "mjpeg"
    assert ch.index == 1
    assert ch.username == "user" and ch.password == "s3cret"
    assert "s3cret" not in ch.source and "user" not in ch.source
    assert ch.source == "http://192.0.2.10/axis-cgi/mjpg/video.cgi?camera=1&resolution=704x576"
    assert cfg.server.http_port == 8080 and cfg.server.rtsp_port == 8554
    assert "s3cret" not in repr(cfg)


def test_full_example_from_readme() -> None:
    text = Path(__file__).parent.parent.joinpath("deploy", "coaxgate.toml").read_text()
    import tomllib

    cfg = config.parse(tomllib.loads(text), environ={"LOBBY_PASS": "x", "DOCK_PASS": "y"})
    assert [c.name for c in cfg.channels]


@pytest.mark.parametrize(
    ("data", "key", "reason"),
    [
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"server": {"http_port": 70000}}, "server.http_port", "between 0 and 65535"),
        ({"server": {"http_port": "80"}}, "server.http_port", "must be an integer"),
        ({"server": {"http_port": 9000, "rtsp_port": 9000}}, "server.rtsp_port", "must differ"),
        ({"server": {"colour": "blue"}}, "server.colour", "unknown key"),
        ({"channels": {"name": "x"}}, "channels", "array of tables"),
        ({"channels": [{"source": LOBBY}]}, "channels[0].name", "is required"),
        ({"channels": [{"name": "a b", "source": LOBBY}]}, "channels[0].name", "must match"),
        ({"channels": [{"name": "a"}]}, "channels[0].source", "is required"),
        (
            {"channels": [{"name": "a", "source": LOBBY}, {"name": "a", "source": LOBBY}]},
            "channels[1].name",
            "duplicate",
        ),
        ({"channels": [{"name": "a", "source": "ftp://x/y"}]}, "channels[0].source", "http"),
        ({"channels": [{"name": "a", "source": "http:///x"}]}, "channels[0].source", "no host"),
        (
            {"channels": [{"name": "a", "source": LOBBY, "kind": "rtmp"}]},
            "channels[0].kind",
            "one of",
        ),
        (
            {"channels": [{"name": "a", "source": LOBBY, "poll_fps": 0}]},
            "channels[0].poll_fps",
            "between",
        ),
        (
            {"channels": [{"name": "a", "source": LOBBY, "extra": True}]},
            "channels[0].extra",
            "unknown key",
        ),
        (
            {"channels": [{"name": "a", "source": "http://h/x", "password_env": "NOPE"}]},
            "channels[0].password_env",
            "NOPE is not set",
        ),
        (
            {"channels": [{"name": "a", "source": "http://h/x", "password": "p"}]},
            "channels[0].username",
            "needs a user name",
        ),
        (
            {"channels": [{"name": "a", "source": LOBBY, "password": "p"}]},
            "channels[0].password",
            "given twice",
        ),
        (
            {"channels": [{"name": "a", "source": LOBBY, "max_ingest_frame": "lots"}]},
            "channels[0].max_ingest_frame",
            "size like",
        ),
        (
            {"channels": [{"name": "a", "source": "emulator:1?resolution=big"}]},
            "channels[0].source",
            "704x576",
        ),
        (
            {"channels": [{"name": "a", "source": "emulator:1?colour=1"}]},
            "channels[0].source",
            "unknown emulator parameter",
        ),
        (
            {"channels": [{"name": "a", "source": LOBBY, "reconnect_max": 0.1}]},
            "channels[0].reconnect_max",
            "reconnect_min",
        ),
        ({"egress": {"high_water": "1K"}}, "egress.high_water", "between"),
    ],
)
def test_errors_name_key_and_reason(data: dict, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.parse(data, environ={})
    assert info.value.key == key
    assert reason in info.value.reason


def test_password_from_environment_never_shown() -> None:
    cfg = config.parse(
        {
            "channels": [
                {
                    "name": "dock",
                    "source": "http://192.0.2.11/axis-cgi/mjpg/video.cgi",
                    "username": "root",
                    "password_env": "DOCK_PASS",
                    "auth": "digest",
                }
            ]
        },
        environ={"DOCK_PASS": "hunter2"},
    )
    (ch,) = cfg.channels
    assert ch.password == "hunter2"
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in str(cfg.public())


def test_sizes_and_emulator_source() -> None:
    cfg = config.parse(
        {
            "egress": {"high_water": "1M"},
            "channels": [
                {
                    "name": "emu",
                    "source": "emulator:3?resolution=352x288&fps=10&restart_interval=22",
                    "max_ingest_frame": "512K",
                }
            ],
        }
    )
    assert cfg.egress.high_water == 1 << 20
    (ch,) = cfg.channels
    assert ch.kind == "emulator" and ch.max_ingest_frame == 512 << 10
    assert ch.emulator is not None
    assert (ch.emulator.camera, ch.emulator.width, ch.emulator.height) == (3, 352, 288)
    assert ch.emulator.fps == 10 and ch.emulator.restart_interval == 22


def test_parse_size() -> None:
    assert config.parse_size("4M") == 4 << 20
    assert config.parse_size("512k") == 512 << 10
    assert config.parse_size("1.5M") == 3 << 19
    assert config.parse_size("1000") == 1000
    with pytest.raises(ConfigError):
        config.parse_size("4X")


def _check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    ok = _check(tmp_path, f'[[channels]]\nname = "lobby"\nsource = "{LOBBY}"\n')
    assert ok.returncode == 0, ok.stderr
    assert "lobby" in ok.stdout and "s3cret" not in ok.stdout

    bad = _check(tmp_path, '[[channels]]\nname = "lobby"\nsource = "x"\ncolour = 1\n')
    assert bad.returncode == 2
    assert "channels[0]" in bad.stderr

    broken = _check(tmp_path, "[server\n")
    assert broken.returncode == 2
    assert "not valid TOML" in broken.stderr

    missing = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "-c", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr
