"""Rows/s and a worker's peak memory through each source, and the vendor package's conversion of the same answer.

Sources, each serving from a process of its own (a warm-up run fills its caches first):

- ``terminal``: the simulator as the ThetaData Terminal (v3: chunked CSV as it is built);
- ``thetadatadx``: the simulator as thetadatadx-server (whole answers with Content-Length, sent
  after an assembly delay of a second per million rows, the flavour's own);
- ``direct``: the real thetadatadx SDK (a copy patched at run time to trust a loopback certificate,
  tests/sdk_patch.py) against the gRPC double of ThetaData's market-data service
  (tests/market_double.py), which answers the simulator's rows in the vendor's table encoding.

For each, a measuring process runs the engine over one day (SPXW 2024-03-14, DTE 0..1, realistic
profile: about 256,000 greeks rows; one worker, two threads); the worker's peak RSS is the largest
``ru_maxrss`` of that process's children. Then, on one chain as the double encodes it (SPXW
2024-03-15 on 2024-03-14, about 128,000 rows in 10,000-row zstd chunks), each in a fresh process with
its peak RSS reset first: the vendor ``thetadata`` package's own conversion
(``ThetaClient._convert_response_stream``, to polars and to pandas: ``vendor_convert.py``, run with
the Python of ``.venv-vendor``, which ``make bench`` creates, since the vendor's client brings pandas,
polars and NumPy that ``.venv`` does not hold), the SDK's decoding to Arrow, and spxdl's whole
direct path (the SDK's chunks through the converter into Parquet).

    .venv/bin/python bench/sources.py [--sources terminal thetadatadx direct] [--no-vendor] [--repeat 1] [--terminal-url URL]

Needs Python 3.12+ with the direct and direct-test extras for ``direct`` and the conversion figures
(make install adds them), and ``.venv-vendor`` for the vendor's two; without them those lines say so.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from sim_process import start_simulator  # noqa: E402
from vendor_convert import peak_rss, reset_peak  # noqa: E402
from worker_memory import worker_peak_mb  # noqa: E402

DAY, EXPIRATION = date(2024, 3, 14), date(2024, 3, 15)
CHUNK_ROWS = 10_000
VENDOR_PYTHON = REPO / ".venv-vendor" / "bin" / "python"  # make bench creates it


# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# the direct source's doubles, in a process of their own


def serve_double(certificate: str, key: str) -> None:
    """Nexus and market-data doubles of the realistic market; prints their addresses, serves until killed."""
    from market_double import MarketDataDouble, NexusDouble

    nexus = NexusDouble()
    data = MarketDataDouble(Path(certificate).read_bytes(), Path(key).read_bytes(), profile="realistic",
                            chunk_rows=CHUNK_ROWS)
    data.encoded = {}  # the warm-up run encodes each answer once; the measured runs are served from here
    print(json.dumps({"port": data.port, "nexus": nexus.url}), flush=True)
    while True:
        time.sleep(3600)


def start_direct(workdir: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """The patched SDK and the doubles' process; the environment that points a run at them."""
    from sdk_patch import patch_sdk

    patched = patch_sdk(workdir / "sdk")
    (workdir / "cert.pem").write_bytes(patched.certificate)
    (workdir / "key.pem").write_bytes(patched.key)
    process = subprocess.Popen([sys.executable, __file__, "--serve-double", str(workdir / "cert.pem"),
                                str(workdir / "key.pem")], stdout=subprocess.PIPE, text=True)
    where = json.loads(process.stdout.readline())
    env = {"THETADATA_MARKET_DATA_HOST": "127.0.0.1", "THETADATA_MARKET_DATA_PORT": str(where["port"]),
           "THETADATA_NEXUS_URL": where["nexus"], "THETADATA_API_KEY": "td1_bench",
           "PYTHONPATH": os.pathsep.join([str(patched.path), str(REPO)])}
    return process, env


# ---------------------------------------------------------------------------------------------
# one engine run in a measuring process


def measure_inside(source: str, url: str, data_dir: Path) -> dict[str, float]:
    """Run the engine over the day (this process is the parent); rows, seconds and the worker's peak."""
    from spxdl import engine
    from spxdl.config import Settings

    settings = Settings(terminal_url=url or None, terminal_api="v3", data_dir=data_dir, workers=1, threads=2,
                        min_dte=0, max_dte=1, source="direct" if source == "direct" else "terminal")
    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    summary = engine.run(engine.plan(settings, DAY, DAY), settings,
                         on_event=lambda event: marks.append((time.perf_counter(), event.kind)))
    if not summary.complete:
        raise SystemExit(f"{source}: the run did not complete: {summary.by_state()} {summary.stopped_by}")
    busy = max(t for t, kind in marks if kind == "task_done") - min(t for t, kind in marks if kind == "task_started")
    totals = summary.totals()
    return {"rows": totals["rows"], "seconds": time.perf_counter() - started, "busy": busy,
            "worker_peak_mb": worker_peak_mb()}


def run_once(source: str, url: str, env: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"spxdl-bench-{source}-") as data_dir:
        inner = subprocess.run([sys.executable, __file__, "--inside", source, url, data_dir], capture_output=True,
                               text=True, env={**os.environ, **env})
        if inner.returncode:
            raise SystemExit(f"{source}: the measuring process failed:\n{inner.stderr[-2000:]}")
        return json.loads(inner.stdout.strip().splitlines()[-1])


def measure_source(source: str, repeat: int, workdir: Path, warm_url: str | None = None) -> list[dict[str, float]]:
    """``repeat`` runs through ``source`` after a warm-up run; ``warm_url``: a realistic terminal
    simulator that has the day's bodies already (make bench's), used for ``terminal`` as it is."""
    env: dict[str, str] = {}
    server = None
    if source == "direct":
        server, env = start_direct(workdir)
        url = ""
    elif source == "terminal" and warm_url:
        url = warm_url
    else:
        server, url = start_simulator("realistic", "--flavor", source)
    try:
        if server is not None:
            run_once(source, url, env)  # warm-up: fills the server's caches
        return [run_once(source, url, env) for _ in range(repeat)]
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


# ---------------------------------------------------------------------------------------------
# one chain's conversion, each way in a fresh process


def chain_chunks(path: Path) -> tuple[int, int]:
    """Encode the chain as the double does; write its serialized ResponseData messages to ``path``."""
    from urllib.parse import urlencode

    from market_double import Encoder, vendor_protos
    from spxdl.simulator.model import MarketModel, SessionRules, get_profile
    from spxdl.simulator.routes import Terminal
    from spxdl.trading_calendar import TradingCalendar

    terminal = Terminal(MarketModel(get_profile("realistic"), 0, SessionRules(), TradingCalendar()),
                        base_url=lambda: "")
    query = {"symbol": "SPXW", "expiration": EXPIRATION.strftime("%Y%m%d"), "date": DAY.strftime("%Y%m%d"),
             "interval": "1m", "format": "csv"}
    body = terminal.handle("/v3/option/history/greeks/first_order", urlencode(query)).body
    messages, _ = vendor_protos()
    chunks = [chunk.SerializeToString() for chunk in Encoder(messages, CHUNK_ROWS).chunks(body)]
    path.write_bytes(json.dumps([chunk.hex() for chunk in chunks]).encode())
    return body.count(b"\n") - 1, len(chunks)


def convert_inside(way: str, path: Path) -> dict[str, float]:
    """One of spxdl's ways of converting the chain, timed, with this process's peak RSS growth."""
    import thetadatadx

    from spxdl import convert
    from spxdl.datasets import GREEKS

    wire = [bytes.fromhex(text) for text in json.loads(path.read_bytes())]
    base = reset_peak()
    started = time.perf_counter()
    if way == "sdk-arrow":
        rows = thetadatadx.decode_response_bytes("option_history_greeks_first_order", wire).to_arrow().num_rows
    else:  # the direct source's path: each chunk decoded, then spxdl's converter into Parquet
        tables = (thetadatadx.decode_response_bytes("option_history_greeks_first_order", [data]).to_arrow()
                  for data in wire)
        spec = convert.ConvertSpec(GREEKS, "direct", "SPXW", EXPIRATION, DAY, 34_200_000, 57_600_000, 60_000)
        rows = convert.write_parquet(tables, io.BytesIO(), spec).rows
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_growth_mb": (peak_rss() - base) / 2**20}


def way_command(way: str, path: Path) -> list[str] | str:
    """The fresh process that measures ``way``, or why it cannot run."""
    if way.startswith("vendor"):
        if not VENDOR_PYTHON.exists():
            return f"not measured: no {VENDOR_PYTHON.parent.parent.name} (make bench creates it)"
        return [str(VENDOR_PYTHON), str(HERE / "vendor_convert.py"), way.split("-")[1], str(path)]
    return [sys.executable, __file__, "--convert", way, str(path)]


WAYS = (("vendor-polars", "vendor thetadata ThetaClient._convert_response_stream -> polars"),
        ("vendor-pandas", "vendor thetadata ThetaClient._convert_response_stream -> pandas"),
        ("sdk-arrow", "thetadatadx decode_response_bytes + to_arrow"),
        ("direct-parquet", "spxdl direct path: SDK chunks -> checks -> Parquet"))


def measure_conversions(workdir: Path) -> None:
    path = workdir / "chain.json"
    rows, chunks = chain_chunks(path)
    print(f"one chain (SPXW {EXPIRATION} on {DAY}, greeks): {rows:,} rows in {chunks} zstd chunks of the vendor's "
          "encoding; each way in a fresh process:")
    for way, title in WAYS:
        command = way_command(way, path)
        if isinstance(command, str):
            print(f"  {title}: {command}")
            continue
        inner = subprocess.run(command, capture_output=True, text=True)
        if inner.returncode:
            print(f"  {title}: failed: {inner.stderr.strip().splitlines()[-1] if inner.stderr else inner.returncode}")
            continue
        found = json.loads(inner.stdout.strip().splitlines()[-1])
        print(f"  {title:<62} {found['seconds']:6.2f} s  {found['rows'] / found['seconds']:>11,.0f} rows/s  "
              f"peak +{found['peak_growth_mb']:.0f} MB")


# ---------------------------------------------------------------------------------------------


def direct_missing() -> str | None:
    import importlib.util

    if sys.version_info < (3, 12):
        return f"Python {sys.version_info.major}.{sys.version_info.minor}: the SDK needs 3.12+"
    missing = [name for name in ("thetadatadx", "thetadata", "grpc", "cryptography") if importlib.util.find_spec(name) is None]
    return f"{', '.join(missing)} not installed (make install on Python 3.12+)" if missing else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["terminal", "thetadatadx", "direct"],
                        choices=["terminal", "thetadatadx", "direct"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-vendor", action="store_true", help="skip the conversion figures")
    parser.add_argument("--terminal-url", help="a warm realistic simulator (terminal flavour) with the day rendered")
    parser.add_argument("--inside", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--serve-double", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--convert", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(measure_inside(args.inside[0], args.inside[1], Path(args.inside[2]))))
        return
    if args.serve_double:
        serve_double(*args.serve_double)
        return
    if args.convert:
        print(json.dumps(convert_inside(args.convert[0], Path(args.convert[1]))))
        return
    missing = direct_missing()
    with tempfile.TemporaryDirectory(prefix="spxdl-bench-sources-") as temp:
        workdir = Path(temp)
        print(f"one day (SPXW {DAY}, DTE 0..1, realistic), one worker and two threads, after a warm-up run:")
        for source in args.sources:
            if source == "direct" and missing:
                print(f"  {source:<12} not measured: {missing}")
                continue
            for found in measure_source(source, args.repeat, workdir, args.terminal_url):
                print(f"  {source:<12} {found['rows']:>9,.0f} rows in {found['seconds']:6.2f} s: "
                      f"{found['rows'] / found['busy']:>9,.0f} rows/s busy; worker peak {found['worker_peak_mb']:.0f} MB")
        if args.no_vendor:
            return
        if missing:
            print(f"conversions not measured: {missing}")
            return
        measure_conversions(workdir)


if __name__ == "__main__":
    main()
