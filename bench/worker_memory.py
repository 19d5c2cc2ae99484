"""Peak memory of a download worker: the realistic chain against one with 4x the strikes.

For each simulator profile (``realistic``, then ``dense``: every 5 points from 60 % to 125 % of
the index, about 4x the strikes), a simulator runs as its own process and a measuring process
runs the engine over one day (SPXW 2024-07-15, DTE 0..1: two expirations, one worker, two
threads). The worker's peak RSS is the largest ``ru_maxrss`` of the measuring process's reaped
children (Linux reports KiB), so the simulator's caches are not counted. Medians of ``--repeat``
runs (a peak moves by 20 MB or so from run to run).

    .venv/bin/python bench/worker_memory.py [--profiles realistic dense] [--url REALISTIC_URL] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from sim_process import start_simulator

DAY = date(2024, 7, 15)


def measure_inside(url: str, data_dir: Path, row_group_rows: int | None) -> dict[str, float]:
    """Run the engine once (this process is the parent); figures of its worker."""
    from spxdl import engine
    from spxdl.config import Settings

    settings = Settings(terminal_url=url, data_dir=data_dir, workers=1, threads=2, min_dte=0, max_dte=1)
    if row_group_rows:
        settings = settings.replace(row_group_rows=row_group_rows)
    started = time.perf_counter()
    summary = engine.run(engine.plan(settings, DAY, DAY), settings)
    totals = summary.totals()
    return {
        "rows": totals["rows"],
        "expirations": sum(totals["expirations"].values()),
        "seconds": time.perf_counter() - started,
        "worker_peak_mb": worker_peak_mb(),
        "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker_peak_mb() -> float:
    """The largest peak RSS (MB) among this process's reaped children: its workers, once the fork
    server that forked (and reaped) them has ended and been reaped itself. The measuring process's
    last step: it ends multiprocessing's helper processes."""
    from spxdl.engine.forking import release_at_exit

    release_at_exit(reap=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure(profile: str, row_group_rows: int | None, url: str | None = None, repeat: int = 1) -> dict[str, float]:
    """One profile: its own simulator process (unless ``url`` names a running one); the median run
    of ``repeat``, each in a measuring process of its own."""
    if url:
        return median_run(url, profile, row_group_rows, repeat)
    simulator, url = start_simulator(profile)
    try:
        return median_run(url, profile, row_group_rows, repeat)
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


def median_run(url: str, profile: str, row_group_rows: int | None, repeat: int) -> dict[str, float]:
    runs = sorted((measure_at(url, profile, row_group_rows) for _ in range(repeat)), key=lambda f: f["worker_peak_mb"])
    return runs[len(runs) // 2]


def measure_at(url: str, profile: str, row_group_rows: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"spxdl-mem-{profile}-") as data_dir:
        inner = subprocess.run(
            [sys.executable, __file__, "--inside", url, data_dir, *row_group_flag(row_group_rows)],
            capture_output=True, text=True, check=True,
        )
        return json.loads(inner.stdout.strip().splitlines()[-1])


def row_group_flag(rows: int | None) -> list[str]:
    return ["--row-group-rows", str(rows)] if rows else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["realistic", "dense"])
    parser.add_argument("--row-group-rows", type=int, help="override [storage] row_group_rows")
    parser.add_argument("--url", help="a running realistic simulator (the others start their own)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--inside", nargs=2, metavar=("URL", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(measure_inside(args.inside[0], Path(args.inside[1]), args.row_group_rows)))
        return
    results = {profile: measure(profile, args.row_group_rows, args.url if profile == "realistic" else None, args.repeat)
               for profile in args.profiles}
    print(f"one worker, two threads, SPXW {DAY}, DTE 0..1; median of {args.repeat}:")
    for profile, figures in results.items():
        print(f"  {profile:<10} {figures['rows']:>10,.0f} rows in {figures['expirations']:.0f} expirations, "
              f"{figures['seconds']:5.1f} s; worker peak RSS {figures['worker_peak_mb']:6.1f} MB "
              f"(parent {figures['parent_peak_mb']:.1f} MB)")
    if {"realistic", "dense"} <= set(results):
        ratio_rows = results["dense"]["rows"] / results["realistic"]["rows"]
        ratio_rss = results["dense"]["worker_peak_mb"] / results["realistic"]["worker_peak_mb"]
        print(f"  dense / realistic: {ratio_rows:.1f}x the rows, {ratio_rss:.2f}x the worker's peak memory")
    if args.json:
        keys = {"realistic": "peak_rss_mb_per_worker", "dense": "peak_rss_mb_per_worker_4x"}
        print(json.dumps({keys[p]: round(f["worker_peak_mb"], 1) for p, f in results.items() if p in keys}))


if __name__ == "__main__":
    main()
