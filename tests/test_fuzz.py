"""Run every atheris target in tests/fuzz for a bounded time against a copy of its seeds.

A target is tests/fuzz/fuzz_<name>.py; its seeds are tests/fuzz/corpus/<name>/.
New targets are picked up without touching this file. The suite spends
COAXGATE_FUZZ_BUDGET seconds of fuzzing in all (default 40, shared evenly
between the targets, at least 2 each); COAXGATE_FUZZ_SECONDS sets the time
per target instead, for a longer run:

    COAXGATE_FUZZ_SECONDS=600 .venv/bin/pytest -q tests/test_fuzz.py -k url

The crashers the fuzzers found (``crash-*`` in a corpus) are also replayed in
process through the target's ``test_one_input``, with atheris or without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fuzz import parser_seeds

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "tests" / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
TARGETS = sorted(FUZZ_DIR.glob("fuzz_*.py"))
BUDGET = float(os.environ.get("COAXGATE_FUZZ_BUDGET", "40"))
SECONDS = int(os.environ.get("COAXGATE_FUZZ_SECONDS", "0")) or max(2, int(BUDGET / len(TARGETS)))


def _name(target: Path) -> str:
    return target.stem.removeprefix("fuzz_")


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS, ids=[t.stem for t in TARGETS])
def test_fuzz_target(target: Path, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    seeds = CORPUS / _name(target)
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


@contextlib.contextmanager
def _without_atheris() -> Iterator[None]:
    """Make `import atheris` give a stand-in whose instrument_imports does nothing."""
    stub = types.ModuleType("atheris")
    stub.instrument_imports = lambda **_: contextlib.nullcontext()  # type: ignore[attr-defined]
    saved = sys.modules.get("atheris")
    sys.modules["atheris"] = stub
    try:
        yield
    finally:
        if saved is None:
            del sys.modules["atheris"]
        else:
            sys.modules["atheris"] = saved


def _entry(target: Path) -> Callable[[bytes], None]:
    """A target's test_one_input, imported in this process without instrumentation."""
    spec = importlib.util.spec_from_file_location(f"_replay_{target.stem}", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with _without_atheris():
        spec.loader.exec_module(module)
    entry: Callable[[bytes], None] = module.test_one_input
    return entry


CRASHERS = sorted(
    (t, p)
    for t in TARGETS
    if (CORPUS / _name(t)).is_dir()
    for p in (CORPUS / _name(t)).glob(parser_seeds.CRASH_PREFIX + "*")
)


@pytest.mark.parametrize(
    ("target", "crasher"), CRASHERS, ids=[f"{_name(t)}/{p.name}" for t, p in CRASHERS]
)
def test_crashers_stay_fixed(target: Path, crasher: Path) -> None:
    _entry(target)(crasher.read_bytes())


@pytest.mark.parametrize("name", parser_seeds.TARGETS)
def test_corpus_holds_the_seeds(name: str) -> None:
    """Every seed of the tables is in the corpus, as written; nothing else but crashers."""
    wanted = parser_seeds.CORPORA[name]()
    on_disk = {p.name: p.read_bytes() for p in (CORPUS / name).iterdir()}
    crashers = {n for n in on_disk if n.startswith(parser_seeds.CRASH_PREFIX)}
    assert {n: on_disk[n] for n in on_disk.keys() - crashers} == wanted, (
        "run: .venv/bin/python -m tests.fuzz.parser_seeds"
    )
    assert (FUZZ_DIR / f"fuzz_{name}.py").is_file()
