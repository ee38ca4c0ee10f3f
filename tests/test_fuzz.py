"""Run every atheris target in tests/fuzz for a bounded time against a copy of its seeds.

A target is tests/fuzz/fuzz_<name>.py; its seeds are tests/fuzz/corpus/<name>/.
New targets are picked up without touching this file. COAXGATE_FUZZ_SECONDS
sets the time per target (default 10).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "tests" / "fuzz"
TARGETS = sorted(FUZZ_DIR.glob("fuzz_*.py"))
SECONDS = int(os.environ.get("COAXGATE_FUZZ_SECONDS", "10"))


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=[t.stem for t in TARGETS])
def test_fuzz_target(target: Path, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seeds = FUZZ_DIR / "corpus" / target.stem.removeprefix("fuzz_")
    # libFuzzer adds what it finds to the corpus directory: work on a copy.
    corpus = tmp_path / "corpus"
    if seeds.is_dir():
        shutil.copytree(seeds, corpus)
    else:
        corpus.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    cmd = [
        sys.executable,
        str(target),
        f"-max_total_time={SECONDS}",
        "-seed=1",
        "-timeout=20",  # per input: a hang is a finding too
        "-rss_limit_mb=2048",
        f"-artifact_prefix={artifacts}/",
        str(corpus),
    ]
    proc = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=2 * SECONDS + 120, check=False
    )
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0, (
        f"{target.name} exited {proc.returncode}; crash inputs: {found} in {artifacts}\n"
        + (proc.stdout + proc.stderr)[-6000:]
    )
