"""Test harness: async tests run once on uvloop and once on the stdlib loop."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Callable

import pytest
import uvloop
from hypothesis import HealthCheck, settings

# The same examples on every run and machine, so a failure in CI is one anyone can
# replay; `HYPOTHESIS_PROFILE=explore` draws fresh ones (the fuzz targets explore too).
settings.register_profile(
    "repeatable",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if inspect.iscoroutinefunction(metafunc.function):
        marker = metafunc.definition.get_closest_marker("loops")
        names = list(marker.args) if marker else list(LOOPS)
        metafunc.fixturenames.append("loop_name")
        metafunc.parametrize("loop_name", names)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "loops(*names): run an async test only on these loops")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    loop_name = pyfuncitem.callspec.params["loop_name"]
    names = inspect.signature(func).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(func(**kwargs))
    return True
