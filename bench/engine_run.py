"""Measure a multi-day engine run against the simulator (realistic profile): 1 vs 2 workers.

The simulator serves from its own process; a warm-up run fills its chain and body caches first,
so the measured runs time spxdl (download, convert, write, record), not the synthetic market.
Keep the range within the simulator's caches (the default's 9 expirations fit; 18 do not, and
the measured runs then time the simulator regenerating chains). Seconds include starting the
spawned workers (about a second).

    .venv/bin/python bench/engine_run.py [--url URL] [--start 2024-03-11 --end 2024-03-15 --max-dte 1
                                          --threads 2 --api auto --repeat 3] [--json]

"seconds" is the whole run() including starting the spawned workers (about a second);
"busy rows/s" counts from the first task started to the last task done. Medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from spxdl import engine
from spxdl.config import Settings


def serve(profile: str, connection) -> None:
    """The simulator, in its own process: sends its URL, then serves until terminated."""
    from spxdl.simulator import Simulator

    simulator = Simulator(profile=profile)
    connection.send(simulator.url)
    simulator.serve_forever()


def measure(url: str, data_dir: Path, args: argparse.Namespace, workers: int) -> dict[str, float]:
    """One run into ``data_dir``; its figures (``busy``: first task started to last task done)."""
    settings = Settings(
        terminal_url=url,
        terminal_api=args.api,
        data_dir=data_dir,
        workers=workers,
        threads=args.threads,
        min_dte=0,
        max_dte=args.max_dte,
    )
    plan = engine.plan(settings, args.start, args.end)
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    summary = engine.run(plan, settings, on_event=lambda event: marks.append((time.perf_counter(), event.kind)))
    seconds = time.perf_counter() - started
    if not summary.complete:
        raise SystemExit(f"the run did not complete: {summary.by_state()}")
    busy = max(t for t, kind in marks if kind == "task_done") - min(t for t, kind in marks if kind == "task_started")
    totals = summary.totals()
    return {
        "workers": workers,
        "tasks": totals["tasks"],
        "expirations": sum(totals["expirations"].values()),
        "rows": totals["rows"],
        "MB": totals["bytes"] / 1e6,
        "seconds": seconds,
        "rows_per_s": totals["rows"] / seconds,
        "busy_rows_per_s": totals["rows"] / busy,
    }


def median(url: str, root: Path, args: argparse.Namespace, workers: int) -> dict[str, float]:
    """The median run of ``args.repeat`` (by rows/s)."""
    runs = [measure(url, root / f"run-{workers}-{n}", args, workers) for n in range(args.repeat)]
    middle = statistics.median_low([figures["rows_per_s"] for figures in runs])
    return next(figures for figures in runs if figures["rows_per_s"] == middle)


def report(url: str, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        warm = measure(url, root / "warm-up", args, workers=2)
        print(f"{os.cpu_count()} CPUs; API {args.api}; {args.threads} thread(s) per worker; median of {args.repeat}")
        print(f"warm-up: {warm['rows']:,} rows in {warm['seconds']:.1f} s")
        print(f"{'workers':>7} {'tasks':>5} {'exps':>5} {'rows':>11} {'MB':>6} {'seconds':>7} {'rows/s':>9} "
              f"{'busy rows/s':>11}")
        results = [median(url, root, args, workers) for workers in (1, 2)]
    for r in results:
        print(
            f"{r['workers']:>7} {r['tasks']:>5} {r['expirations']:>5} {r['rows']:>11,} {r['MB']:>6.1f} "
            f"{r['seconds']:>7.2f} {r['rows_per_s']:>9,.0f} {r['busy_rows_per_s']:>11,.0f}"
        )
    gain = results[1]["rows_per_s"] / results[0]["rows_per_s"] - 1
    print(f"second worker: {gain:+.0%} rows/s")
    return {f"spxdl_rows_per_s_{r['workers']}w": round(r["rows_per_s"]) for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a warm simulator (default: start a realistic one)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 3, 11))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2024, 3, 15))
    parser.add_argument("--max-dte", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--api", default="auto", choices=("auto", "v2", "v3"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="realistic")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.url:
        figures = report(args.url, args)
    else:
        receive, send = multiprocessing.Pipe(duplex=False)
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(args.profile, send), daemon=True)
        server.start()
        try:
            figures = report(receive.recv(), args)
        finally:
            server.terminate()
            server.join()
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
