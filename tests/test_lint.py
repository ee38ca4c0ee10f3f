"""ruff and mypy run with the suite, so style and types cannot drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff() -> None:
    out = _tool("ruff", "check", "gateway", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy() -> None:
    out = _tool("mypy")
    assert out.returncode == 0, out.stdout + out.stderr
