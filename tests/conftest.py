"""Suite-wide fixtures and hooks: every test isolated from the machine, the shared simulators, seeds.

Every test runs in its own working directory with its own HOME and without any ``SPXDL_*``
variable of the machine (``isolated``, autouse), so that no user's config or archive can leak in.
Random choices in signal and kill tests come from ``seed``: ``SPXDL_TEST_SEED`` replays one, and a
failing test prints the seed it used.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import pytest

from spxdl.simulator import Faults, Simulator

_EXIT_STATUS: list[int] = []
SEED_VARIABLE = "SPXDL_TEST_SEED"
_REPLAYED_SEED = os.environ.get(SEED_VARIABLE)  # read before ``isolated`` clears SPXDL_* variables


@pytest.fixture(autouse=True, name="isolated")
def fixture_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own working directory and HOME, and no SPXDL_* variable of the machine."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in list(os.environ):
        if name.startswith("SPXDL_"):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture(name="seed")
def fixture_seed(request: pytest.FixtureRequest) -> int:
    """A random seed for this test (``SPXDL_TEST_SEED`` replays one); printed if the test fails."""
    value = int(_REPLAYED_SEED) if _REPLAYED_SEED else random.SystemRandom().randrange(2**32)
    request.node.user_properties.append(("seed", value))
    return value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    seeds = [value for name, value in item.user_properties if name == "seed"]
    if report.failed and seeds:
        report.sections.append(("random seed", f"replay with {SEED_VARIABLE}={seeds[0]}"))


@pytest.fixture(scope="module", name="sim")
def fixture_sim():
    """A tiny-profile simulated terminal on a free loopback port, shared by a module's tests."""
    with Simulator(profile="tiny") as simulator:
        yield simulator


@pytest.fixture(name="clean_sim")
def fixture_clean_sim(sim):
    """The module's simulator with no faults and fresh counters (restored after the test)."""
    sim.set_faults(Faults())
    sim.reset_counters()
    yield sim
    sim.set_faults(Faults())


@pytest.fixture(autouse=True)
def restore_spxdl_logging():
    """CLI invocations configure the ``spxdl`` logger; put it back so later tests see a plain one."""
    logger = logging.getLogger("spxdl")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with pytest's own exit status once everything is reported, skipping interpreter teardown.

    Arrow's and DuckDB's native thread pools can abort a finished process during teardown
    ("terminate called without an active exception", apache/arrow#34314): a passed suite would
    then exit 134. Results and the summary are already written when this runs.
    """
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
