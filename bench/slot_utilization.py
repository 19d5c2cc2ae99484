"""How busy spxdl keeps a terminal that allows N requests at once: the busy fraction of its slots.

For each cap (2, 4 and 8: the Value, Standard and Pro tiers), a tiny-profile simulator in its own
process answers every request after a fixed latency (0.5 s; its bodies are small, so the latency
is the limit, as with a real terminal whose answers wait on the vendor's servers) and answers 429
above the cap. spxdl runs a multi-day range (SPXW, DTE 0..13: two expirations per task, so every
task has a tail) with ``max_in_flight`` set to the cap and every other setting at its default
(workers and threads derived from it). The simulator integrates the requests in flight over time;
the busy fraction is that integral over cap x (last answer - first request), the whole run as the
terminal sees it: detection, listing, the first and the last tasks included.

    .venv/bin/python bench/slot_utilization.py [--caps 2 4 8] [--latency 0.5] [--seconds 14] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from datetime import date
from pathlib import Path

from terminal_process import counters, reset_counters, simulator_process

FIRST_DAY = date(2023, 1, 3)
MAX_DTE = 13  # the tiny profile lists Fridays: two expirations per trade date


def trade_days(count: int) -> tuple[date, date]:
    """The first and last of ``count`` trading days from FIRST_DAY."""
    from spxdl import trading_calendar

    days = trading_calendar.trading_days(FIRST_DAY, date(FIRST_DAY.year + 3, 12, 31))[:count]
    return days[0], days[-1]


def measure(cap: int, latency: float, seconds: float) -> dict[str, float]:
    """One run against a terminal that allows ``cap`` requests at once; its figures."""
    from spxdl import engine
    from spxdl.config import Settings

    seconds *= 1 + cap / 8  # the start (detection, listing, workers) weighs more with more slots
    days = math.ceil(cap * seconds / latency / 2)  # two requests per task
    start, end = trade_days(days)
    with simulator_process("tiny", latency=latency, max_concurrent=cap) as url, \
            tempfile.TemporaryDirectory(prefix=f"spxdl-slots-{cap}-") as scratch:
        settings = Settings(terminal_url=url, data_dir=Path(scratch), max_in_flight=cap, min_dte=0, max_dte=MAX_DTE)
        plan = engine.plan(settings, start, end)
        reset_counters(url)
        started = time.monotonic()
        summary = engine.run(plan, settings)
        seconds_run = time.monotonic() - started
        served = counters(url)
    if not summary.complete:
        raise SystemExit(f"the run with max_in_flight {cap} did not complete: {summary.by_state()}")
    window = served["busy_until"] - served["busy_from"]
    throttled = sum(by_status.get("429", 0) for by_status in served["requests"].values())
    return {
        "cap": cap,
        "workers": settings.worker_processes,
        "threads": settings.worker_threads,
        "tasks": len(plan.tasks),
        "requests": sum(sum(by_status.values()) for by_status in served["requests"].values()),
        "throttled": throttled,
        "seconds": seconds_run,
        "window": window,
        "utilization": served["in_flight_seconds"] / (cap * window),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the simulator adds to each request")
    parser.add_argument("--seconds", type=float, default=14,
                        help="about how long a run lasts at cap 0 (it grows with the cap: 2x at 8)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    results = [measure(cap, args.latency, args.seconds) for cap in args.caps]
    print(f"a terminal answering after {args.latency:g} s, 429 above the cap; SPXW DTE 0..{MAX_DTE}, defaults")
    print(f"{'cap':>4} {'workers x threads':>17} {'tasks':>5} {'requests':>8} {'429s':>5} {'run s':>6} "
          f"{'busy fraction':>13}")
    for r in results:
        shape = f"{r['workers']} x {r['threads']}"
        print(f"{r['cap']:>4} {shape:>17} {r['tasks']:>5} {r['requests']:>8} {r['throttled']:>5} "
              f"{r['seconds']:>6.1f} {r['utilization']:>13.3f}")
    if args.json:
        print(json.dumps({f"slot_utilization_{r['cap']}": round(r["utilization"], 3) for r in results}))


if __name__ == "__main__":
    main()
