"""Peak memory of streaming one realistic SPXW chain (100,000+ rows) through TerminalClient.

The simulator runs in its own process so that only the client's memory is measured here. The
chain is read page by page in 64 KiB reads, as a CSV reader pulls it; the script prints the rows,
bytes and how far this process's peak RSS rose above its RSS at the start. On Linux the peak is
reset before each measurement (``/proc/self/clear_refs``) and read from ``VmHWM``; elsewhere
``ru_maxrss`` is used, which cannot be reset. As a control, the same chain is then read with one
``read()`` per page (the whole body in memory), which the growth figure must show.

    .venv/bin/python bench/terminal_memory.py [--api v2|v3|both] [--page-rows N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from datetime import date

from spxdl.datasets import GREEKS
from spxdl.simulator import Simulator
from spxdl.terminal import TerminalClient

TRADE_DATE = date(2024, 3, 14)
READ_SIZE = 64 * 1024
MIB = 1 << 20


def serve(conn, page_rows: int | None) -> None:
    """The simulator process: serve until the parent sends anything."""
    with Simulator(profile="realistic", page_rows=page_rows) as sim:
        conn.send(sim.url)
        conn.recv()


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> int:
    """Reset the peak RSS where the OS allows it; this process's RSS (or old peak) in bytes."""
    if sys.platform.startswith("linux"):
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return status_kib("VmRSS") * 1024
    return peak_rss()


def peak_rss() -> int:
    """This process's peak resident set size in bytes."""
    if sys.platform.startswith("linux"):
        return status_kib("VmHWM") * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def stream_chain(client: TerminalClient, expiration: date, read_size: int) -> tuple[int, int, int]:
    """Read every page of one expiration to its end in reads of ``read_size`` (-1: whole page)."""
    rows = pages = size = 0
    for page in client.history(GREEKS, "SPXW", expiration, TRADE_DATE):
        pages += 1
        while chunk := page.read(read_size):
            size += len(chunk)
            rows += chunk.count(b"\n")
        rows -= 1  # each page repeats the header line
    return rows, pages, size


def measure(client: TerminalClient, expiration: date, read_size: int, label: str) -> None:
    before = reset_peak()
    started = time.monotonic()
    rows, pages, size = stream_chain(client, expiration, read_size)
    seconds = time.monotonic() - started
    growth = peak_rss() - before
    print(
        f"{client.api} {label}: {rows:,} rows in {pages} page(s), {size / MIB:.1f} MiB of CSV in {seconds:.2f} s; "
        f"RSS {before / MIB:.1f} MiB before, peak growth {growth / MIB:.2f} MiB"
    )


def measure_api(url: str, api: str) -> None:
    client = TerminalClient(url, api=api).connect()
    expiration = next(e for e in client.expirations("SPXW") if e >= TRADE_DATE)
    measure(client, expiration, READ_SIZE, "streamed in 64 KiB reads")
    measure(client, expiration, -1, "control, whole page per read()")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", choices=("v2", "v3", "both"), default="both")
    parser.add_argument("--page-rows", type=int, default=None, help="v2 page size of the simulator")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(child, args.page_rows), daemon=True)
    server.start()
    try:
        url = parent.recv()
        for api in ("v2", "v3") if args.api == "both" else (args.api,):
            measure_api(url, api)
    finally:
        parent.send("stop")
        server.join(10)


if __name__ == "__main__":
    main()
