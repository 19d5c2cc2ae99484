"""The simulated terminal's endpoints, independent of HTTP: (path, query string) -> Reply.

Parameters are checked the way docs/wire.md describes (v2: root/exp/ivl/use_csv, v3:
symbol/expiration/interval/format); rendered bodies are cached in a byte-bounded LRU, and v2
answers above ``page_rows`` rows are split into pages served from a bounded page store.
"""

from __future__ import annotations

import time
from datetime import date
from functools import partial
from typing import Callable
from urllib.parse import parse_qs

from spxdl.simulator import contract, holidays, indexes, wire
from spxdl.simulator.columns import (
    BY_V2_PATH,
    BY_V3_PATH,
    CALENDAR_DAY_PATH,
    CALENDAR_YEAR_PATH,
    DAILY_DATASETS,
    INDEX_V2_PATH,
    INDEX_V3_PATH,
    DatasetColumns,
)
from spxdl.simulator.daily import DailyRows
from spxdl.simulator.flavors import TerminalFlavor
from spxdl.simulator.listing import ROOTS, Expiration, trade_dates
from spxdl.simulator.model import MarketModel
from spxdl.simulator.params import (
    NO_ROWS,
    Problem,
    Reply,
    days_between,
    param,
    parse_bool,
    parse_date,
    parse_int,
    problem_reply,
    required_param,
    rows_key,
)
from spxdl.simulator.queries import DAY_END_MS, OPEN_MS, V3_INTERVALS, QueryParser
from spxdl.simulator.rows import CLOSE_MS, Block, Query, RowGenerator
from spxdl.simulator.store import BodyCache, PageStore, StoredPage

# Guess: Jetty's default output buffer (32 KiB); larger v3 bodies go out chunked.
CHUNK_THRESHOLD = 32 * 1024
# v2 names a v3 path answers 410 for; only "exp -> expiration" was recorded, the rest is a guess.
V2_ONLY_PARAMS = {"root": "symbol", "exp": "expiration", "ivl": "interval", "use_csv": "format",
                  "rate": "rate_type", "annual_div": "annual_dividend"}
DEPRECATED_TEXT = ("We have upgraded to API v3. Please use API v3 query parameters instead. \n"
                   "Deprecated query parameters:\n{lines}\n"
                   "Consult API v3 documentation for more information: https://docs.thetadata.us/")
NO_DATA_TEXT = "No data for the specified timeframe and chain. Debug code 1"
CSV_TYPE, JSON_TYPE = "text/csv", "application/json"


# -- the terminal ----------------------------------------------------------------------------

class Terminal:
    """Answers the v2 and v3 paths of a ThetaData Terminal from a MarketModel."""

    def __init__(self, model: MarketModel, *, base_url: Callable[[], str], page_rows: int | None = None,
                 apis: tuple[str, ...] = ("v2", "v3"), flavor: TerminalFlavor = TerminalFlavor()) -> None:
        self.model = model
        self.flavor = flavor
        self.rows = RowGenerator(model)
        self.daily = DailyRows(model)
        self.queries = QueryParser(model)
        self.base_url = base_url
        self.page_rows = page_rows
        self.apis = apis
        self.bodies = BodyCache(model.profile.body_cache_bytes)
        self.pages = PageStore()
        self.routes: dict[str, Callable[[dict], Reply]] = {}
        if "v2" in apis:
            self.routes.update({
                "/v2/system/mdds/status": self._status, "/v2/list/roots/option": self._v2_roots,
                "/v2/list/expirations": self._v2_expirations, "/v2/list/strikes": self._v2_strikes,
                "/v2/list/dates/option/quote": self._v2_dates, INDEX_V2_PATH: self._v2_index,
            })
            self.routes.update({p: partial(self._v2_history, ds) for p, ds in BY_V2_PATH.items()})
        if "v3" in apis:
            self.routes.update({
                "/v3/terminal/mdds/status": self._status,
                "/v3/option/list/expirations": self._v3_expirations,
                "/v3/option/list/strikes": self._v3_strikes,
                "/v3/option/list/dates/quote": self._v3_dates, INDEX_V3_PATH: self._v3_index,
                CALENDAR_YEAR_PATH: self._calendar_year, CALENDAR_DAY_PATH: self._calendar_day,
            })
            self.routes.update({p: partial(self._v3_history, ds) for p, ds in BY_V3_PATH.items()})

    def handle(self, path: str, query_string: str) -> Reply:
        """Answer one GET."""
        params = parse_qs(query_string, keep_blank_values=True)
        try:
            if path.startswith("/v2/page/") and "v2" in self.apis:
                return self._v2_page(path[len("/v2/page/"):])
            route = self.routes.get(path)
            if route is None:
                raise Problem(404, f"No implementation for {path}")
            if path.startswith("/v3/"):
                self._reject_v2_params(params)
                self._check_contract(path, params)
            reply = route(params)
        except Problem as p:
            return problem_reply(p)
        if reply.status == 200 and reply.content_type == CSV_TYPE and path not in BY_V3_PATH:
            reply.body = self.flavor.csv_body(reply.body)  # history bodies are printed so once, when rendered
        return reply

    @staticmethod
    def _status(params: dict) -> Reply:
        return Reply(200, b"CONNECTED")

    @staticmethod
    def _check_contract(path: str, params: dict) -> None:
        """473 naming the parameter when a v3 query breaks the vendor's contract (contract.py)."""
        found = contract.problems(path, params)
        if found:
            raise Problem(473, "Invalid parameters: " + "; ".join(found))
        unserved = sorted(contract.NOT_SERVED & set(params))
        if unserved:
            raise Problem(473, f"Invalid parameters: {', '.join(unserved)} is not served by the simulator")

    @staticmethod
    def _reject_v2_params(params: dict) -> None:
        old = [name for name in V2_ONLY_PARAMS if name in params]
        if old:
            lines = "\n".join(f"\t{n} -> {V2_ONLY_PARAMS[n]}" for n in old)
            raise Problem(410, DEPRECATED_TEXT.format(lines=lines))

    # -- lists --------------------------------------------------------------------------------

    def _expirations_of(self, root: str) -> list[Expiration]:
        exps = list(self.model.expirations(root))
        if not exps:
            raise Problem(472, NO_DATA_TEXT)
        return exps

    def _expiration(self, root: str, exp: date) -> Expiration:
        e = self.model.expiration(root, exp)
        if e is None:
            raise Problem(472, NO_DATA_TEXT)
        return e

    @staticmethod
    def _v2_format(params: dict) -> str:
        return "csv" if parse_bool(param(params, "use_csv", "false"), "use_csv") else "json"

    @staticmethod
    def _v3_format(params: dict) -> str:
        fmt = param(params, "format", "csv")
        if fmt not in ("csv", "json"):
            raise Problem(473, f"Invalid parameters: format={fmt!r}; the simulator serves csv and json")
        return fmt

    @staticmethod
    def _list_reply(body: bytes, fmt: str, api: str) -> Reply:
        reply = Reply(200, body, CSV_TYPE if fmt == "csv" else JSON_TYPE)
        if api == "v2":
            reply.headers["Next-Page"] = "null"
        else:
            reply.chunked = len(body) > CHUNK_THRESHOLD
        return reply

    def _v2_roots(self, params: dict) -> Reply:
        fmt = self._v2_format(params)
        return self._list_reply(wire.roots_body(fmt, ROOTS), fmt, "v2")

    def _v2_expirations(self, params: dict) -> Reply:
        fmt, root = self._v2_format(params), required_param(params, "root")
        exps = [e.exp for e in self._expirations_of(root)]
        return self._list_reply(wire.expirations_body("v2", fmt, root, exps), fmt, "v2")

    def _v2_strikes(self, params: dict) -> Reply:
        fmt, root = self._v2_format(params), required_param(params, "root")
        e = self._expiration(root, parse_date(required_param(params, "exp"), "exp"))
        return self._list_reply(wire.strikes_body("v2", fmt, root, self.model.strikes(e)), fmt, "v2")

    def _v2_dates(self, params: dict) -> Reply:
        fmt, root = self._v2_format(params), required_param(params, "root")
        e = self._expiration(root, parse_date(required_param(params, "exp"), "exp"))
        return self._list_reply(wire.dates_body("v2", fmt, trade_dates(e)), fmt, "v2")

    def _v3_expirations(self, params: dict) -> Reply:
        fmt = self._v3_format(params)
        symbols = required_param(params, "symbol").split(",")
        pieces = [(s, [e.exp for e in self._expirations_of(s)]) for s in symbols]
        bodies = [wire.expirations_body("v3", fmt, s, exps) for s, exps in pieces]
        body = bodies[0] if len(bodies) == 1 else self._merge_v3_lists(fmt, bodies)
        return self._list_reply(body, fmt, "v3")

    @staticmethod
    def _merge_v3_lists(fmt: str, bodies: list[bytes]) -> bytes:
        if fmt == "csv":
            return bodies[0] + b"".join(b.split(b"\r\n", 1)[1] for b in bodies[1:])
        inner = [b[len(b'{\n\t"response": [\n'):-len(b"\n\t]\n}\n\n")] for b in bodies]
        return b'{\n\t"response": [\n' + b",\n".join(inner) + b"\n\t]\n}\n\n"

    def _v3_strikes(self, params: dict) -> Reply:
        fmt, root = self._v3_format(params), required_param(params, "symbol")
        e = self._expiration(root, parse_date(required_param(params, "expiration"), "expiration"))
        return self._list_reply(wire.strikes_body("v3", fmt, root, self.model.strikes(e)), fmt, "v3")

    def _v3_dates(self, params: dict) -> Reply:
        fmt, root = self._v3_format(params), required_param(params, "symbol")
        e = self._expiration(root, parse_date(required_param(params, "expiration"), "expiration"))
        return self._list_reply(wire.dates_body("v3", fmt, trade_dates(e)), fmt, "v3")

    # -- history ------------------------------------------------------------------------------

    def _generator(self, ds: DatasetColumns) -> RowGenerator | DailyRows:
        return self.daily if ds.name in DAILY_DATASETS else self.rows

    def _check_size(self, queries: list[Query]) -> int:
        n = sum(self._generator(q.dataset).count_rows(q) for q in queries)
        if n == 0:
            raise Problem(472, NO_DATA_TEXT, reason=NO_ROWS)
        if n > self.model.profile.max_rows:
            raise Problem(570, f"The request is too large ({n} rows); split it or use a coarser interval")
        return n

    def _blocks(self, queries: list[Query]) -> list[Block]:
        return [block for q in queries for block in self._generator(q.dataset).blocks(q)]

    @staticmethod
    def _cache_key(queries: list[Query], fmt: str) -> tuple:
        return tuple(q.cache_key() for q in queries), fmt

    def _v2_history(self, ds: DatasetColumns, params: dict) -> Reply:
        fmt = self._v2_format(params)
        queries, key = self.queries.v2(ds, params)
        self._check_size(queries)
        pages, rows = self.bodies.get_or_render(self._cache_key(queries, fmt), lambda: self._render_v2(queries, fmt))
        ids = self.pages.allocate(len(pages) - 1)
        urls = [f"{self.base_url()}/v2/page/{i}" for i in ids] + ["null"]
        content_type = CSV_TYPE if fmt == "csv" else JSON_TYPE
        latency = 1 + sum(rows) // 10_000
        bodies = [b if fmt == "csv" else wire.v2_json_head(ds.v2_format, url, latency) + b
                  for b, url in zip(pages, urls)]
        now = time.monotonic()
        for page_id, body, n, url in zip(ids, bodies[1:], rows[1:], urls[1:]):
            self.pages.put(page_id, StoredPage(body, content_type, url, n, key, now))
        return Reply(200, bodies[0], content_type, {"Next-Page": urls[0]}, rows[0], key)

    def _render_v2(self, queries: list[Query], fmt: str) -> tuple[list[bytes], list[int]]:
        ds = queries[0].dataset
        pages = wire.paginate(self._blocks(queries), self.page_rows)
        if fmt == "csv":
            bodies = [wire.v2_csv(ds, p) for p in pages]
        else:
            bodies = [wire.v2_json_tail(wire.v2_json_items(ds, p)) for p in pages]
        return bodies, [sum(len(b.rows) for b in p) for p in pages]

    def _v2_page(self, page_id: str) -> Reply:
        page = self.pages.get(int(page_id)) if page_id.isdigit() else None
        if page is None:
            raise Problem(477, f"No page found for id {page_id}")
        return Reply(200, page.body, page.content_type, {"Next-Page": page.next_url}, page.rows, page.key)

    def _v3_history(self, ds: DatasetColumns, params: dict) -> Reply:
        fmt = self._v3_format(params)
        queries, key = self.queries.v3(ds, params)
        rows = self._check_size(queries)
        render = (lambda d, b: self.flavor.csv_body(wire.v3_csv(d, b))) if fmt == "csv" else wire.v3_json
        (body,), _ = self.bodies.get_or_render(
            self._cache_key(queries, fmt), lambda: ([render(ds, self._blocks(queries))], [rows]))
        content_type = CSV_TYPE if fmt == "csv" else JSON_TYPE
        return Reply(200, body, content_type, {}, rows, key, chunked=len(body) > CHUNK_THRESHOLD)

    # -- the index and the calendar --------------------------------------------------------------

    def _index_reply(self, api: str, params: dict, symbol: str, days: list[date], ivl: int, window: tuple[int, int],
                     fmt: str) -> Reply:
        rows = indexes.index_rows(self.model, symbol.upper(), days, ivl, *window, api)
        if len(rows) > self.model.profile.max_rows:
            raise Problem(570, f"The request is too large ({len(rows)} rows); split it or use a coarser interval")
        body = indexes.v2_body(rows, fmt) if api == "v2" else indexes.v3_body(rows, fmt)
        key = rows_key(api, "index_price", symbol.upper(), "-", days[0], days[-1])
        reply = Reply(200, body, CSV_TYPE if fmt == "csv" else JSON_TYPE, {}, len(rows), key)
        if api == "v2":
            reply.headers["Next-Page"] = "null"
        else:
            reply.chunked = len(body) > CHUNK_THRESHOLD
        return reply

    def _v2_index(self, params: dict) -> Reply:
        fmt, symbol = self._v2_format(params), required_param(params, "root")
        first = parse_date(required_param(params, "start_date"), "start_date")
        last = parse_date(required_param(params, "end_date"), "end_date")
        ivl = parse_int(param(params, "ivl", "0"), "ivl")
        rth = parse_bool(param(params, "rth", "true"), "rth") and ivl > 0
        start, end = param(params, "start_time"), param(params, "end_time")
        window = (parse_int(start, "start_time") if start else (OPEN_MS if rth else 0),
                  parse_int(end, "end_time") if end else (CLOSE_MS if rth else DAY_END_MS))
        return self._index_reply("v2", params, symbol, self._index_days(first, last), ivl, window, fmt)

    def _v3_index(self, params: dict) -> Reply:
        fmt, symbol = self._v3_format(params), required_param(params, "symbol")
        first, last = QueryParser.v3_days(params)
        interval_name = param(params, "interval", "1s")
        if interval_name not in V3_INTERVALS:
            raise Problem(473, f"Invalid parameters: interval={interval_name!r}")
        ivl = V3_INTERVALS[interval_name]
        if ivl < 60_000 and first != last:
            raise Problem(473, "Invalid parameters: intervals under 1m are served one day at a time")
        days = self._index_days(first, last)
        return self._index_reply("v3", params, symbol, days, ivl, QueryParser.v3_window(params), fmt)

    @staticmethod
    def _index_days(first: date, last: date) -> list[date]:
        days = days_between(first, last)
        if not days:
            raise Problem(472, NO_DATA_TEXT)
        return days

    def _calendar_year(self, params: dict) -> Reply:
        fmt = self._v3_format(params)
        body = holidays.year_body(self.model.calendar, required_param(params, "year"), fmt)
        return Reply(200, body, CSV_TYPE if fmt == "csv" else JSON_TYPE)

    def _calendar_day(self, params: dict) -> Reply:
        fmt = self._v3_format(params)
        day = parse_date(required_param(params, "date"), "date")
        return Reply(200, holidays.on_date_body(self.model.calendar, day, fmt), CSV_TYPE if fmt == "csv" else JSON_TYPE)
