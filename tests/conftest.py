"""Suite-wide fixtures and hooks: every test isolated from the machine, the shared simulators, the object
store (``moto_s3``, ``s3``: moto's S3 API in a process of its own, tests/moto_server.py), seeds.

Every test runs in its own working directory with its own HOME and without any ``SPXDL_*``
variable of the machine (``isolated``, autouse), so that no user's config or archive can leak in.
Random choices in signal and kill tests come from ``seed``: ``SPXDL_TEST_SEED`` replays one, and a
failing test prints the seed it used.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from spxdl.simulator import Faults, Simulator

_EXIT_STATUS: list[int] = []
SEED_VARIABLE = "SPXDL_TEST_SEED"
_REPLAYED_SEED = os.environ.get(SEED_VARIABLE)  # read before ``isolated`` clears SPXDL_* variables


# The direct source's tests need the SDK (Python 3.12+) and the doubles' packages (the direct-test
# extra): `make install` adds them wherever Python 3.12+ exists. Without them those files are not
# collected, and the header says why (the rest of the suite does not depend on them).
DIRECT_MODULES = ("thetadatadx", "thetadata", "grpc", "zstandard", "cryptography")


def direct_tests_missing() -> str | None:
    """Why the direct source's tests cannot run here, or None."""
    if sys.version_info < (3, 12):
        return f"Python {sys.version_info.major}.{sys.version_info.minor} (the SDK needs 3.12+)"
    missing = [name for name in DIRECT_MODULES if importlib.util.find_spec(name) is None]
    return (f"{', '.join(missing)} not installed (make install; or pip install '.[direct,direct-test]' "
            "and pip install --no-deps thetadata==1.0.15)") if missing else None


def dask_tests_missing() -> str | None:
    """Why the Dask executor's tests cannot run here (the dask extra, which `make install` adds), or None."""
    return None if importlib.util.find_spec("distributed") else "distributed not installed (pip install '.[dask]')"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The SDK's test files are left out where the SDK cannot run, the Dask ones without Dask (named
    in the header and the summary)."""
    if collection_path.name.startswith("test_direct_") and direct_tests_missing():
        return True
    if "dask" in collection_path.name and collection_path.name.startswith("test_") and dask_tests_missing():
        return True
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    missing, no_dask = direct_tests_missing(), dask_tests_missing()
    return [("direct source: the SDK's tests run against loopback doubles" if missing is None else
             f"direct source: its SDK tests are not collected: {missing}"),
            ("dask executor: its tests run on a LocalCluster" if no_dask is None else
             f"dask executor: its tests are not collected: {no_dask}")]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Said at the end too (``-q`` hides the header): which tests this interpreter could not run."""
    missing = direct_tests_missing()
    if missing is not None:
        terminalreporter.write_line(f"direct source: its SDK tests (test_direct_*.py) were not collected: {missing}")
    if dask_tests_missing() is not None:
        terminalreporter.write_line(f"dask executor: its tests (test_*dask*.py) were not collected: {dask_tests_missing()}")


# What a killed Dask worker's semaphore leases wait for before the scheduler frees them (30 s by default).
DASK_LEASES = {"distributed.scheduler.locks.lease-timeout": "3s",
               "distributed.scheduler.locks.lease-validation-interval": "1s"}
DASK_THREADS = 2  # the Dask tests' fetch threads per worker: each worker runs DASK_THREADS + 1 tasks at once


@dataclass
class DaskCluster:
    """A LocalCluster of two worker processes on loopback, and a client of it."""

    executor: str  # dask://HOST:PORT, as --executor takes it
    address: str  # tcp://HOST:PORT
    client: Any

    def worker_pids(self) -> set[int]:
        return set(self.client.run(os.getpid).values())


@pytest.fixture(scope="module", name="dask_cluster")
def fixture_dask_cluster() -> Iterator[DaskCluster]:
    """A LocalCluster for a module's Dask tests (processes, two workers, no dashboard), gone after them:
    its nannies are this process's children, which tests of the crew count."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set(DASK_LEASES), LocalCluster(
        n_workers=2, threads_per_worker=DASK_THREADS + 1, processes=True, host="127.0.0.1", dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # no dashboard; its HTTP endpoint on a free port
    ) as local, Client(local, set_as_default=False) as client:
        address = local.scheduler_address
        yield DaskCluster(address.replace("tcp://", "dask://"), address, client)


@dataclass
class Market:
    """The loopback doubles of ThetaData's services, and the SDK's configuration that points at them."""

    nexus: Any
    data: Any
    env: dict[str, str]  # for a subprocess: the SDK's variables and the patched copy first on PYTHONPATH


@pytest.fixture(scope="session", name="patched_sdk")
def fixture_patched_sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A copy of the installed SDK that trusts the doubles' loopback certificate (sdk_patch.py), first on sys.path.

    Worker processes inherit sys.path; a subprocess gets it through ``Market.env``.
    """
    missing = direct_tests_missing()
    if missing is not None:
        pytest.fail(f"the direct source's SDK tests need the SDK and the doubles' packages: {missing}", pytrace=False)
    from sdk_patch import patch_sdk

    patched = patch_sdk(tmp_path_factory.mktemp("sdk"))
    loaded = sys.modules.get("thetadatadx")
    assert loaded is None, f"the SDK was imported before the patched copy was in place ({loaded.__file__})"
    sys.path.insert(0, str(patched.path))
    yield patched
    sys.path.remove(str(patched.path))


@pytest.fixture(scope="module", name="market")
def fixture_market(patched_sdk: Any) -> Iterator[Market]:
    """The doubles of ThetaData's authentication and market-data services (market_double.py), and the
    SDK's own configuration variables pointing at them (a test API key included)."""
    from market_double import MarketDataDouble, NexusDouble

    nexus = NexusDouble()
    data = MarketDataDouble(patched_sdk.certificate, patched_sdk.key)
    env = {"THETADATA_MARKET_DATA_HOST": "127.0.0.1", "THETADATA_MARKET_DATA_PORT": str(data.port),
           "THETADATA_NEXUS_URL": nexus.url, "THETADATA_API_KEY": "td1_test_key_of_the_doubles"}
    path = os.pathsep.join([str(patched_sdk.path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield Market(nexus, data, {**env, "PYTHONPATH": path})
    data.close()
    nexus.close()


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


@pytest.fixture(scope="session", name="moto_s3")
def fixture_moto_s3() -> Iterator[Any]:
    """moto's S3 API on a free loopback port, in a process of its own, for the whole session."""
    from moto_server import MotoS3

    server = MotoS3.start()
    yield server
    server.stop()


@pytest.fixture(name="s3")
def fixture_s3(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The session's S3 server with no faults, and AWS credentials in the environment (worker processes
    inherit them; pyarrow never probes a cloud's metadata service)."""
    from moto_server import use_test_aws_environment

    use_test_aws_environment(monkeypatch)
    moto_s3.clear_faults()
    yield moto_s3
    moto_s3.clear_faults()


@pytest.fixture(name="clean_sim")
def fixture_clean_sim(sim):
    """The module's simulator with no faults and fresh counters (restored after the test)."""
    yield from cleaned(sim)


def cleaned(simulator: Any) -> Iterator[Any]:
    """A shared simulator with no faults and fresh counters for one test, its faults cleared after."""
    simulator.set_faults(Faults())
    simulator.reset_counters()
    yield simulator
    simulator.set_faults(Faults())


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


class Sleeps(list):
    """A stand-in for time.sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """The terminal client's sleeps, recorded instead of waited."""
    return Sleeps()


@pytest.fixture
def rsps() -> Iterator[Any]:
    """``responses`` in front of requests, for the terminal client's unit tests."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(name="invoke")
def fixture_invoke(isolated: Path) -> Any:
    """Run ``spxdl ARGS`` in-process; returns the Click result (stderr kept apart)."""
    from click.testing import CliRunner

    from spxdl import cli

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(cli.cli, list(args), env=env, catch_exceptions=False)

    return invoke
