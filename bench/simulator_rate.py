"""Measure the simulator: generation time of a realistic near-term chain and the rate of serving it
from the cache over loopback (MB/s), for a v2 CSV body (Content-Length) and a v3 CSV body (chunked).

    .venv/bin/python bench/simulator_rate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import http.client
import time
from urllib.parse import urlsplit

from spxdl.simulator import Simulator

V2 = ("/v2/bulk_hist/option/greeks?root=SPXW&exp=20240315&start_date=20240314&end_date=20240314"
      "&ivl=60000&use_csv=true")
V3 = "/v3/option/history/greeks/first_order?symbol=SPXW&expiration=20240315&date=20240314&interval=1m"


def fetch(conn: http.client.HTTPConnection, path: str) -> int:
    """GET path on a kept-alive connection; the body's size in bytes."""
    conn.request("GET", path)
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"{path}: HTTP {resp.status}")
    return len(resp.read())


def rate(conn: http.client.HTTPConnection, path: str, repeat: int) -> tuple[float, int]:
    """(MB/s, body bytes) of fetching a cached body ``repeat`` times."""
    size = fetch(conn, path)
    start = time.perf_counter()
    for _ in range(repeat):
        fetch(conn, path)
    return size * repeat / (time.perf_counter() - start) / 1e6, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with Simulator(profile="realistic") as sim:
        parts = urlsplit(sim.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        start = time.perf_counter()
        size = fetch(conn, V2)
        first = time.perf_counter() - start
        rows = sim.counters()["completed"]["rows"]
        print(f"realistic near-term chain (SPXW 2024-03-15 on 2024-03-14): {rows} greeks rows, "
              f"{size / 1e6:.1f} MB of v2 CSV, generated and rendered in {first:.2f} s")
        for name, path in (("v2 CSV, Content-Length", V2), ("v3 CSV, chunked", V3)):
            mb_s, body = rate(conn, path, args.repeat)
            print(f"serving the cached body ({name}, {body / 1e6:.1f} MB) x{args.repeat}: {mb_s:.0f} MB/s")
        conn.close()


if __name__ == "__main__":
    main()
