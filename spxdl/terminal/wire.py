"""The terminal's wire spellings: paths, dates and times, request parameters, list bodies.

Every ``YYYYMMDD``, ISO and ``HH:MM:SS`` string spxdl writes to or reads from the terminal is made
here; callers pass and get ``datetime.date``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Mapping

from spxdl import datasets
from spxdl.datasets import Dataset
from spxdl.errors import BodyTruncated, ConfigError, SchemaMismatch
from spxdl.terminal.page import null_to_none
from spxdl.terminal.status import error_for_error_type
from spxdl.trading_calendar import DAY_MS, RTH_END_MS, RTH_START_MS

SIMULATOR_HEADER = "X-Spxdl-Simulator"  # its value: "spxdl-sim/<version>; profile=<profile>; seed=<seed>"
DEFAULT_URLS = {"v3": "http://127.0.0.1:25503", "v2": "http://127.0.0.1:25510"}
STATUS_PATHS = {"v3": "/v3/terminal/mdds/status", "v2": "/v2/system/mdds/status"}
LIST_PATHS = {
    "v2": {
        "expirations": "/v2/list/expirations",
        "strikes": "/v2/list/strikes",
        "dates": "/v2/list/dates/option/quote",
    },
    "v3": {
        "expirations": "/v3/option/list/expirations",
        "strikes": "/v3/option/list/strikes",
        "dates": "/v3/option/list/dates/quote",
    },
}
CALENDAR_PATHS = {"year": "/v3/calendar/year_holidays", "day": "/v3/calendar/on_date"}  # v3 only
V2_ALL_EXPIRATIONS, V3_ALL_EXPIRATIONS = "0", "*"
V3_RIGHTS = {"C": "call", "P": "put"}


def wire_date(day: date) -> str:
    """``YYYYMMDD`` for the wire."""
    return day.strftime("%Y%m%d")


def parse_wire_date(value: Any) -> date:
    """A date from ``20241011``, ``"20241011"`` or ``"2024-10-11"`` (a time part is ignored)."""
    text = str(value).strip().strip('"')
    if len(text) >= 10 and text[4] == "-":
        return date.fromisoformat(text[:10])
    return datetime.strptime(text, "%Y%m%d").date()


def v3_time(ms_of_day: int) -> str:
    """``HH:MM:SS`` (``HH:MM:SS.SSS`` when the milliseconds are not zero) for v3."""
    seconds, millis = divmod(ms_of_day, 1000)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{text}.{millis:03d}" if millis else text


def plain_number(value: float) -> str:
    """A decimal without exponent and without trailing zeros (0.0342 -> "0.0342", 5.0 -> "5")."""
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


@dataclass(frozen=True)
class HistoryQuery:
    """What one history request asks for, before it is spelled for an API version."""

    dataset: Dataset
    root: str
    expiration: date | None  # None: every expiration of the day (daily datasets), or none (an index)
    trade_date: date
    interval: str = "1m"
    start_ms: int = RTH_START_MS
    end_ms: int = RTH_END_MS
    rate: str | None = None
    rate_value: float | None = None  # a fraction: 0.0342 = 3.42 %
    annual_div: float | None = None
    strike: float | None = None  # v3 only: one strike in dollars (v2 bulk endpoints serve whole chains)
    right: str | None = None  # v3 only, with ``strike``: "C" or "P"

    def check_window(self) -> None:
        if not 0 <= self.start_ms < self.end_ms <= DAY_MS:
            raise ConfigError(
                f"bad time window {self.start_ms}..{self.end_ms} ms of day: need 0 <= start < end <= {DAY_MS}"
            )


def _expiration_text(query: HistoryQuery, every: str) -> str | None:
    """The expiration on the wire: its date, ``every`` for all of them, None for an index."""
    if query.dataset.is_index:
        return None
    return every if query.expiration is None else wire_date(query.expiration)


def v2_history_params(query: HistoryQuery) -> dict[str, str]:
    """Query parameters of a v2 history request (window only for interval datasets).

    Bulk endpoints take ``exp`` (``0``: every expiration of the day); the index endpoint has none.
    """
    params = {"root": query.root}
    expiration = _expiration_text(query, V2_ALL_EXPIRATIONS)
    if expiration is not None:
        params["exp"] = expiration
    params["start_date"] = params["end_date"] = wire_date(query.trade_date)
    if query.dataset.uses_interval:
        query.check_window()
        params["ivl"] = str(datasets.interval_ms(query.interval))
        # Always the explicit, documented-inclusive bounds: whether rth=true includes the 16:00 row
        # is not documented, and v3 (explicit bounds) does include it, so both APIs give equal tables.
        params.update(rth="false", start_time=str(query.start_ms), end_time=str(query.end_ms))
    params["use_csv"] = "true"
    if query.dataset.greeks_params:
        _add_greeks_params(params, query, rate=("rate", str.upper), rate_value=("rate_value", 1), annual_div="annual_div")
    return params


def v3_history_params(query: HistoryQuery) -> dict[str, str]:
    """Query parameters of a v3 history request; ``rate_value`` (a fraction) goes out in percent.

    The day is ``date``, as in the vendor's sample URLs, except where the path has no ``date``
    parameter (eod): there ``start_date`` and ``end_date``, both the trade date. ``expiration=*``
    asks every expiration of the day; an index has no expiration.
    """
    params = {"symbol": query.root}
    expiration = _expiration_text(query, V3_ALL_EXPIRATIONS)
    if expiration is not None:
        params["expiration"] = expiration
    if query.strike is not None and not query.dataset.is_index:
        params["strike"] = f"{query.strike:.3f}"
        if query.right is not None:
            params["right"] = V3_RIGHTS[query.right]
    if query.dataset.v3_date_range:
        params["start_date"] = params["end_date"] = wire_date(query.trade_date)
    else:
        params["date"] = wire_date(query.trade_date)
    if query.dataset.uses_interval:
        query.check_window()
        datasets.interval_ms(query.interval)
        params.update(interval=query.interval, start_time=v3_time(query.start_ms), end_time=v3_time(query.end_ms))
    params["format"] = "csv"
    if query.dataset.greeks_params:
        _add_greeks_params(
            params, query, rate=("rate_type", str.lower), rate_value=("rate_value", 100), annual_div="annual_dividend"
        )
    return params


def _add_greeks_params(
    params: dict[str, str],
    query: HistoryQuery,
    *,
    rate: tuple[str, Callable[[str], str]],
    rate_value: tuple[str, int],
    annual_div: str,
) -> None:
    """The greeks parameters that are set, under the API's names (and its unit for the rate)."""
    if query.rate is not None:
        params[rate[0]] = rate[1](query.rate)
    if query.rate_value is not None:
        params[rate_value[0]] = plain_number(query.rate_value * rate_value[1])
    if query.annual_div is not None:
        params[annual_div] = plain_number(query.annual_div)


def list_params(api: str, root: str, expiration: date | None = None) -> dict[str, str]:
    """Query parameters of a list request (expirations of a root, or strikes/dates of an expiration)."""
    if api == "v2":
        params = {"root": root, "exp": wire_date(expiration) if expiration else None, "use_csv": "true"}
    else:
        params = {"symbol": root, "expiration": wire_date(expiration) if expiration else None, "format": "csv"}
    return {key: value for key, value in params.items() if value is not None}


def calendar_params(*, year: int | None = None, day: date | None = None) -> dict[str, str]:
    """Query parameters of the v3 calendar: a year's holidays and early closes, or one day's schedule."""
    params = {"year": str(year)} if year is not None else {"date": wire_date(day)} if day is not None else {}
    return {**params, "format": "csv"}


@dataclass(frozen=True)
class CalendarDay:
    """One row of the terminal's calendar: its date (None in a one-day answer), type word, open and close."""

    day: date | None
    kind: str  # the terminal's own word, lower case (e.g. "full_close", "early_close", "open")
    open: str | None
    close: str | None


def parse_calendar_body(text: str, *, endpoint: str, params: Mapping[str, Any] | None = None) -> list[CalendarDay]:
    """The rows of a calendar answer (CSV with a header, or the v3 JSON list); empty fields are None."""
    rows = _table_rows(text, endpoint=endpoint, params=params)
    days = []
    for row in rows:
        if "type" not in row:
            raise SchemaMismatch(f"{endpoint}: no column type in the answer", columns=list(row))
        day = null_to_none(row.get("date"))
        days.append(CalendarDay(
            parse_wire_date(day) if day else None,
            str(row["type"]).strip().lower(),
            null_to_none(row.get("open")),
            null_to_none(row.get("close")),
        ))
    return days


def _table_rows(text: str, *, endpoint: str, params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every row of a small table answer as a dict: CSV with a header line, or ``{"response": [{...}]}``."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        doc = json.loads(text)
        rows = doc.get("response", []) if isinstance(doc, dict) else doc
        return [row for row in rows if isinstance(row, dict)]
    if stripped and not text.endswith("\n"):
        raise BodyTruncated(
            "the answer ended in the middle of a line", endpoint=endpoint, params=params, status=200, body=text
        )
    lines = [row for row in csv.reader(io.StringIO(text)) if row]
    if not lines:
        return []
    header = [cell.strip().lower() for cell in lines[0]]
    return [dict(zip(header, (cell.strip() for cell in row))) for row in lines[1:]]


def parse_list_body(
    text: str, columns: tuple[str, ...], *, endpoint: str, params: Mapping[str, Any] | None = None
) -> tuple[list[Any], str | None]:
    """Values of a list answer and its next page URL, from CSV or any of the JSON layouts seen.

    ``columns`` names the wanted column in order of preference. JSON: the v2 envelope
    ``{"header": ..., "response": [20241011, ...]}``, the v3 ``{"response": [{"date": ...}]}`` and
    the columnar ``{"date": [...]}``. CSV: LF or CRLF, quoted or bare, with or without a header.
    """
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _parse_json_list(json.loads(text), columns, endpoint=endpoint, params=params)
    if stripped and not text.endswith("\n"):
        raise BodyTruncated(
            "the list body ended in the middle of a line", endpoint=endpoint, params=params, status=200, body=text
        )
    return _parse_csv_list(text, columns, endpoint=endpoint), None


def _parse_json_list(
    doc: Any, columns: tuple[str, ...], *, endpoint: str, params: Mapping[str, Any] | None
) -> tuple[list[Any], str | None]:
    next_url = None
    if isinstance(doc, dict) and isinstance(doc.get("header"), dict):
        header = doc["header"]
        _raise_for_header_error(header, endpoint=endpoint, params=params)
        next_url = null_to_none(header.get("next_page"))
    if isinstance(doc, dict) and "response" in doc:
        rows = doc["response"]
    elif isinstance(doc, dict):
        rows = _columnar_column(doc, columns, endpoint=endpoint)
    else:
        rows = doc
    return [_pick_value(row, columns, endpoint=endpoint) for row in rows], next_url


def _raise_for_header_error(header: Mapping[str, Any], *, endpoint: str, params: Mapping[str, Any] | None) -> None:
    """An old terminal answered 200 with the error in ``header.error_type``: raise it like its status."""
    error_type = null_to_none(header.get("error_type"))
    if error_type is None:
        return
    message = null_to_none(header.get("error_msg")) or error_type
    raise error_for_error_type(error_type, endpoint=endpoint, params=params, body=message)


def _columnar_column(doc: Mapping[str, Any], columns: tuple[str, ...], *, endpoint: str) -> list[Any]:
    for name in columns:
        if isinstance(doc.get(name), list):
            return doc[name]
    raise SchemaMismatch(f"{endpoint}: no column {' or '.join(columns)} in the answer", columns=list(doc))


def _pick_value(row: Any, columns: tuple[str, ...], *, endpoint: str) -> Any:
    if isinstance(row, dict):
        for name in columns:
            if name in row:
                return row[name]
        raise SchemaMismatch(f"{endpoint}: no column {' or '.join(columns)} in the answer", columns=list(row))
    if isinstance(row, list) and row:
        return row[0]
    return row


def _parse_csv_list(text: str, columns: tuple[str, ...], *, endpoint: str) -> list[str]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    for name in columns:
        if name in header:
            index = header.index(name)
            return [row[index].strip() for row in rows[1:]]
    if len(header) == 1:
        has_header = not re.fullmatch(r"[\d.\-]+", header[0])
        return [row[0].strip() for row in rows[1 if has_header else 0 :]]
    raise SchemaMismatch(f"{endpoint}: no column {' or '.join(columns)} in the answer", columns=header)


def simulator_facts(identity: str | None) -> dict[str, str]:
    """The ``key=value`` parts of the simulator's identity (``profile``, ``seed``); empty for a real terminal."""
    facts: dict[str, str] = {}
    for part in (identity or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key:
            facts[key] = value
    return facts
