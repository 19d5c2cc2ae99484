"""The scenarios of `make soak`; each fills a data dir of its own, judged later against a clean run's.

Each returns a dict of what it saw: the exit codes of its runs, faults it injected, kills,
expirations fetched again though whole on disk (``duplicate_downloads``), and scenario-specific
checks. Every scenario runs the same range with the same selection as the clean reference.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from soak_archive import RUN_TIMEOUT, Sim, data_files, kill_group, launch, rows_of, run_once, temp_files, whole_files
from spxdl import storage

START, END = "2024-01-08", "2024-02-16"  # six weeks
SELECTION = ["--root", "SPXW,SPX", "--max-dte", "10", "--workers", "2", "--threads", "2"]
# The kills' terminal: slow enough (0.1 s a request) that twenty runs killed within a second or so of
# starting, or of claiming their first task, leave part of the archive still to do.
FAULTS = ["--throttle-rate", "0.10", "--error-rate", "0.05", "--cut-rate", "0.03", "--latency", "0.1"]
SLOW = ["--latency", "0.05"]  # so that kills, outages and overlaps land mid-run
# ulimit -f: 8 KB fails the first data file (a disk with almost no room left); the median and the
# 90th percentile of the data files' sizes let the smaller files land and fail a larger one part-way.
LEDGER_LIMIT = 8_000
FILE_SIZE_PERCENTILES = (0.5, 0.9)
OUTAGE_S = 8.0  # a terminal restart: several seconds
LONG_OUTAGE_S, OUTAGE_LIMIT_S = 15.0, 5.0  # a terminal gone longer than [terminal] outage_limit


def run_args(data_dir: Path, url: str, command: str = "run", start: str = START, end: str = END) -> list[str]:
    dates = ["--start", start, "--end", end] if command == "run" else []
    return [command, *dates, *SELECTION, "--terminal-url", url, "--data-dir", str(data_dir)]


def until_complete(sim: Sim, data_dir: Path, seen: dict[str, Any], command: str = "run", tries: int = 5) -> None:
    """Run (or resume) until a run exits 0; counts what was fetched twice."""
    for _ in range(tries):
        finished = run_once(sim, data_dir, *run_args(data_dir, sim.url, command))
        seen["exit_codes"].append(finished.code)
        seen["duplicate_downloads"] += finished.duplicates
        if finished.code == 0:
            return
    raise SystemExit(f"no run completed in {tries} tries ({seen})")


def wait_for(condition: Any, process: Any) -> None:
    """Until ``condition()`` holds or ``process`` ends (bounded by RUN_TIMEOUT)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_for_files(data_dir: Path, count: int, process: Any) -> None:
    wait_for(lambda: len(data_files(data_dir)) >= count, process)


def claimed_by(data_dir: Path, parent: int) -> bool:
    """Whether a task's record still names a claim of ``parent``'s workers (a kill left it mid-task)."""
    return any((json.loads(path.read_text()).get("claim") or {}).get("ppid") == parent
               for path in data_dir.rglob("_day.json"))


def new_seen(**extra: Any) -> dict[str, Any]:
    return {"exit_codes": [], "duplicate_downloads": 0, "faults_injected": 0, "kills": 0, "kills_recovered": 0, **extra}


# ------------------------------------------------------------------ the scenarios


def kills(data_dir: Path, reference: dict, count: int, chance: random.Random) -> dict[str, Any]:
    """``count`` SIGKILLs of the whole process group under a faulty terminal: every other one at a
    random moment of the run's first 1.5 s (start-up included), the others within half a second
    after the run claimed its first task (mid-download)."""
    sim = Sim(*FAULTS)
    seen = new_seen(whole_after_each_kill=0, runs=0, kills_mid_task=0, kills_asked=count)
    try:
        while seen["kills"] < count and seen["runs"] < 3 * count:
            before = whole_files(data_dir)
            sim.reset()
            process = launch(*run_args(data_dir, sim.url))
            seen["runs"] += 1
            if seen["runs"] % 2:
                time.sleep(chance.uniform(0.2, 1.5))  # the first task starts about half a second in
            else:
                wait_for(lambda: claimed_by(data_dir, process.pid), process)
                time.sleep(chance.uniform(0.0, 0.5))
            if kill_group(process):
                seen["kills"] += 1
                seen["kills_mid_task"] += claimed_by(data_dir, process.pid)
                seen["whole_after_each_kill"] += all(rows_of(path) is not None for path in data_files(data_dir).values())
            else:
                seen["exit_codes"].append(process.returncode)
            seen["duplicate_downloads"] += len(before & set(sim.served()))
            seen["faults_injected"] += sim.faults_served()
        sim.reset()
        until_complete(sim, data_dir, seen)
        seen["faults_injected"] += sim.faults_served()
    finally:
        sim.stop()
    seen["kills_recovered"] = seen["whole_after_each_kill"]  # judged against the reference at the end
    return seen


def overlap(data_dir: Path, reference: dict) -> dict[str, Any]:
    """Three runs over overlapping ranges started together: every expiration fetched once in all."""
    sim = Sim(*SLOW)
    ranges = [(START, "2024-01-31"), ("2024-01-22", END), ("2024-01-15", "2024-02-09")]
    seen = new_seen(ranges=ranges)
    try:
        sim.reset()
        runs = [launch(*run_args(data_dir, sim.url, start=first, end=last)) for first, last in ranges]
        seen["exit_codes"] = [process.wait(timeout=RUN_TIMEOUT) for process in runs]
        served = sim.served()
        seen["duplicate_downloads"] = sum(max(0, round(rows / reference["served"].get(key, rows)) - 1)
                                          for key, rows in served.items())
        seen["fetched"] = len(served)
        until_complete(sim, data_dir, seen)  # nothing left to do: a run that fetches nothing
    finally:
        sim.stop()
    return seen


def terminal_restart(data_dir: Path, reference: dict, outage: float, **env: str) -> dict[str, Any]:
    """The terminal stopped mid-run and started again on the same port ``outage`` seconds later.

    The run completes, or exits 75 (the terminal stayed away past outage_limit) and `spxdl
    resume` completes it.
    """
    sim = Sim(*SLOW)
    seen = new_seen(outage_s=outage, faults_injected=1)
    try:
        before = whole_files(data_dir)
        process = launch(*run_args(data_dir, sim.url), capture=True, **env)
        wait_for_files(data_dir, len(reference["digest"]) // 3, process)
        sim.stop()
        time.sleep(outage)
        sim = sim.restart()
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
        seen["exit_codes"].append(process.returncode)
        seen["duplicate_downloads"] += len(before & set(sim.served()))
        seen["stopped_line"] = next((line.strip() for line in stderr.splitlines() if "STOPPED" in line), None)
        if process.returncode == 75:
            until_complete(sim, data_dir, seen, command="resume")
    finally:
        sim.stop()
    return seen


def disk_full(data_dir: Path, reference: dict) -> dict[str, Any]:
    """Writes failing part-way on a real kernel limit (ulimit -f), then space back: the runs resume."""
    sim = Sim()
    seen = new_seen(stops=[])
    sizes = sorted(reference["sizes"].values())
    limits = [LEDGER_LIMIT, *(sizes[int(share * (len(sizes) - 1))] for share in FILE_SIZE_PERCENTILES)]
    try:
        for number, limit in enumerate(limits):
            command = "run" if number == 0 else "resume"
            finished = run_once(sim, data_dir, *run_args(data_dir, sim.url, command), limit=limit)
            lines = [line.strip() for line in finished.stderr.splitlines()
                     if "cannot write" in line and line.strip().startswith(("STOPPED", "spxdl: error"))]
            seen["exit_codes"].append(finished.code)
            seen["duplicate_downloads"] += finished.duplicates
            seen["faults_injected"] += finished.code == 74
            seen["stops"].append({
                "limit_bytes": limit,
                "exit": finished.code,
                "lines_naming_it": len(lines),
                "line": lines[0] if lines else None,
                "traceback": "Traceback" in finished.stderr,
                "temp_files": len(temp_files(data_dir)),
                "partial_files": sum(rows_of(path) is None or path.stat().st_size > limit
                                     for path in data_files(data_dir).values()),
                "files": len(data_files(data_dir)),
            })
        until_complete(sim, data_dir, seen, command="resume")
    finally:
        sim.stop()
    return seen


def ledger_corrupt(data_dir: Path, reference: dict, chance: random.Random) -> dict[str, Any]:
    """A run killed half-way, then ledger files corrupted: moved aside, rebuilt, nothing fetched twice."""
    sim = Sim(*SLOW)
    seen = new_seen()
    try:
        process = launch(*run_args(data_dir, sim.url))
        wait_for_files(data_dir, len(reference["digest"]) // 2, process)
        seen["kills"] += kill_group(process)
        time.sleep(1)  # the killed workers are reaped
        whole = all(rows_of(path) is not None for path in data_files(data_dir).values())
        empty, cut, other_task = chance.sample(sorted(data_dir.rglob("_day.json")), 3)
        corruptions = {  # empty (a crash before the data reached the disk), cut short, garbage, another task's
            storage.status_path(data_dir): b"",
            storage.inventory_path(data_dir): storage.inventory_path(data_dir).read_bytes()[:40],
            **{path: b"\x00" * 64 for path in storage.run_record_paths(data_dir)},
            empty: b"",
            cut: cut.read_bytes()[:100],
            other_task: empty.read_bytes(),
        }
        for path, content in corruptions.items():
            path.write_bytes(content)
        seen["corrupted"] = sorted(str(path.relative_to(data_dir)) for path in corruptions)
        seen["faults_injected"] = len(corruptions)
        until_complete(sim, data_dir, seen)  # the nightly job runs the same range again
        aside = {str(path.relative_to(data_dir)).split(".corrupt-")[0] for path in data_dir.rglob("*.corrupt-*")}
        seen["all_moved_aside"] = aside == set(seen["corrupted"])
        seen["kills_recovered"] = int(seen["kills"] and whole)
    finally:
        sim.stop()
    return seen
