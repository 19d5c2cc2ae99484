"""The simulator's own table of the v3 query parameters, written from the vendor's v3 OpenAPI document.

Every v3 request is checked against it before it is answered: a missing required parameter, a
parameter the path does not list, a value outside an enum, or a date or time in the wrong form
gets 473 with a short text naming the parameter (the real terminal's answer to these is not
known: docs/simulator.md lists it among the guesses). The table is kept here, typed out, rather
than read from the client's datasets or the facts file: ``tests/test_simulator_contract.py``
compares it with ``tests/data/v3-openapi-facts.json``, so that the two cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

STRING, ARRAY, DATE, TIME, INT, FLOAT, BOOL = "string", "array", "date", "time", "int32", "float", "boolean"


@dataclass(frozen=True)
class Param:
    """One query parameter of a v3 path."""

    name: str
    required: bool = False
    kind: str = STRING
    values: tuple[str, ...] = ()  # the enum, when there is one
    wildcard: bool = False  # ``*`` is accepted (the vendor's sample URLs of the path use it)


FORMATS = ("csv", "json", "ndjson", "html")
INTERVALS = ("tick", "10ms", "100ms", "500ms", "1s", "5s", "10s", "15s", "30s", "1m", "5m", "10m", "15m",
             "30m", "1h")
RATE_TYPES = ("sofr", "treasury_m1", "treasury_m3", "treasury_m6", "treasury_y1", "treasury_y2",
              "treasury_y3", "treasury_y5", "treasury_y7", "treasury_y10", "treasury_y20", "treasury_y30")
RIGHTS = ("call", "put", "both")

FORMAT = Param("format", kind=STRING, values=FORMATS)
SYMBOL = Param("symbol", required=True)
EXPIRATION = Param("expiration", required=True, kind=DATE)
STRIKE = Param("strike")
RIGHT = Param("right", values=RIGHTS)
DAY = (Param("date", kind=DATE), Param("start_date", kind=DATE), Param("end_date", kind=DATE))
DAY_RANGE = (Param("start_date", required=True, kind=DATE), Param("end_date", required=True, kind=DATE))
WINDOW = (Param("start_time", kind=TIME), Param("end_time", kind=TIME))
INTERVAL = Param("interval", required=True, values=INTERVALS)
GREEKS = (Param("annual_dividend", kind=FLOAT), Param("rate_type", values=RATE_TYPES),
          Param("rate_value", kind=FLOAT), Param("version", values=("latest", "1")))
MAX_DTE = Param("max_dte", kind=INT)
STRIKE_RANGE = Param("strike_range", kind=INT)
CONTRACT = (SYMBOL, EXPIRATION, STRIKE, RIGHT)
# Paths whose vendor samples ask ``expiration=*``: every expiration of the day.
ANY_EXPIRATION = (SYMBOL, Param("expiration", required=True, kind=DATE, wildcard=True), STRIKE, RIGHT)

PARAMS: Mapping[str, tuple[Param, ...]] = {
    "/v3/option/list/expirations": (Param("symbol", required=True, kind=ARRAY), FORMAT),
    "/v3/option/list/strikes": (Param("symbol", required=True, kind=ARRAY), EXPIRATION, FORMAT),
    "/v3/option/list/dates/quote": (*CONTRACT, FORMAT),
    "/v3/option/history/greeks/first_order": (*CONTRACT, *DAY, *WINDOW, INTERVAL, *GREEKS, STRIKE_RANGE, FORMAT),
    "/v3/option/history/greeks/second_order": (*CONTRACT, *DAY, *WINDOW, INTERVAL, *GREEKS, STRIKE_RANGE, FORMAT),
    "/v3/option/history/quote": (*ANY_EXPIRATION, *DAY, *WINDOW, INTERVAL, MAX_DTE, STRIKE_RANGE, FORMAT),
    "/v3/option/history/ohlc": (*CONTRACT, *DAY, INTERVAL, *WINDOW, STRIKE_RANGE, FORMAT),
    "/v3/option/history/open_interest": (*ANY_EXPIRATION, *DAY, MAX_DTE, STRIKE_RANGE, FORMAT),
    "/v3/option/history/eod": (*DAY_RANGE, *ANY_EXPIRATION, MAX_DTE, STRIKE_RANGE, FORMAT),
    "/v3/option/history/greeks/eod": (*ANY_EXPIRATION, *DAY_RANGE, *GREEKS, Param("underlyer_use_nbbo", kind=BOOL),
                                      MAX_DTE, STRIKE_RANGE, FORMAT),
    "/v3/index/history/price": (Param("date", kind=DATE), SYMBOL, *WINDOW, INTERVAL, FORMAT,
                                Param("start_date", kind=DATE), Param("end_date", kind=DATE)),
    "/v3/calendar/year_holidays": (Param("year", required=True), FORMAT),
    "/v3/calendar/on_date": (Param("date", required=True, kind=DATE), FORMAT),
}
# Listed by the vendor, not served by the simulator: a request using one gets 473 saying so.
NOT_SERVED = frozenset({"max_dte", "strike_range", "version", "underlyer_use_nbbo"})
# Values a real terminal accepted beyond the enum: ``right=C`` (tests/data/RECORDED.md, v3 captures).
ALSO_ACCEPTED = {"right": ("c", "p")}

_DATE = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}(\.\d{1,3})?")
_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_BOOL = re.compile(r"true|false", re.IGNORECASE)


def problems(path: str, params: Mapping[str, list[str]]) -> list[str]:
    """What is wrong with the query of a v3 request to ``path``, one short text per parameter."""
    table = PARAMS.get(path)
    if table is None:
        return []
    by_name = {param.name: param for param in table}
    found = [f"unknown parameter '{name}' for {path}" for name in params if name not in by_name]
    for param in table:
        value = (params.get(param.name) or [None])[-1]
        if value is None or value == "":
            if param.required:
                found.append(f"missing required parameter '{param.name}'")
            continue
        problem = _value_problem(param, value)
        if problem:
            found.append(problem)
    return found


def _value_problem(param: Param, value: str) -> str | None:
    if param.wildcard and value == "*":
        return None
    if param.values and value.lower() not in (*param.values, *ALSO_ACCEPTED.get(param.name, ())):
        return f"{param.name}={value!r} is not one of {', '.join(param.values)}"
    patterns = {DATE: (_DATE, "YYYYMMDD or YYYY-MM-DD"), TIME: (_TIME, "HH:MM:SS[.SSS]"),
                INT: (_INT, "an integer"), FLOAT: (_FLOAT, "a number"), BOOL: (_BOOL, "true or false")}
    if param.kind in patterns:
        pattern, form = patterns[param.kind]
        if not pattern.fullmatch(value.strip()):
            return f"{param.name}={value!r} is not {form}"
    return None
