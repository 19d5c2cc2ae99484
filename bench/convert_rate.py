"""Measure conversion on one realistic chain held in memory: spxdl's converter against the floor
(pyarrow alone, one thread) and a naive csv-module + pa.Table.from_pylist script. ``single_day.py``
measures the floor over a whole day, in turn with the runs it is compared with; this script's
``day_bodies`` and ``floor`` serve it. Data: the built-in simulator, realistic
profile, the bodies of the API spxdl picks (v3 unless told), exactly as a run requests them.

The floor reads each body with ``pyarrow.csv.read_csv`` (one thread, the pinned wire types) and
writes it with ``pyarrow.parquet.write_table`` (zstd at spxdl's level and row-group size): what
converting those bytes costs with nothing else, on one core.

    .venv/bin/python bench/convert_rate.py [--url URL] [--date 2024-07-15] [--repeat 7] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import statistics
import time
from datetime import date, timedelta
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from spxdl.config import Settings
from spxdl.convert import NOT_STORED, ConvertSpec, write_parquet
from spxdl.datasets import GREEKS
from spxdl.terminal import TerminalClient
from terminal_process import simulator_process

DEFAULTS = Settings()  # what a user's run writes: zstd level, row-group size, intraday window
V2_INTEGERS = {"expiration", "strike", "ms_of_day", "ms_of_day2", "date"}
TEXT = {"root", "symbol", "right", "timestamp", "underlying_timestamp"}  # and v3's ISO expiration


def day_bodies(url: str, api: str, day: date, max_dte: int) -> tuple[str, dict[date, bytes]]:
    """(API, expiration -> CSV body) of SPXW greeks on ``day`` for DTE 0..max_dte, as spxdl asks for them."""
    with TerminalClient(url, api=api).connect() as client:
        expirations = [e for e in client.expirations("SPXW") if day <= e <= day + timedelta(days=max_dte)]
        bodies = {
            expiration: b"".join(page.read() for page in client.history(
                GREEKS, "SPXW", expiration, day, start_ms=DEFAULTS.start_ms, end_ms=DEFAULTS.end_ms))
            for expiration in expirations
        }
        return client.api, bodies


def spec_for(api: str, expiration: date, day: date) -> ConvertSpec:
    return ConvertSpec(GREEKS, api, "SPXW", expiration, day, DEFAULTS.start_ms, DEFAULTS.end_ms, 60_000,
                       compression_level=DEFAULTS.compression_level, row_group_rows=DEFAULTS.row_group_rows)


def floor(api: str, bodies: list[bytes]) -> int:
    """pyarrow alone, one thread: every body parsed with the pinned types and written as zstd Parquet."""
    types = GREEKS.wire_types(api)
    stored = [name for name in GREEKS.columns(api) if name not in NOT_STORED]
    read = pacsv.ReadOptions(use_threads=False)
    convert = pacsv.ConvertOptions(column_types=types, include_columns=stored)
    rows = 0
    for body in bodies:
        table = pacsv.read_csv(io.BytesIO(body), read_options=read, convert_options=convert)
        pq.write_table(table, io.BytesIO(), compression="zstd", compression_level=DEFAULTS.compression_level,
                       row_group_size=DEFAULTS.row_group_rows)
        rows += table.num_rows
    return rows


def spxdl_convert(api: str, day: date, bodies: dict[date, bytes]) -> int:
    return sum(write_parquet([io.BytesIO(body)], io.BytesIO(), spec_for(api, e, day)).rows for e, body in bodies.items())


def naive_script(api: str, body: bytes) -> int:
    """What one would write first: the csv module, a dict per row, ``pa.Table.from_pylist``."""
    reader = csv.reader(io.StringIO(body.decode()))
    header = next(reader)
    text = TEXT | ({"expiration"} if api == "v3" else set())
    integers = V2_INTEGERS if api == "v2" else set()
    kinds = [str if name in text else int if name in integers else float for name in header]
    rows = [{name: kind(value) for name, kind, value in zip(header, kinds, line)} for line in reader]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, io.BytesIO(), compression="zstd")
    return table.num_rows


def median_rate(convert: Callable[[], int], repeat: int) -> float:
    """The median rows/s of ``repeat`` runs of ``convert``."""
    return median_rates([convert], repeat)[0]


def median_rates(converters: list[Callable[[], int]], repeat: int) -> list[float]:
    """The median rows/s of each converter over ``repeat`` rounds, run in turn so that they meet
    the machine's load alike."""
    rates: list[list[float]] = [[] for _ in converters]
    for _ in range(repeat):
        for index, convert in enumerate(converters):
            started = time.perf_counter()
            rows = convert()
            rates[index].append(rows / (time.perf_counter() - started))
    return [statistics.median(each) for each in rates]


def floor_alone(api: str, bodies: list[bytes]) -> int:
    """``floor`` with Arrow held to one thread."""
    with one_thread():
        return floor(api, bodies)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Arrow's own thread pools held to one thread (the floor is one core's)."""
    cpus, io_threads = pa.cpu_count(), pa.io_thread_count()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    try:
        yield
    finally:
        pa.set_cpu_count(cpus)
        pa.set_io_thread_count(io_threads)


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    api, bodies = day_bodies(url, args.api, args.date, 0)  # the day's nearest chain, the largest
    chain_day, chain = next(iter(bodies.items()))
    ours_rate, chain_floor = median_rates(
        [lambda: spxdl_convert(api, args.date, {chain_day: chain}), lambda: floor_alone(api, [chain])], args.repeat)
    naive_rate = median_rate(lambda: naive_script(api, chain), 1)
    chain_rows = chain.count(b"\n") - 1
    print(f"one chain (SPXW exp {chain_day} on {args.date}, {chain_rows:,} rows, {len(chain) / 1e6:.1f} MB of {api} "
          f"CSV), in memory, median of {args.repeat}:")
    print(f"  spxdl converter                        {ours_rate:>12,.0f} rows/s")
    print(f"  pyarrow alone, one thread              {chain_floor:>12,.0f} rows/s   spxdl = {ours_rate / chain_floor:.0%} of it")
    print(f"  naive csv + from_pylist                {naive_rate:>12,.0f} rows/s   spxdl = {ours_rate / naive_rate:.1f}x it")
    return {"naive_rows_per_s": round(naive_rate), "spxdl_convert_rows_per_s": round(ours_rate)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a warm simulator (default: start a realistic one)")
    parser.add_argument("--api", default="auto", choices=("auto", "v2", "v3"))
    parser.add_argument("--date", type=date.fromisoformat, default=date(2024, 7, 15))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.url:
        figures = measure(args.url, args)
    else:
        with simulator_process("realistic", body_cache_mb=1024) as url:
            day_bodies(url, args.api, args.date, 0)  # the simulator renders it: not timed
            figures = measure(url, args)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
