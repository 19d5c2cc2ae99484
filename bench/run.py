"""`make bench`: every benchmark in turn, a table of their figures, then one JSON line of them all.

One realistic simulator runs in its own process with a body cache that holds a whole day (SPXW
2024-07-15, DTE 0..30) and the multi-day range; a warm-up run renders those bodies before anything
is timed, and every benchmark that needs a realistic terminal uses it. Each benchmark is a script
of its own (run one alone for its options); here each gets that simulator's URL and, but for the
three of ``TEXT_ONLY``, ends with a JSON line. The last line printed is one JSON object with every key of ``KEYS``, in that order
(null, and exit 1, for a figure whose benchmark failed). Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from terminal_process import simulator_process

HERE = Path(__file__).resolve().parent
DAY = "2024-07-15"
RANGE = ("--start", "2024-03-11", "--end", "2024-03-15", "--max-dte", "1")  # engine_run.py's default
BODY_CACHE_MB = 1024  # the day (about 480 MB of v3 CSV) and the range (about 180 MB)

# (title, script, arguments; "{url}" is the warm simulator's)
BENCHMARKS = (
    ("conversion of one chain in memory: spxdl, pyarrow alone, a naive script", "convert_rate.py",
     ("--url", "{url}", "--date", DAY)),
    ("one day end to end, in turn with the floor; a run with nothing to do; DuckDB", "single_day.py",
     ("--url", "{url}", "--date", DAY, "--max-dte", "30", "--warm")),
    ("engine: multi-day run, 1 vs 2 workers", "engine_run.py", ("--url", "{url}", *RANGE)),
    ("worker: peak memory, realistic chains vs 4x the strikes", "worker_memory.py", ("--url", "{url}")),
    ("ledger: recording cost in an empty vs a 10-year archive", "ledger_cost.py",
     ("--rounds", "3", "--tasks-per-round", "6")),
    ("terminal slots: busy fraction at 2, 4 and 8 requests at once", "slot_utilization.py", ("--seconds", "9")),
    ("terminal client: peak memory while streaming a realistic chain", "terminal_memory.py", ()),
    ("simulator: chain generation and serving rate", "simulator_rate.py", ()),
    ("sources: terminal vs thetadatadx-server vs direct (SDK); the vendor package's conversion", "sources.py",
     ("--terminal-url", "{url}")),
)
TEXT_ONLY = {"terminal_memory.py", "simulator_rate.py", "sources.py"}  # they print no JSON line of figures
# key: what it is (the table's second column)
KEYS = {
    "rows": "rows of the day (SPXW 2024-07-15, DTE 0..30)",
    "csv_bytes": "CSV bytes of the day as the terminal sends them",
    "spxdl_rows_per_s_1w": "multi-day run, one worker (rows/s)",
    "spxdl_rows_per_s_2w": "multi-day run, two workers (rows/s)",
    "conversion_floor_rows_per_s": "pyarrow alone, one thread, the day's bodies in memory (rows/s)",
    "naive_rows_per_s": "csv module + from_pylist, one chain (rows/s)",
    "single_day_rows_per_s": "`spxdl run` of the day, end to end, defaults (rows/s)",
    "cpu_s_per_million_rows": "CPU seconds of every spxdl process per million rows",
    "noop_run_s": "`spxdl run` with nothing to do (s)",
    "peak_rss_mb_per_worker": "a worker's peak RSS, realistic chains (MB)",
    "peak_rss_mb_per_worker_4x": "a worker's peak RSS, 4x the strikes (MB)",
    "compression_ratio": "CSV bytes sent / Parquet bytes stored",
    "duckdb_speedup_vs_csv": "one aggregate: the day's Parquet vs its CSV in DuckDB",
    "ledger_record_ms_empty": "recording an expiration, empty archive (ms, median)",
    "ledger_record_ms_10y": "recording an expiration, 10-year archive (ms, median)",
    "slot_utilization_2": "busy fraction of 2 slots (0.5 s per request)",
    "slot_utilization_4": "busy fraction of 4 slots",
    "slot_utilization_8": "busy fraction of 8 slots",
}


def run_script(script: str, arguments: tuple[str, ...], url: str) -> dict:
    """Run one benchmark, echoing its output; the figures of its last JSON line ({} if none)."""
    command = [sys.executable, str(HERE / script), *(a.replace("{url}", url) for a in arguments)]
    if script not in TEXT_ONLY:
        command.append("--json")
    figures: dict = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=HERE) as process:
        for line in process.stdout:
            parsed = as_figures(line)
            if parsed is None:
                print(line, end="", flush=True)
            else:
                figures.update(parsed)
    if process.returncode:
        print(f"--- {script}: exit {process.returncode}", flush=True)
    return figures


def as_figures(line: str) -> dict | None:
    """The object of a JSON line, or None for a line of text."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def warm_up(url: str) -> float:
    """Render the day's and the range's bodies in the simulator (a run of each); its seconds."""
    started = time.perf_counter()
    # Python may cache spxdl's compiled modules, as on any install: single_day.py times its first run
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="spxdl-bench-warm-") as scratch:
        for name, dates in (("day", ("--date", DAY, "--max-dte", "30")), ("range", RANGE)):
            subprocess.run([sys.executable, "-m", "spxdl", "--quiet", "run", *dates, "--terminal-url", url,
                            "--data-dir", str(Path(scratch) / name)], check=True, cwd=scratch, env=env)
    return time.perf_counter() - started


def print_table(figures: dict) -> None:
    print("\n=== figures")
    for key, meaning in KEYS.items():
        value = figures.get(key)
        shown = "FAILED" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"
        print(f"  {key:<29} {shown:>14}   {meaning}")
    floor, day = figures.get("conversion_floor_rows_per_s"), figures.get("single_day_rows_per_s")
    if floor and day:
        print(f"  single day / conversion floor: {day / floor:.2f}x (target 1.3x)")


def main() -> int:
    started = time.perf_counter()
    figures: dict = {}
    with simulator_process("realistic", body_cache_mb=BODY_CACHE_MB) as url:
        print(f"=== warm-up: the realistic simulator renders the day and the range ({url})", flush=True)
        print(f"    {warm_up(url):.1f} s", flush=True)
        for title, script, arguments in BENCHMARKS:
            print(f"\n=== {title} ({script})", flush=True)
            began = time.perf_counter()
            figures.update(run_script(script, arguments, url))
            print(f"--- {script}: {time.perf_counter() - began:.1f} s", flush=True)
    print_table(figures)
    print(f"  make bench: {time.perf_counter() - started:.0f} s")
    result = {key: figures.get(key) for key in KEYS}
    print(json.dumps(result), flush=True)
    return 0 if all(value is not None for value in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
