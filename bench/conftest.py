"""Benchmark harness: print the throughput figures the benchmarks record."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Recorder = Callable[[str, str, int, float], None]
_THROUGHPUT = pytest.StashKey[list[tuple[str, str, float]]]()


@pytest.fixture
def throughput(request: pytest.FixtureRequest) -> Recorder:
    """Record (group, name, bytes, seconds per run) for the summary at the end of the run."""
    rows = request.config.stash.setdefault(_THROUGHPUT, [])

    def record(group: str, name: str, nbytes: int, seconds: float) -> None:
        rows.append((group, name, nbytes / seconds / 1e6))

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Print MB/s per group, each with its ratio to the slowest of the group."""
    rows = config.stash.get(_THROUGHPUT, [])
    if not rows:
        return
    terminalreporter.write_sep("-", "throughput")
    for group in dict.fromkeys(g for g, _, _ in rows):
        members = [(name, mbps) for g, name, mbps in rows if g == group]
        slowest = min(mbps for _, mbps in members)
        for name, mbps in members:
            terminalreporter.write_line(
                f"{group:44s} {name:10s} {mbps:9.1f} MB/s  x{mbps / slowest:5.2f}"
            )
