"""Loopback doubles of ThetaData's own services for the direct source's tests and benchmarks.

- ``NexusDouble``: the authentication endpoint the SDK posts its credentials to (plain HTTP on
  127.0.0.1, which the SDK accepts for ``nexus_url``): a session id and a subscription tier.
- ``MarketDataDouble``: a gRPC server of the vendor's market-data service
  (``BetaEndpoints.BetaThetaTerminal``) over TLS on 127.0.0.1, with the vendor's table encoding:
  each answer a stream of ``ResponseData`` messages, each a zstd-compressed ``DataTable`` (headers,
  then rows of typed cells: text, number, fixed-point price, New York timestamp). It answers from
  the simulator's market: the terminal flavour's v3 answer to the same request, re-encoded cell by
  cell, so that a day through the direct source can be compared with the terminal's.

The service and message definitions are the vendor's generated modules from its Apache-2.0
``thetadata`` package (which ``make install`` adds without its dependencies), loaded here without the
package's ``__init__`` (which imports pandas and polars for its client). Nothing of the vendor is copied.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import os
import sys
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # grpcio's TLS handshake notes would crowd the output

import grpc  # noqa: E402
import zstandard  # noqa: E402

from spxdl.simulator.model import MarketModel, SessionRules, get_profile  # noqa: E402
from spxdl.simulator.params import NO_ROWS  # noqa: E402
from spxdl.simulator.routes import Terminal  # noqa: E402
from spxdl.trading_calendar import TradingCalendar  # noqa: E402

NEW_YORK = ZoneInfo("America/New_York")
TIERS = {"free": 0, "value": 1, "standard": 2, "pro": 3}
# gRPC method -> the simulator's v3 path that answers it.
METHODS = {
    "GetOptionHistoryGreeksFirstOrder": "/v3/option/history/greeks/first_order",
    "GetOptionHistoryGreeksSecondOrder": "/v3/option/history/greeks/second_order",
    "GetOptionHistoryGreeksEod": "/v3/option/history/greeks/eod",
    "GetOptionHistoryQuote": "/v3/option/history/quote",
    "GetOptionHistoryOhlc": "/v3/option/history/ohlc",
    "GetOptionHistoryOpenInterest": "/v3/option/history/open_interest",
    "GetOptionHistoryEod": "/v3/option/history/eod",
    "GetIndexHistoryPrice": "/v3/index/history/price",
    "GetOptionListExpirations": "/v3/option/list/expirations",
    "GetOptionListStrikes": "/v3/option/list/strikes",
}
# Request fields the simulator reads, by their v3 query names; the rest (version, ...) is dropped.
FORWARDED = ("date", "start_date", "end_date", "interval", "start_time", "end_time", "rate_type", "rate_value",
             "annual_dividend")
TEXT_COLUMNS = {"symbol", "right", "expiration"}
TIME_COLUMNS = {"timestamp", "underlying_timestamp", "created", "last_trade"}
NUMBER_COLUMNS = {"bid_size", "bid_exchange", "bid_condition", "ask_size", "ask_exchange", "ask_condition", "volume",
                  "count", "open_interest"}
ERRORS = {
    "not_found": grpc.StatusCode.NOT_FOUND, "permission": grpc.StatusCode.PERMISSION_DENIED,
    "exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED, "unavailable": grpc.StatusCode.UNAVAILABLE,
    "invalid": grpc.StatusCode.INVALID_ARGUMENT, "internal": grpc.StatusCode.INTERNAL,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}


@lru_cache(maxsize=1)
def vendor_protos() -> tuple[ModuleType, ModuleType]:
    """The vendor's message module (``Endpoints``) and service module (``BetaEndpoints``, grpc)."""
    if "thetadata" in sys.modules:  # the vendor's client is loaded (a benchmark): use its own modules
        from thetadata._proto import endpoints_pb2
        from thetadata._proto.v3grpc import endpoints_pb2_grpc
        return endpoints_pb2, endpoints_pb2_grpc
    spec = importlib.util.find_spec("thetadata")
    if spec is None or spec.origin is None:
        raise ImportError("the vendor's thetadata package is missing: make install "
                          "(or pip install --no-deps thetadata==1.0.15)")
    root = Path(spec.origin).parent / "_proto"
    name = "vendor_thetadata_proto"
    if name not in sys.modules:
        package = importlib.util.spec_from_file_location(name, root / "__init__.py",
                                                         submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(package)
        sys.modules[name] = module
        package.loader.exec_module(module)
    messages = importlib.import_module(f"{name}.endpoints_pb2")
    services = importlib.import_module(f"{name}.v3grpc.endpoints_pb2_grpc")
    return messages, services


# ---------------------------------------------------------------------------------------------
# the authentication endpoint


class NexusDouble:
    """POST <any path> with credentials -> a session and the subscription of ``tier`` (or ``status``)."""

    def __init__(self, tier: str = "standard", status: int = 200) -> None:
        self.tier, self.status = tier, status
        self.logins: list[dict[str, Any]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                double.logins.append({"path": self.path, "body": json.loads(body or b"{}")})
                if double.status != 200:
                    self.send_response(double.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                level = TIERS[double.tier]
                answer = json.dumps({
                    "sessionId": str(uuid.uuid4()),
                    "user": {"email": "double@example.invalid", "stockSubscription": level,
                             "optionsSubscription": level, "indicesSubscription": level,
                             "interestRateSubscription": level},
                    "sessionCreated": "2026-01-01T00:00:00Z",
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/identity/terminal/auth_user"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# the table encoding


class Encoder:
    """CSV rows of the simulator -> the vendor's typed cells, ``DataTable`` chunks and ``ResponseData``."""

    def __init__(self, messages: ModuleType, chunk_rows: int) -> None:
        self.messages = messages
        self.chunk_rows = chunk_rows
        self.compressor = zstandard.ZstdCompressor(level=3)
        self._instants: dict[str, int] = {}
        self._cells: dict[tuple[str, str], Any] = {}

    def cell(self, column: str, text: str) -> Any:
        """The typed cell of ``text`` in ``column`` (made once per distinct pair: a chain repeats most)."""
        key = (column, text)
        found = self._cells.get(key)
        if found is None:
            found = self._cells[key] = self._make_cell(column, text)
        return found

    def _make_cell(self, column: str, text: str) -> Any:
        m = self.messages
        if column in TEXT_COLUMNS:
            return m.DataValue(text=text)
        if column in TIME_COLUMNS:
            return m.DataValue(timestamp=m.ZonedDateTime(epoch_ms=self.epoch_ms(text), zone=m.NEW_YORK))
        if column in NUMBER_COLUMNS:
            return m.DataValue(number=int(text))
        return m.DataValue(price=self.price(text))

    def price(self, text: str) -> Any:
        """A decimal text as the vendor's fixed point: value * 10^(type - 10), the decimals as printed."""
        whole, point, fraction = text.partition(".")
        if (whole + fraction).lstrip("-").isdigit():  # plain decimals, as the simulator prints them: no Decimal
            decimals, value = len(fraction), int(whole + fraction)
        else:
            exponent = Decimal(text).as_tuple().exponent
            decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            value = int(Decimal(text).scaleb(decimals))
        if not -2**31 <= value < 2**31:
            raise ValueError(f"{text} does not fit the vendor's 32-bit price")
        return self.messages.Price(value=value, type=10 - decimals)

    def epoch_ms(self, text: str) -> int:
        found = self._instants.get(text)
        if found is None:
            found = self._instants[text] = int(datetime.fromisoformat(text).replace(tzinfo=NEW_YORK).timestamp() * 1000)
        return found

    def chunks(self, body: bytes) -> Iterator[Any]:
        """``ResponseData`` messages of ``chunk_rows`` rows each, from a CSV body."""
        reader = csv.reader(io.StringIO(body.decode("ascii")))
        header = next(reader)
        self._cells = {}  # per body: a double serving all day keeps no answer's cells
        rows: list[Any] = []
        for row in reader:
            rows.append(self.messages.DataValueList(values=[self.cell(c, t) for c, t in zip(header, row)]))
            if len(rows) == self.chunk_rows:
                yield self.pack(header, rows)
                rows = []
        if rows:
            yield self.pack(header, rows)

    def pack(self, header: list[str], rows: list[Any]) -> Any:
        m = self.messages
        raw = m.DataTable(headers=header, data_table=rows).SerializeToString()
        return m.ResponseData(compressed_data=self.compressor.compress(raw),
                              compression_description=m.CompressionDescription(algo=m.ZSTD, level=3),
                              original_size=len(raw))


# ---------------------------------------------------------------------------------------------
# the market-data service


@dataclass
class Served:
    """What the double saw: each call's method and the query it asked the simulator."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


def query_of(method: str, params: Any) -> dict[str, str]:
    """A gRPC request's parameters as the simulator's v3 query."""
    present = {f.name: value for f, value in params.ListFields()}
    if method == "GetOptionListExpirations":
        return {"symbol": ",".join(params.symbol), "format": "csv"}
    query = {name: str(present[name]) for name in FORWARDED if name in present}
    if "contract_spec" in present:
        spec = params.contract_spec
        query.update(symbol=spec.symbol, expiration=spec.expiration)
        if spec.HasField("strike") and spec.strike not in ("", "*"):
            query["strike"] = spec.strike
        if spec.HasField("right") and spec.right.lower() not in ("", "both", "*"):
            query["right"] = spec.right.lower()
    elif "symbol" in present:
        symbol = params.symbol
        query["symbol"] = symbol if isinstance(symbol, str) else ",".join(symbol)
        if "expiration" in present:  # the strikes of one expiration
            query["expiration"] = params.expiration
    return {**query, "format": "csv"}


class MarketDataDouble:
    """The vendor's market-data service on 127.0.0.1 over TLS, answering from the simulator's market.

    ``denied``: methods answered PERMISSION_DENIED (a smaller subscription); ``mode``: an error every
    call gets (a key of ``ERRORS``), or None; ``chunk_delay``: seconds before each chunk (a slow
    upstream); ``encoded`` caches each answer's chunks (benchmarks).
    """

    def __init__(self, certificate: bytes, key: bytes, *, profile: str = "tiny", seed: int = 0,
                 chunk_rows: int = 1000, denied: frozenset[str] = frozenset(), mode: str | None = None,
                 workers: int = 8) -> None:
        self.messages, services = vendor_protos()
        model = MarketModel(get_profile(profile), seed, SessionRules(), TradingCalendar())
        self.terminal = Terminal(model, base_url=lambda: "")
        self.encoder_rows = chunk_rows
        self.denied, self.mode = denied, mode
        self.chunk_delay = 0.0
        self.mode_calls: int | None = None  # with ``mode``: only this many calls get the error, then answers
        self.served = Served()
        self.encoded: dict[tuple, list[Any]] | None = None
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        services.add_BetaThetaTerminalServicer_to_server(self._servicer(services), self.server)
        credentials = grpc.ssl_server_credentials([(key, certificate)])
        self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        self.server.start()

    def close(self) -> None:
        self.server.stop(0)

    def _servicer(self, services: ModuleType) -> Any:
        double = self

        class Servicer(services.BetaThetaTerminalServicer):
            pass

        for method in METHODS:
            setattr(Servicer, method, lambda _self, request, context, _m=method: double.answer(_m, request, context))
        return Servicer()

    def answer(self, method: str, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """One call: the simulator's answer to the same query, re-encoded; or the error asked for."""
        query = query_of(method, request.params)
        self.served.calls.append((method, query))
        if self.mode is not None and (self.mode_calls is None or self.mode_calls > 0):
            if self.mode_calls is not None:
                self.mode_calls -= 1
            context.abort(ERRORS[self.mode], f"the double says {self.mode}")
        if method in self.denied:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "Your subscription does not include this data.")
        key = (method, tuple(sorted(query.items())))
        if self.encoded is not None and key in self.encoded:
            yield from self.encoded[key]
            return
        reply = self.terminal.handle(METHODS[method], urlencode(query))
        if reply.status == 472 and reply.reason == NO_ROWS:
            return  # the stream ends without a chunk: no row at all
        if reply.status == 472:
            context.abort(grpc.StatusCode.NOT_FOUND, "No data for the specified timeframe & contract.")
        if reply.status != 200:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, reply.body.decode("utf-8", "replace"))
        chunks = Encoder(self.messages, self.encoder_rows).chunks(reply.body)
        if self.encoded is None:
            for chunk in chunks:
                time.sleep(self.chunk_delay)
                yield chunk
            return
        self.encoded[key] = list(chunks)
        yield from self.encoded[key]
