"""Tasks on a Dask cluster (``executor = dask://HOST:PORT``): a real LocalCluster of two worker
processes (each under its nanny) on loopback, against the simulator.

The same archive file for file as this machine's crew of processes; the terminal's in-flight cap
held across the cluster's workers; events and log records back to the driver; a worker SIGKILLed
mid-task (its task run again elsewhere, nothing committed fetched again); a SIGTERM to a driver
that stops the run cleanly; each worker's own terminal. The scheduler gives a killed worker's
semaphore leases back after 3 s here (30 s by default).
"""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import signal
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from conftest import DASK_LEASES, DASK_THREADS
from engine_helpers import (
    Driver,
    StandInTerminal,
    archive_digest,
    claims,
    day_files,
    file_rows,
    ledger_problems,
    make_settings,
    served_rows,
    temp_files,
    wait_until,
)
from spxdl import engine, storage
from spxdl.engine import dask_run, dask_worker
from spxdl.engine.links import ProcessLink
from spxdl.engine.shared import SharedFlag
from spxdl.engine.worker import Worker
from spxdl.errors import ClusterMismatch, ConfigError
from spxdl.ledger import Ledger, RunBook
from spxdl.simulator import Faults

START, END = date(2024, 1, 8), date(2024, 1, 12)  # five tasks
MAX_DTE = 29  # four Friday expirations a day in the tiny profile
THREADS = DASK_THREADS  # each worker's fetch threads; Dask runs THREADS + 1 tasks at once per worker, as a crew's does


@pytest.fixture(name="cluster")
def fixture_cluster(dask_cluster):
    return dask_cluster


def settings_for(data_dir: Path, url: str, executor: str = "process", **changes: Any):
    return make_settings(data_dir, url, max_dte=MAX_DTE, threads=THREADS, executor=executor, **changes)


@pytest.fixture(scope="module", name="reference")
def fixture_reference(sim, tmp_path_factory):
    """The crew's archive of START..END: path -> sha256."""
    data_dir = tmp_path_factory.mktemp("crew")
    sim.set_faults(Faults())
    settings = settings_for(data_dir, sim.url)
    assert engine.run(engine.plan(settings, START, END), settings).complete
    return archive_digest(data_dir)


def run_in_thread(settings, on_event=None) -> tuple[threading.Thread, list]:
    outcome: list = []
    runner = threading.Thread(target=lambda: outcome.append(
        engine.run(engine.plan(settings, START, END), settings, on_event=on_event)), daemon=True)
    runner.start()
    return runner, outcome


def test_a_run_on_the_cluster_gives_the_crews_archive_file_for_file(cluster, clean_sim, reference, tmp_path, caplog):
    caplog.set_level("INFO", logger="spxdl")
    settings = settings_for(tmp_path, clean_sim.url, cluster.executor)
    events: list = []
    summary = engine.run(engine.plan(settings, START, END), settings, on_event=events.append)
    assert summary.complete and summary.by_state() == {"success": 5}
    assert archive_digest(tmp_path) == reference  # sha256 of every file
    assert served_rows(clean_sim) == file_rows(tmp_path)  # each expiration served once
    assert ledger_problems(tmp_path) == [] and claims(tmp_path) == [] and temp_files(tmp_path) == []
    workers = cluster.worker_pids()
    done = [event for event in events if event.kind == "expiration_done"]
    assert len(done) == len(reference) and {event.pid for event in done} <= workers  # events from the workers
    checked = [r for r in caplog.records if "checks flagged" in r.getMessage()]
    assert len(checked) == 5 and {r.process for r in checked} <= workers  # their log records too
    assert engine.plan(settings, START, END).tasks == ()


def test_the_in_flight_cap_holds_across_the_clusters_workers(cluster, sim, tmp_path):
    # two workers of two fetch threads each: four request threads for a terminal that allows two
    settings = settings_for(tmp_path, sim.url, cluster.executor, max_in_flight=2)
    sim.set_faults(Faults(latency=0.3, max_concurrent=2))
    sim.reset_counters()
    try:
        runner, outcome = run_in_thread(settings)
        runner.join(120)
    finally:
        sim.set_faults(Faults())
    assert outcome, "the run did not end"
    served = sim.counters()
    assert outcome[0].complete
    assert served["max_concurrency"] == 2
    assert not any("429" in by_status for by_status in served["requests"].values())


def task_in_progress(events: list) -> tuple[int, Any] | None:
    """A worker's pid and a task of its that has stored an expiration and has two or more to go."""
    seen = list(events)
    for event in seen:
        if event.kind == "expirations_listed":
            done = sum(e.kind == "expiration_done" and e.task == event.task for e in seen)
            if done and event.total - done >= 2:
                return event.pid, event.task
    return None


def test_a_worker_killed_mid_task_loses_only_what_it_had_not_committed(cluster, sim, reference, tmp_path):
    settings = settings_for(tmp_path, sim.url, cluster.executor)
    sim.set_faults(Faults(latency=0.5))
    sim.reset_counters()
    events: list = []
    workers = cluster.worker_pids()
    try:
        runner, outcome = run_in_thread(settings, events.append)

        assert wait_until(lambda: task_in_progress(events) is not None, 60)
        victim, cut = task_in_progress(events)
        assert victim in workers
        victims_tasks = {e.task for e in events if e.pid == victim and e.kind == "task_started"}
        victims_tasks -= {e.task for e in events if e.pid == victim and e.kind == "task_done"}
        committed = sum(e.kind == "expiration_done" and e.task == cut for e in events)
        os.kill(victim, signal.SIGKILL)
        runner.join(120)
    finally:
        sim.set_faults(Faults())
    assert outcome, "the run did not end"
    summary = outcome[0]
    assert summary.complete, summary.results  # Dask ran the killed worker's tasks again elsewhere
    assert victim not in cluster.worker_pids()  # the nanny started a new one
    assert temp_files(tmp_path) == [] or {storage.temp_file_pid(p.name) for p in temp_files(tmp_path)} == {victim}
    storage.sweep_temp_files(tmp_path)  # what the next run's start does
    assert archive_digest(tmp_path) == reference
    assert ledger_problems(tmp_path) == [] and claims(tmp_path) == [] and temp_files(tmp_path) == []
    # Nothing committed was fetched again: only what the victim had in flight was served twice.
    served, stored = served_rows(sim), file_rows(tmp_path)
    twice = {key for key in stored if served[key] != stored[key]}
    assert all(served[key] == 2 * stored[key] for key in twice), (served, stored)
    assert {(root, day) for root, day, _ in twice} <= {(t.root, t.trade_date) for t in victims_tasks}
    assert len(twice) <= THREADS + 1  # its fetch threads, and the one finishing a file
    result = next(result for result in summary.results if result.task == cut)
    assert result.skipped >= committed >= 1  # run again elsewhere, it skipped what the victim had stored
    assert engine.plan(settings, START, END).tasks == ()


def test_a_task_whose_workers_die_too_often_fails_and_the_run_goes_on(sim, reference, tmp_path):
    import dask
    from distributed import Client, LocalCluster

    # allowed-failures 0: the first death of a worker running a task is one too many (four by default)
    with dask.config.set({**DASK_LEASES, "distributed.scheduler.allowed-failures": 0}), LocalCluster(
        n_workers=2, threads_per_worker=THREADS + 1, processes=True, host="127.0.0.1", dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as local, Client(local, set_as_default=False) as client:
        settings = settings_for(tmp_path, sim.url, local.scheduler_address.replace("tcp://", "dask://"))
        sim.set_faults(Faults(latency=0.5))
        events: list = []
        try:
            runner, outcome = run_in_thread(settings, events.append)
            assert wait_until(lambda: task_in_progress(events) is not None, 60)
            victim, cut = task_in_progress(events)
            assert victim in set(client.run(os.getpid).values())
            os.kill(victim, signal.SIGKILL)
            runner.join(120)
        finally:
            sim.set_faults(Faults())
    assert outcome, "the run did not end"
    failed = [result for result in outcome[0].results if result.state == "failed"]
    # the task cut, and those the victim held besides (up to one per thread: some still waiting for their turn)
    assert cut in {result.task for result in failed} and len(failed) <= THREADS + 1
    assert all(result.error == "its Dask workers died while running it" for result in failed)
    states = [(result.task.key, result.state, result.error) for result in outcome[0].results]
    assert {state for _, state, _ in states} == {"success", "failed"}, states  # the others went on
    assert claims(tmp_path) == []  # the driver let the dead worker's claims go
    again = settings_for(tmp_path, sim.url)
    assert set(engine.plan(again, START, END).tasks) == {result.task for result in failed}  # the next run's work
    assert engine.run(engine.plan(again, START, END), again).complete  # (adopting a file renamed, not recorded)
    assert archive_digest(tmp_path) == reference and ledger_problems(tmp_path) == [] and temp_files(tmp_path) == []


def test_a_sigterm_to_the_driver_stops_the_run_on_the_cluster_and_a_rerun_completes(
        cluster, sim, reference, tmp_path):
    sim.set_faults(Faults(latency=0.5))
    try:
        driver = Driver(tmp_path, sim.url, "--start", str(START), "--end", str(END), "--max-dte", str(MAX_DTE),
                        "--threads", str(THREADS), "--executor", cluster.executor)
        assert driver.wait_for("event expiration_done", timeout=60), driver.text()
        driver.process.send_signal(signal.SIGTERM)
        assert driver.wait(60) == 128 + signal.SIGTERM, driver.text()
    finally:
        sim.set_faults(Faults())
    assert claims(tmp_path) == [] and temp_files(tmp_path) == [] and ledger_problems(tmp_path) == []
    assert len(archive_digest(tmp_path)) < len(reference)  # the workers stopped: not everything landed
    assert [run.state for run in RunBook(Ledger(tmp_path)).views()] == ["interrupted"]
    settings = settings_for(tmp_path, sim.url, cluster.executor)
    assert engine.run(engine.plan(settings, START, END), settings).complete
    assert archive_digest(tmp_path) == reference


def set_environment(name: str, value: str | None) -> None:
    """In a worker process (``client.run``): set or remove an environment variable."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def test_each_worker_talks_to_the_terminal_its_environment_names(cluster, clean_sim, reference, tmp_path):
    asked: list[str] = []
    with StandInTerminal(clean_sim.url, intercept=lambda path: asked.append(path)) as own:
        cluster.client.run(set_environment, dask_worker.TERMINAL_URL_VARIABLE, own.url)
        try:
            settings = settings_for(tmp_path, clean_sim.url, cluster.executor)  # the driver's terminal
            assert engine.run(engine.plan(settings, START, END), settings).complete
        finally:
            cluster.client.run(set_environment, dask_worker.TERMINAL_URL_VARIABLE, None)
    histories = [path for path in asked if "hist" in path.split("?")[0]]
    assert len(histories) == len(reference)  # every download went to the workers' own terminal
    assert not [path for path in asked if "list/expirations" in path]  # the driver listed on its own
    assert archive_digest(tmp_path) == reference


def test_two_runs_at_once_on_one_cluster_download_every_expiration_once(cluster, sim, reference, tmp_path):
    # their tasks run in the same worker processes: a claim names its run, not only its pid
    settings = settings_for(tmp_path, sim.url, cluster.executor)
    sim.set_faults(Faults(latency=0.3))
    sim.reset_counters()
    try:
        runs = [run_in_thread(settings) for _ in range(2)]
        for runner, _ in runs:
            runner.join(120)
    finally:
        sim.set_faults(Faults())
    assert all(outcome for _, outcome in runs), "a run did not end"
    summaries = [outcome[0] for _, outcome in runs]
    assert sorted(len(s.results) for s in summaries) == [5, 5]
    assert sum(s.by_state().get("success", 0) for s in summaries) >= 5  # each task done by one of them
    assert served_rows(sim) == file_rows(tmp_path)  # every expiration served once in all
    assert archive_digest(tmp_path) == reference and claims(tmp_path) == [] and ledger_problems(tmp_path) == []


def test_a_run_on_the_cluster_into_an_object_store_gives_the_crews_archive(cluster, clean_sim, s3, reference, tmp_path):
    from moto_server import S3_ENVIRONMENT

    bucket = s3.new_bucket()
    settings = dataclasses.replace(settings_for(tmp_path, clean_sim.url, cluster.executor),
                                   data_dir=s3.uri(bucket, "spx"), ledger_dir=tmp_path / "ledger")
    for name, value in S3_ENVIRONMENT.items():  # the workers' credentials: their own environment's
        cluster.client.run(set_environment, name, value)
    try:
        assert engine.run(engine.plan(settings, START, END), settings).complete
    finally:
        for name in S3_ENVIRONMENT:
            cluster.client.run(set_environment, name, None)
    fs = s3.filesystem()
    stored = {info.path.split("/spx/", 1)[1]: hashlib.sha256(fs.open_input_stream(info.path).read()).hexdigest()
              for info in fs.get_file_info(pafs.FileSelector(f"{bucket}/spx", recursive=True))
              if info.path.endswith(".parquet") and not info.base_name.startswith((".", "_"))}
    assert stored == reference  # sha256 of every object: the crew's files on local disk
    assert not [key for key in s3.keys(bucket) if ".tmp-" in key]
    assert len(day_files(tmp_path / "ledger")) == 5 and claims(tmp_path / "ledger") == []  # the ledger: local
    assert engine.plan(settings, START, END).tasks == ()


# ---------------------------------------------------------------------------------------------
# the parts


def test_a_terminals_semaphore_is_named_by_its_url_and_cap_and_for_loopback_its_host():
    assert dask_worker.slots_name("http://10.0.0.5:25503", 4, "a") == dask_worker.slots_name("http://10.0.0.5:25503", 4, "b")
    assert dask_worker.slots_name("http://127.0.0.1:25503", 4, "a") != dask_worker.slots_name("http://127.0.0.1:25503", 4, "b")
    assert dask_worker.slots_name("http://10.0.0.5:25503", 4) != dask_worker.slots_name("http://10.0.0.5:25503", 8)


def test_the_workers_versions_must_be_the_clients(cluster):
    versions = cluster.client.get_versions(packages=["spxdl", "pyarrow"])
    dask_run.check_versions(versions)  # the same here: nothing to say
    worker = sorted(versions["workers"])[0]
    versions["workers"][worker]["packages"]["spxdl"] = "9.9.9"
    with pytest.raises(ClusterMismatch, match=rf"spxdl 9\.9\.9 on {worker} \(.+ here\).*pip install 'spxdl\[dask\]'"):
        dask_run.check_versions(versions)
    del versions["workers"][worker]["packages"]["pyarrow"]
    with pytest.raises(ClusterMismatch, match="pyarrow missing on"):
        dask_run.check_versions(versions)


def test_a_worker_that_does_not_see_the_drivers_ledger_refuses_the_run(tmp_path):
    worker = Worker(settings_for(tmp_path, "http://127.0.0.1:9"),
                    ProcessLink(SharedFlag(multiprocessing.get_context("spawn")), None, None, 0))
    with pytest.raises(ClusterMismatch, match="shared POSIX mount"):
        dask_worker.check_shared_ledger(worker, "20240101T000000.000000Z-1")


def test_what_runs_only_on_this_machines_processes_is_refused_on_a_cluster(tmp_path):
    settings = settings_for(tmp_path, "http://127.0.0.1:9", "dask://127.0.0.1:1")
    with pytest.raises(ConfigError, match="--capture runs with --executor process only"):
        dask_run.refuse_what_dask_cannot_run(settings.replace(capture_dir=tmp_path / "capture"))
    with pytest.raises(ConfigError, match="the direct source .* runs with --executor process only"):
        dask_run.refuse_what_dask_cannot_run(dataclasses.replace(settings, source="direct"))
    dask_run.refuse_what_dask_cannot_run(settings)


def test_paths_reach_the_workers_absolute(tmp_path):
    settings = settings_for(Path("relative/data"), "http://127.0.0.1:9", calendar_overrides=Path("closures.ini"))
    shipped = dask_run.for_workers(settings)
    assert shipped.data_dir == Path.cwd() / "relative" / "data"
    assert shipped.calendar_overrides == Path.cwd() / "closures.ini"
