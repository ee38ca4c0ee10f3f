"""Seed corpora of the fuzz targets, written from the case tables the tests use."""

from __future__ import annotations

from pathlib import Path

CORPUS_ROOT = Path(__file__).resolve().parent / "corpus"


def write_corpus(directory: Path, files: dict[str, bytes]) -> None:
    """Make `directory` hold exactly `files` (name -> content), removing stale seeds."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.iterdir():
        if stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        (directory / name).write_bytes(data)
