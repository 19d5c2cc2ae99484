"""`make bench`: run every benchmark in turn and print its figures.

Each benchmark is a script of its own (run one alone for more options); this runs them with
their defaults in one go, so that ratios come from one machine state. Nothing here asserts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    ("converter: rows/s vs pyarrow alone vs a naive script; compression", "convert_rate.py"),
    ("simulator: chain generation and serving rate", "simulator_rate.py"),
    ("terminal client: peak memory while streaming a realistic chain", "terminal_memory.py"),
    ("worker: peak memory, realistic chain vs 4x the strikes", "worker_memory.py"),
    ("ledger: recording cost in an empty vs a 10-year archive", "ledger_cost.py"),
    ("engine: multi-day simulated run, 1 vs 2 workers", "engine_run.py"),
    ("sources: terminal vs thetadatadx-server vs direct (SDK); the vendor package's conversion", "sources.py"),
)


def main() -> int:
    failed = []
    for title, script in BENCHMARKS:
        path = HERE / script
        if not path.exists():
            continue
        print(f"\n=== {title} ({script})", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(path)])
        print(f"--- {script}: exit {code}, {time.perf_counter() - started:.1f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
