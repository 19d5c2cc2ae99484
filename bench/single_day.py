"""One realistic day end to end, as a user runs it: ``spxdl run`` against a warm simulator, taken in
turn with the conversion floor on the same bodies, then the same command with nothing left to do,
then the day's Parquet against its CSV in DuckDB.

- ``single_day_rows_per_s``: rows over the wall time of the whole ``spxdl run`` process, start to
  exit (start-up, detection, workers, download, conversion, fsyncs, ledger), all defaults;
- ``conversion_floor_rows_per_s``: pyarrow alone on one thread, the day's bodies in memory
  (``convert_rate.floor``), measured alternately with the runs above so that both meet the same
  load on a shared machine: their ratio is the figure that matters;
- ``cpu_s_per_million_rows``: user + system CPU of that process and of every worker it started;
- ``noop_run_s``: the same command once everything is there;
- ``compression_ratio``: CSV bytes the terminal sent over the Parquet bytes stored;
- ``duckdb_speedup_vs_csv``: one aggregate over the day's Parquet against the same over its CSV.

Medians of ``--repeat`` runs, each into a new data dir, after one run that is not timed; Python
may cache compiled modules, as on any install (PYTHONDONTWRITEBYTECODE is left out). The
simulator runs in its own process.

    .venv/bin/python bench/single_day.py [--url URL] [--date 2024-07-15] [--max-dte 30] [--repeat 3] [--warm] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from terminal_process import simulator_process

QUERY = ('SELECT expiration, "right", count(*) AS n, avg(implied_vol) AS iv, max(underlying_price) AS spot '
         "FROM {source} GROUP BY ALL ORDER BY ALL")


def user_env(home: Path, bytecode: bool = False) -> dict[str, str]:
    """A user's environment without spxdl settings; ``bytecode``: Python may cache compiled modules."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    env["HOME"] = str(home)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def spxdl_run(url: str, data_dir: Path, args: argparse.Namespace, env: dict[str, str]) -> tuple[float, float]:
    """``spxdl run`` of the day as its own process: (wall seconds, CPU seconds of it and its workers)."""
    command = [sys.executable, "-m", "spxdl", "--quiet", "run", "--date", args.date.isoformat(),
               "--max-dte", str(args.max_dte), "--terminal-url", url, "--data-dir", str(data_dir)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=data_dir.parent, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"spxdl run exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def stored(data_dir: Path) -> tuple[int, int]:
    """(rows, bytes) of the Parquet files of a data dir."""
    import pyarrow.parquet as pq

    files = [p for p in data_dir.rglob("*.parquet") if not p.name.startswith(".")]
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files), sum(p.stat().st_size for p in files)


def duckdb_speedup(url: str, data_dir: Path, scratch: Path, args: argparse.Namespace) -> tuple[float, int]:
    """(median seconds of QUERY over the day's CSV bodies / the same over its Parquet files, CSV bytes)."""
    import duckdb
    from convert_rate import day_bodies

    _, bodies = day_bodies(url, "auto", args.date, args.max_dte)  # a fresh copy: the caller's may be gone
    csv_dir = scratch / "csv"
    csv_dir.mkdir()
    for expiration, body in bodies.items():
        (csv_dir / f"{expiration}.csv").write_bytes(body)
    sources = {
        "csv": f"read_csv('{csv_dir}/*.csv')",
        "parquet": f"read_parquet('{data_dir}/greeks-1m/**/*.parquet', hive_partitioning = true)",
    }
    seconds = {}
    with duckdb.connect() as connection:
        for name, source in sources.items():
            runs = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                connection.sql(QUERY.format(source=source)).fetchall()
                runs.append(time.perf_counter() - started)
            seconds[name] = statistics.median(runs)
    return seconds["csv"] / seconds["parquet"], sum(len(body) for body in bodies.values())


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    from convert_rate import day_bodies, floor, one_thread

    api, bodies = day_bodies(url, "auto", args.date, args.max_dte)
    with tempfile.TemporaryDirectory(prefix="spxdl-day-") as scratch_name:
        scratch = Path(scratch_name)
        env = user_env(scratch, bytecode=True)
        if not args.warm:
            spxdl_run(url, scratch / "warm-up", args, env)  # compiles and caches spxdl's modules: not timed
        walls, cpus, floors = [], [], []
        for repeat in range(args.repeat):
            with one_thread():
                started = time.perf_counter()
                floor_rows = floor(api, list(bodies.values()))
                floors.append(floor_rows / (time.perf_counter() - started))
            data_dir = scratch / f"run-{repeat}"
            wall, cpu = spxdl_run(url, data_dir, args, env)
            walls.append(wall)
            cpus.append(cpu)
        rows, parquet_bytes = stored(data_dir)
        noop = statistics.median(spxdl_run(url, data_dir, args, env)[0] for _ in range(5))
        speedup, sent = duckdb_speedup(url, data_dir, scratch, args)
    wall, cpu, floor_rate = statistics.median(walls), statistics.median(cpus), statistics.median(floors)
    print(f"`spxdl run --date {args.date} --max-dte {args.max_dte}` (defaults), {rows:,} rows, median of {args.repeat}:")
    print(f"  {wall:.2f} s: {rows / wall:,.0f} rows/s end to end; CPU {cpu:.2f} s ({cpu / rows * 1e6:.2f} s per million rows)")
    print(f"  the floor (pyarrow alone, one thread, in turn with the runs): {floor_rate:,.0f} rows/s; "
          f"the day end to end = {rows / wall / floor_rate:.2f}x it")
    print(f"  with nothing to do: {noop:.3f} s")
    print(f"  Parquet {parquet_bytes / 1e6:,.1f} MB for {sent / 1e6:,.1f} MB of CSV sent: {sent / parquet_bytes:.2f}:1")
    print(f"  DuckDB, one aggregate over the day: Parquet {speedup:.1f}x faster than its CSV")
    return {
        "rows": rows,
        "csv_bytes": sent,
        "conversion_floor_rows_per_s": round(floor_rate),
        "single_day_rows_per_s": round(rows / wall),
        "cpu_s_per_million_rows": round(cpu / rows * 1e6, 3),
        "noop_run_s": round(noop, 3),
        "compression_ratio": round(sent / parquet_bytes, 2),
        "duckdb_speedup_vs_csv": round(speedup, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a warm simulator (default: start a realistic one and warm it)")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2024, 7, 15))
    parser.add_argument("--max-dte", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    parser.add_argument("--warm", action="store_true",
                        help="the same command has just run (make bench's warm-up): no untimed run first")
    args = parser.parse_args()
    if args.url:
        figures = measure(args.url, args)
    else:
        with simulator_process("realistic", body_cache_mb=1024) as url, tempfile.TemporaryDirectory() as warm:
            spxdl_run(url, Path(warm) / "data", args, user_env(Path(warm)))  # renders the bodies: not timed
            figures = measure(url, args)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
