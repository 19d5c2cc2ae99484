"""`spxdl run --executor dask://HOST:PORT` end to end: real `spxdl` processes against schedulers this
test started (the module's LocalCluster; another with no worker, then one worker of another
spxdl version), and the one-line errors: no Dask installed, no scheduler, no worker, versions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine_helpers import REPO, Driver, claims, data_files, ledger_problems, make_settings, temp_files, wait_until
from spxdl import engine
from spxdl.cli import cli
from spxdl.ledger import Ledger, RunBook
from spxdl.simulator import Faults


def spxdl(cwd: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spxdl", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO), **env})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_simulate_on_a_dask_cluster_as_the_readme_shows(dask_cluster, tmp_path):
    done = spxdl(tmp_path, "run", "--simulate", "--sim-profile", "tiny", "--start", "2024-01-10", "--end", "2024-01-11",
                 "--max-dte", "8", "--executor", dask_cluster.executor, "--yes")
    assert done.returncode == 0, done.stderr
    data = tmp_path / "sim-data"
    assert len(data_files(data)) == 3 and "2 success" in done.stderr.replace("tasks: ", "")
    assert ledger_problems(data) == [] and claims(data) == [] and temp_files(data) == []
    checked = spxdl(tmp_path, "verify", "--data-dir", "sim-data")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_dask_the_executor_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    result = CliRunner().invoke(cli, ["run", "--simulate", "--sim-profile", "tiny", "--date", "2024-01-10",
                                      "--executor", "dask://127.0.0.1:8786"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == (
        "spxdl: error: --executor dask://... runs the tasks on a Dask cluster, which needs Dask here and on every "
        "worker: pip install 'spxdl[dask]'")
    assert data_files(tmp_path / "sim-data") == []


def test_an_executor_that_is_neither_process_nor_dask_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--simulate", "--date", "2024-01-10", "--executor", "dask://nohost"])
    assert result.exit_code == 2
    assert "expected process, or a Dask scheduler as dask://HOST:PORT" in result.output
    assert "Traceback" not in result.output


def test_a_scheduler_that_does_not_answer_exits_75_in_one_line(tmp_path):
    done = spxdl(tmp_path, "run", "--simulate", "--sim-profile", "tiny", "--date", "2024-01-10",
                 "--executor", f"dask://127.0.0.1:{free_port()}", SPXDL_TERMINAL_CONNECT_TIMEOUT="1")
    assert done.returncode == 75, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and errors[0].startswith("spxdl: error: no Dask scheduler answers at tcp://127.0.0.1:")
    assert "or run with --executor process" in errors[0]
    assert data_files(tmp_path / "sim-data") == []


def test_a_cluster_without_workers_and_then_one_of_another_version_are_one_line_each(tmp_path):
    from distributed import Client, LocalCluster

    fake = tmp_path / "other-spxdl"  # a worker whose spxdl says it is 9.9.9
    (fake / "spxdl-9.9.9.dist-info").mkdir(parents=True)
    (fake / "spxdl-9.9.9.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: spxdl\nVersion: 9.9.9\n")
    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as local, \
            Client(local, set_as_default=False) as client:
        executor = local.scheduler_address.replace("tcp://", "dask://")
        empty = spxdl(tmp_path, "run", "--simulate", "--sim-profile", "tiny", "--date", "2024-01-10",
                      "--executor", executor, SPXDL_TERMINAL_CONNECT_TIMEOUT="1")
        assert empty.returncode == 75, empty.stderr
        assert f"spxdl: error: the Dask scheduler at {local.scheduler_address} has no worker; start some with: " \
               f"dask worker {local.scheduler_address}" in empty.stderr
        worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", local.scheduler_address, "--nthreads", "1",
                                   "--no-dashboard", "--no-nanny"], env={**os.environ, "PYTHONPATH": str(fake)},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=60)
            other = spxdl(tmp_path, "run", "--simulate", "--sim-profile", "tiny", "--date", "2024-01-10",
                          "--executor", executor)
        finally:
            worker.terminate()
            worker.wait(30)
    assert other.returncode == 2, other.stderr
    errors = [line for line in other.stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    assert len(errors) == 1 and "spxdl 9.9.9 on tcp://127.0.0.1:" in errors[0], other.stderr
    assert "install the same spxdl, Python, Dask and pyarrow everywhere (pip install 'spxdl[dask]')" in errors[0]
    assert data_files(tmp_path / "sim-data") == []


@pytest.mark.parametrize("command", ["run", "backfill", "update", "resume"])
def test_every_download_command_takes_the_executor(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert "--executor" in result.output and "dask://HOST:PORT" in result.output


def test_a_scheduler_that_dies_mid_run_stops_the_run_and_its_workers_let_their_claims_go(sim, tmp_path, monkeypatch):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], **quiet)
    worker = subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "3", "--no-dashboard",
                               "--no-nanny"], **quiet)
    monkeypatch.setenv("SPXDL_TERMINAL_CONNECT_TIMEOUT", "1")  # how long the driver tries to reconnect
    sim.set_faults(Faults(latency=0.5))
    try:
        from distributed import Client

        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
        data = tmp_path / "data"
        run = Driver(data, sim.url, "--start", "2024-01-08", "--end", "2024-01-12", "--max-dte", "29", "--threads", "2",
                     "--executor", f"dask://127.0.0.1:{port}", cli=True)
        assert wait_until(lambda: bool(data_files(data)), 60), run.text()
        scheduler.kill()
        assert run.wait(60) == 75, run.text()
        assert "STOPPED: the Dask scheduler at " in run.text() and "went away mid-run" in run.text()
        # the worker closes without its scheduler, and its tasks stop: nothing stays claimed
        assert wait_until(lambda: claims(data) == [], 30), claims(data)
    finally:
        sim.set_faults(Faults())
        for process in (worker, scheduler):
            process.kill()
            process.wait(30)
    assert [run.state for run in RunBook(Ledger(data)).views()] == ["interrupted"]  # for spxdl resume
    landed = set(data_files(data))
    settings = make_settings(data, sim.url, max_dte=29)
    assert engine.run(engine.plan(settings, date(2024, 1, 8), date(2024, 1, 12)), settings).complete
    assert landed <= set(data_files(data))  # kept (a file renamed but not recorded is adopted, not fetched)
    assert ledger_problems(data) == [] and claims(data) == [] and temp_files(data) == []
