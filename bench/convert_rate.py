"""Measure the converter: rows/s on one realistic chain already in memory, against pyarrow alone
(csv.read_csv + pq.write_table on the same bytes) and a naive csv-module + pa.Table.from_pylist
script; then the compression ratio of a realistic day (every SPXW expiration in the DTE window)
against its CSV bytes. Data: the built-in simulator, realistic profile, v2 CSV bodies.

    .venv/bin/python bench/convert_rate.py [--date 2024-07-15] [--max-dte 60] [--repeat 3] [--level N]
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from datetime import date, timedelta
from typing import Callable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import requests

from spxdl.config import Settings
from spxdl.convert import ConvertSpec, write_parquet
from spxdl.datasets import GREEKS
from spxdl.simulator import Simulator

START_MS, END_MS, INTERVAL_MS = 34_200_000, 57_600_000, 60_000
DEFAULTS = Settings()  # what a user's run writes: zstd level, row-group size
V2_INTS = {"expiration", "strike", "ms_of_day", "ms_of_day2", "date"}
V2_TEXT = {"root", "right"}


def fetch_chain(session: requests.Session, url: str, expiration: date, trade_date: date) -> bytes:
    """One expiration's 1-minute greeks for the day as the v2 CSV body."""
    params = {"root": "SPXW", "exp": f"{expiration:%Y%m%d}", "start_date": f"{trade_date:%Y%m%d}",
              "end_date": f"{trade_date:%Y%m%d}", "ivl": INTERVAL_MS, "use_csv": "true"}
    response = session.get(url + GREEKS.v2_path, params=params, timeout=300)
    response.raise_for_status()
    return response.content


def expirations(session: requests.Session, url: str, trade_date: date, max_dte: int) -> list[date]:
    """SPXW expirations from the trade date to ``max_dte`` days after it."""
    response = session.get(url + "/v2/list/expirations", params={"root": "SPXW", "use_csv": "true"}, timeout=60)
    response.raise_for_status()
    listed = [date(int(v[:4]), int(v[4:6]), int(v[6:])) for v in response.text.split()[1:]]
    return [e for e in listed if trade_date <= e <= trade_date + timedelta(days=max_dte)]


def spec_for(expiration: date, trade_date: date, level: int | None) -> ConvertSpec:
    return ConvertSpec(GREEKS, "v2", "SPXW", expiration, trade_date, START_MS, END_MS, INTERVAL_MS,
                       compression_level=level, row_group_rows=DEFAULTS.row_group_rows)


def spxdl_convert(body: bytes, spec: ConvertSpec) -> int:
    return write_parquet([io.BytesIO(body)], io.BytesIO(), spec).rows


def pyarrow_alone(body: bytes, level: int | None = None) -> int:
    table = pacsv.read_csv(io.BytesIO(body))
    pq.write_table(table, io.BytesIO(), compression="zstd", compression_level=level)
    return table.num_rows


def naive_script(body: bytes) -> int:
    reader = csv.reader(io.StringIO(body.decode()))
    header = next(reader)
    kinds = [str if name in V2_TEXT else int if name in V2_INTS else float for name in header]
    rows = [{name: kind(value) for name, kind, value in zip(header, kinds, line)} for line in reader]
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, io.BytesIO(), compression="zstd")
    return table.num_rows


def best_rates(converters: list[Callable[[], int]], repeat: int) -> list[float]:
    """The best rows/s of each converter over ``repeat`` rounds, run in turn so that they share
    the machine's load alike."""
    best = [0.0] * len(converters)
    for _ in range(repeat):
        for index, convert in enumerate(converters):
            started = time.perf_counter()
            rows = convert()
            best[index] = max(best[index], rows / (time.perf_counter() - started))
    return best


def day_ratio(bodies: dict[date, bytes], trade_date: date, level: int | None) -> tuple[int, int, int]:
    """(CSV bytes, Parquet bytes, rows) of the day's chains converted with spxdl."""
    csv_bytes = parquet_bytes = rows = 0
    for expiration, body in bodies.items():
        sink = io.BytesIO()
        rows += write_parquet([io.BytesIO(body)], sink, spec_for(expiration, trade_date, level)).rows
        csv_bytes += len(body)
        parquet_bytes += len(sink.getvalue())
    return csv_bytes, parquet_bytes, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, default=date(2024, 7, 15))
    parser.add_argument("--max-dte", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--level", type=int, default=DEFAULTS.compression_level, help="zstd level (default: spxdl's)")
    args = parser.parse_args()

    with Simulator(profile="realistic") as sim, requests.Session() as session:
        chain = fetch_chain(session, sim.url, args.date, args.date)
        chain_rows = chain.count(b"\n") - 1
        print(f"one chain: SPXW exp {args.date} on {args.date}, {chain_rows:,} rows, "
              f"{len(chain) / 1e6:.1f} MB of CSV")
        spec = spec_for(args.date, args.date, args.level)
        ours, alone = best_rates([lambda: spxdl_convert(chain, spec), lambda: pyarrow_alone(chain, args.level)], args.repeat)
        (naive,) = best_rates([lambda: naive_script(chain)], 1)
        print(f"  spxdl converter          {ours:>12,.0f} rows/s")
        print(f"  pyarrow alone            {alone:>12,.0f} rows/s   spxdl = {ours / alone:.0%} of it")
        print(f"  naive csv + from_pylist  {naive:>12,.0f} rows/s   spxdl = {ours / naive:.1f}x it")

        days = expirations(session, sim.url, args.date, args.max_dte)
        bodies = {e: chain if e == args.date else fetch_chain(session, sim.url, e, args.date) for e in days}
    csv_bytes, parquet_bytes, rows = day_ratio(bodies, args.date, args.level)
    print(f"one day: {len(days)} SPXW expirations (DTE 0-{args.max_dte}), {rows:,} rows")
    print(f"  CSV {csv_bytes / 1e6:,.1f} MB -> Parquet {parquet_bytes / 1e6:,.1f} MB: "
          f"{csv_bytes / parquet_bytes:.2f}:1 (zstd level {args.level if args.level is not None else 'default'})")


if __name__ == "__main__":
    main()
