"""`make soak`: the faults nightly runs meet, each followed to completion and compared with a clean run.

1. A clean reference: `spxdl run` over six weeks of SPXW+SPX (DTE 0..10) against a fault-free
   simulator.
2. Scenarios, each in a data dir of its own, over the same range (``soak_scenarios.py``):
   - kills: ``--kills`` SIGKILLs of the whole process group (every other one within a second after
     the run claimed its first task, the others at any moment) under a terminal
     answering 10 % 429, 5 % 500/474/571 and cutting 3 % of bodies; then runs until one completes;
   - overlap: three runs over overlapping ranges started together;
   - terminal_restart: the simulator killed mid-run and started again on the same port 8 s later;
   - terminal_gone: the same for 15 s against ``outage_limit`` 5 s: exit 75, then `spxdl resume`;
   - disk_full: a real kernel limit (``ulimit -f``) failing writes part-way, three times (the
     ledger's summary, then the larger data files), then space back;
   - ledger_corrupt: a run killed half-way, then status.json, inventory.json, the run record and
     three _day.json files corrupted (empty, cut, garbage, another task's); the range run again.
3. Each archive must equal the reference file for file (sha256), with no temp file left, `spxdl
   verify` clean, and no expiration fetched again while its file stood whole in place (in
   overlap: none served twice in all).

Prints what each scenario saw, then one JSON line with the totals; exits 1 if anything is off.
Everything talks to 127.0.0.1 only; counts and times are bounded (about four minutes on two cores).

    .venv/bin/python bench/soak.py [--kills 20] [--seed 7] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import soak_scenarios as scenarios
from soak_archive import Sim, data_files, digest, rows_of, temp_files, verify_problems

ZERO_KEYS = ("rows_lost", "files_corrupt", "duplicate_downloads", "temp_files_left", "verify_problems")


def reference_run(data_dir: Path) -> dict[str, Any]:
    """The clean run: its files' sha256 and rows, and the rows served per expiration."""
    sim = Sim()
    try:
        seen = scenarios.new_seen()
        started = time.monotonic()
        scenarios.until_complete(sim, data_dir, seen)
        served = sim.served()
    finally:
        sim.stop()
    files = data_files(data_dir)
    return {"digest": digest(data_dir), "rows": {key: rows_of(path) for key, path in files.items()},
            "sizes": {key: path.stat().st_size for key, path in files.items()},
            "served": served, "seconds": time.monotonic() - started}


def judge(data_dir: Path, reference: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The scenario's archive against the reference: rows lost, files that differ, temp files, verify."""
    found, files = digest(data_dir), data_files(data_dir)
    rows_written = sum(rows_of(path) or 0 for path in files.values())
    lost = sum(rows - (rows_of(files[key]) or 0 if key in files else 0) for key, rows in reference["rows"].items())
    corrupt = sum(found.get(key) != sha for key, sha in reference["digest"].items() if key in found)
    corrupt += len(set(found) - set(reference["digest"]))  # a file the clean run does not have
    verdict = {
        "rows_expected": sum(reference["rows"].values()),
        "rows_written": rows_written,
        "rows_lost": max(lost, 0),
        "files_corrupt": corrupt,
        "temp_files_left": len(temp_files(data_dir)),
        "verify_problems": verify_problems(data_dir),
        "identical": found == reference["digest"],
    }
    if not verdict["identical"]:
        seen["kills_recovered"] = 0  # a kill is recovered only if the archive came out whole
    return {**seen, **verdict}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", nargs="*", help="run only these scenarios")
    args = parser.parse_args()
    chance = random.Random(args.seed)
    started = time.monotonic()
    plan: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]] = {
        "kills": lambda data_dir, ref: scenarios.kills(data_dir, ref, args.kills, chance),
        "overlap": scenarios.overlap,
        "terminal_restart": lambda data_dir, ref: scenarios.terminal_restart(data_dir, ref, scenarios.OUTAGE_S),
        "terminal_gone": lambda data_dir, ref: scenarios.terminal_restart(
            data_dir, ref, scenarios.LONG_OUTAGE_S, SPXDL_TERMINAL_OUTAGE_LIMIT=str(scenarios.OUTAGE_LIMIT_S)),
        "disk_full": scenarios.disk_full,
        "ledger_corrupt": lambda data_dir, ref: scenarios.ledger_corrupt(data_dir, ref, chance),
    }
    chosen = {name: run for name, run in plan.items() if not args.only or name in args.only}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="spxdl-soak-") as scratch:
        reference = reference_run(Path(scratch) / "reference")
        print(f"clean run: {len(reference['digest'])} files, {sum(reference['rows'].values()):,} rows in "
              f"{reference['seconds']:.1f} s", flush=True)
        for name, run in chosen.items():
            began = time.monotonic()
            data_dir = Path(scratch) / name
            results[name] = judge(data_dir, reference, run(data_dir, reference))
            results[name]["seconds"] = round(time.monotonic() - began, 1)
            print(f"{name}: {json.dumps(results[name], sort_keys=True, default=str)}", flush=True)
    totals = summarize(results, time.monotonic() - started)
    print(json.dumps(totals, sort_keys=False))
    return 0 if totals["passed"] else 1


def summarize(results: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The one JSON line: totals over every scenario, then each scenario's own verdict."""
    total = lambda key: sum(int(result.get(key, 0)) for result in results.values())  # noqa: E731
    checks = {
        "terminal_restart": lambda r: r["exit_codes"][0] in (0, 75) and r["exit_codes"][-1] == 0,
        "terminal_gone": lambda r: r["exit_codes"][0] == 75 and r["exit_codes"][-1] == 0 and r["stopped_line"],
        "disk_full": lambda r: all(stop["exit"] == 74 and stop["lines_naming_it"] == 1 and not stop["traceback"]
                                   and not stop["temp_files"] and not stop["partial_files"] for stop in r["stops"]),
        "ledger_corrupt": lambda r: r["all_moved_aside"],
        "overlap": lambda r: set(r["exit_codes"]) <= {0, 75},
        # every kill asked for landed, and at least the half made once a task was claimed did so mid-task
        # (a soak whose runs end before the kill tests nothing)
        "kills": lambda r: r["kills"] == r["kills_asked"] and r["kills_mid_task"] >= r["kills"] // 2,
    }
    verdicts = {
        name: bool(result["identical"] and all(not result[key] for key in ZERO_KEYS)
                   and checks.get(name, lambda r: True)(result))
        for name, result in results.items()
    }
    summary = {
        "kills": total("kills"),
        "kills_recovered": total("kills_recovered"),
        "faults_injected": total("faults_injected") + total("kills"),
        "rows_expected": total("rows_expected"),
        "rows_written": total("rows_written"),
        **{key: total(key) for key in ZERO_KEYS},
        "scenarios": verdicts,
        "seconds": round(seconds, 1),
    }
    summary["passed"] = all(verdicts.values()) and summary["kills_recovered"] == summary["kills"]
    return summary


if __name__ == "__main__":
    sys.exit(main())
