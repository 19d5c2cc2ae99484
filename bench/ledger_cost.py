"""What recording one expiration costs in a 10-year archive, against an empty one.

Builds a synthetic archive of ``_day.json`` files (2 roots x ~2,520 trading days x 30
expirations, about 150,000 expiration records; no Parquet files, only the ledger's JSON), builds
its ``status.json`` and ``inventory.json`` with ``Ledger.rebuild``, then times
``Ledger.record_expiration`` on new tasks there and in an empty data dir, alternating rounds so
that both see the same disk. Also times claim + finish, which rewrite the two summaries.

    .venv/bin/python bench/ledger_cost.py [--dir DIR] [--years 10] [--expirations 30] [--json]

The build writes its JSON plainly (no fsync) to save time; every timed call is the real one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from spxdl import storage, trading_calendar
from spxdl.ledger import Ledger, Task, new_day, new_expiration_entry, set_file, timestamp, utc_now

ARCHIVE = "greeks-1m"
ROOTS = ("SPX", "SPXW")
ROWS_PER_FILE = 180_000
BYTES_PER_FILE = 2_500_000


def fake_info(task: Task, expiration: date) -> storage.FileInfo:
    """The FileInfo of a file that is never written (the ledger stores it without looking)."""
    path = storage.data_file_path(Path("."), task.archive, task.root, task.trade_date, expiration)
    return storage.FileInfo(path=path, rows=ROWS_PER_FILE, bytes=BYTES_PER_FILE, sha256="0" * 64)


def finished_day(task: Task, expirations: int) -> dict:
    """The ``_day.json`` content of a task finished with ``expirations`` complete files."""
    day = new_day(task)
    for offset in range(expirations):
        expiration = task.trade_date + timedelta(days=offset)
        entry = new_expiration_entry()
        set_file(entry, fake_info(task, expiration))
        entry.update(state="complete", attempts=1, updated_at=timestamp(utc_now()))
        day["expirations"][expiration.isoformat()] = entry
    day.update(state="success", covered=[[0, expirations - 1]], finished_at=timestamp(utc_now()))
    return day


def build_archive(data_dir: Path, trade_dates: list[date], expirations: int) -> int:
    """Write one finished ``_day.json`` per root and trade date; returns the expiration records."""
    records = 0
    for root in ROOTS:
        for trade_date in trade_dates:
            task = Task(ARCHIVE, root, trade_date)
            path = storage.day_json_path(data_dir, task.archive, task.root, task.trade_date)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(finished_day(task, expirations), sort_keys=True, indent=1))
            records += expirations
    return records


def time_one_task(ledger: Ledger, task: Task, expirations: int) -> tuple[list[float], float]:
    """Claim ``task``, time each record_expiration, then time claim + finish together."""
    started = time.perf_counter()
    ledger.claim(task, min_dte=0, max_dte=expirations - 1)
    claim_seconds = time.perf_counter() - started
    record_seconds = []
    for offset in range(expirations):
        expiration = task.trade_date + timedelta(days=offset)
        started = time.perf_counter()
        ledger.record_expiration(task, expiration, "complete", info=fake_info(task, expiration), attempts=1)
        record_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    ledger.finish(task, "success", min_dte=0, max_dte=expirations - 1)
    return record_seconds, claim_seconds + time.perf_counter() - started


def measure(ledgers: dict[str, Ledger], rounds: int, tasks_per_round: int, expirations: int) -> dict:
    """Alternate rounds between the ledgers; per ledger, all record timings and claim+finish timings."""
    results: dict[str, dict[str, list[float]]] = {name: {"record": [], "task": []} for name in ledgers}
    next_date = date(2030, 1, 1)
    for _round in range(rounds):
        for name, ledger in ledgers.items():
            for index in range(tasks_per_round):
                task = Task(ARCHIVE, "SPXW", next_date + timedelta(days=index))
                records, claim_finish = time_one_task(ledger, task, expirations)
                results[name]["record"].extend(records)
                results[name]["task"].append(claim_finish)
        next_date += timedelta(days=tasks_per_round)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="where to build the archives (default: a temp dir)")
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--expirations", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks-per-round", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the median figures")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="spxdl-ledger-bench-") as scratch:
        empty_dir, big_dir = Path(scratch) / "empty", Path(scratch) / "ten-years"
        end = date(2024, 12, 31)
        trade_dates = trading_calendar.trading_days(date(end.year - args.years + 1, 1, 1), end)

        started = time.perf_counter()
        records = build_archive(big_dir, trade_dates, args.expirations)
        build_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = Ledger(big_dir).rebuild(verify_files=False)
        rebuild_seconds = time.perf_counter() - started
        status_bytes = storage.status_path(big_dir).stat().st_size
        inventory_bytes = storage.inventory_path(big_dir).stat().st_size

        ledgers = {"empty": Ledger(empty_dir), "ten-years": Ledger(big_dir)}
        results = measure(ledgers, args.rounds, args.tasks_per_round, args.expirations)

    print(f"synthetic archive: {report['tasks']} tasks, {records} expiration records "
          f"({len(ROOTS)} roots x {len(trade_dates)} trading days x {args.expirations})")
    print(f"  built in {build_seconds:.1f} s; status.json and inventory.json rebuilt in {rebuild_seconds:.1f} s "
          f"({status_bytes / 1e6:.2f} MB and {inventory_bytes / 1e6:.2f} MB)")
    for kind, label in (("record", "record_expiration"), ("task", "claim + finish")):
        for average in (statistics.mean, statistics.median):
            empty = average(results["empty"][kind]) * 1000
            big = average(results["ten-years"][kind]) * 1000
            count = len(results["empty"][kind])
            print(f"{label:>18}: empty archive {empty:.3f} ms, 10-year archive {big:.3f} ms, "
                  f"ratio {big / empty:.2f} ({average.__name__} of {count} calls each)")
    if args.json:
        print(json.dumps({
            "ledger_record_ms_empty": round(statistics.median(results["empty"]["record"]) * 1000, 3),
            "ledger_record_ms_10y": round(statistics.median(results["ten-years"]["record"]) * 1000, 3),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
