"""The ThetaData Terminal client: one pooled session, retries, a circuit breaker, pagination.

A ``TerminalClient`` talks to the terminal's local HTTP API, v2 (port 25510) or v3 (port 25503),
and turns every answer into either data or one exception of ``spxdl.errors``. History answers
are streamed: ``history()`` yields ``Page`` objects, file-like views of the socket that the CSV
reader pulls from directly, so no body is ever held in memory as a whole.

Build one client per worker process (after the fork, in the pool initializer): a
``requests.Session`` holds sockets, and a session inherited across ``fork`` shares them with the
parent. The client refuses to be used from another process than the one that built it. Inside
one process the client is shared by the process's threads.

``YYYYMMDD`` and ISO date strings exist only in this module; callers pass ``datetime.date``.
"""

from __future__ import annotations

import csv
import email.utils
import http.client
import io
import json
import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from spxdl import datasets
from spxdl.datasets import Dataset
from spxdl.errors import (
    BadRequest,
    BodyTruncated,
    ConfigError,
    InvalidSession,
    NoData,
    PageExpired,
    PermissionDenied,
    RequestTooLarge,
    SchemaMismatch,
    TerminalError,
    TerminalUnavailable,
    Throttled,
)

log = logging.getLogger(__name__)

SIMULATOR_HEADER = "X-Spxdl-Simulator"
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
RTH_START_MS = 34_200_000  # 09:30 New York
RTH_END_MS = 57_600_000  # 16:00 New York
DAY_MS = 86_400_000
ERROR_BODY_BYTES = 4096  # read this much of an error body for the message, never more
BODY_IN_ERROR = 200

# Names an old terminal put in a 200 answer's header.error_type, mapped to their status code so
# that the one status mapping below also decides these.
ERROR_TYPE_STATUS = {
    "NO_IMPL": 404,
    "OS_LIMIT": 429,
    "GENERAL": 470,
    "PERMISSION": 471,
    "NO_DATA": 472,
    "INVALID_PARAMS": 473,
    "DISCONNECTED": 474,
    "TERMINAL_PARSE": 475,
    "WRONG_IP": 476,
    "NO_PAGE_FOUND": 477,
    "LARGE_REQUEST": 570,
    "SERVER_STARTING": 571,
    "UNCAUGHT_ERROR": 572,
    "INVALID_SESSION_ID": 478,
}

# Errors urllib3 or the socket raise while a body is being read: the body is cut.
BODY_READ_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


# ---------------------------------------------------------------------------------------------
# status -> exception


def error_for_status(
    status: int,
    *,
    endpoint: str,
    params: Mapping[str, Any] | None = None,
    body: str = "",
    retry_after: float | None = None,
) -> TerminalError:
    """The exception for an HTTP status of the terminal (the only place statuses are decided)."""
    info: dict[str, Any] = {"endpoint": endpoint, "params": params, "status": status, "body": body}
    if status == 472:
        return NoData(f"no data for {_describe(endpoint, params)}", **info)
    if status == 429:
        return Throttled("the terminal is throttling requests (429 OS_LIMIT)", retry_after=retry_after, **info)
    if status in (471, 403):
        name = "471 PERMISSION" if status == 471 else "403 Forbidden"
        return PermissionDenied(
            f"the ThetaData subscription does not include {endpoint} ({name}): "
            "check the account's tier for this data",
            **info,
        )
    if status == 478:
        return InvalidSession(
            "another ThetaData Terminal is logged in with the same account (478 INVALID_SESSION_ID): "
            "stop the other terminal so that only one runs, then run spxdl again",
            **info,
        )
    if status == 570:
        return RequestTooLarge(
            "the terminal refused the request as too large (570 LARGE_REQUEST): "
            "use a coarser interval (for example 5m instead of 1m) or a shorter time window",
            **info,
        )
    if status == 477:
        return PageExpired("a page of a paginated answer is gone (477 NO_PAGE_FOUND)", **info)
    if status in (474, 571) or status >= 500:
        return TerminalUnavailable(_unavailable_reason(status), **info)
    return BadRequest(_bad_request_reason(status, body, params or {}), **info)


def _unavailable_reason(status: int) -> str:
    reasons = {
        474: "the terminal lost its connection to ThetaData's servers (474 DISCONNECTED)",
        571: "the terminal is starting (571 SERVER_STARTING)",
        572: "the terminal hit an internal error (572 UNCAUGHT_ERROR)",
    }
    return reasons.get(status, f"the terminal answered with a server error ({status})")


def _bad_request_reason(status: int, body: str, params: Mapping[str, Any]) -> str:
    reasons = {
        404: "the terminal does not know this request (404 NO_IMPL: wrong path or an outdated terminal)",
        410: "the terminal rejected parameters of another API version (410)",
        470: "the terminal rejected the request (470 GENERAL)",
        473: "the terminal rejected the request's parameters (473 INVALID_PARAMS)",
        475: "the terminal could not parse the request (475 TERMINAL_PARSE)",
        476: "the terminal saw two spellings of its host, such as 127.0.0.1 and localhost (476 WRONG_IP): "
        "use one spelling in every request",
    }
    reason = reasons.get(status, f"the terminal rejected the request ({status})")
    named = _named_params(body, params)
    return f"{reason}; parameter {', '.join(named)}" if named else reason


def _named_params(text: str, params: Mapping[str, Any]) -> list[str]:
    """Names of our parameters that the terminal's text mentions, renames first (``exp -> expiration``)."""
    renames = re.findall(r"^\s*(\w+)\s*->\s*(\w+)", text, flags=re.MULTILINE)
    if renames:
        return [f"{old} (this API calls it {new})" for old, new in renames]
    return [name for name in params if re.search(rf"\b{re.escape(name)}\b", text)]


def _describe(endpoint: str, params: Mapping[str, Any] | None) -> str:
    query = " ".join(f"{key}={value}" for key, value in (params or {}).items())
    return f"{endpoint} {query}".strip()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _unavailable_from(exc: requests.RequestException, endpoint: str, params: Mapping[str, Any]) -> TerminalUnavailable:
    """TerminalUnavailable for a request that got no answer (refused, timed out, reset)."""
    if isinstance(exc, requests.ConnectTimeout):
        reason = "connecting to the terminal timed out"
    elif isinstance(exc, requests.Timeout):
        reason = "the terminal did not answer within the read timeout"
    elif isinstance(exc, requests.ConnectionError):
        reason = "the terminal refused or dropped the connection (is it running?)"
    else:
        reason = "the request to the terminal failed"
    log.debug("%s: %r", endpoint, exc)  # urllib3's full story, for --verbose
    return TerminalUnavailable(reason, endpoint=endpoint, params=params)


# ---------------------------------------------------------------------------------------------
# pages


def null_to_none(value: Any) -> str | None:
    """A header field as text; None when absent, empty, JSON null or the string "null"."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text == "" or text.lower() == "null" else text


def _is_framed(headers: Mapping[str, str]) -> bool:
    """Whether a body's end can be checked: a Content-Length, or chunked transfer encoding."""
    return "Content-Length" in headers or "chunked" in headers.get("Transfer-Encoding", "").lower()


class Page(io.RawIOBase):
    """One page of an answer, read from the socket as it arrives; read it to its end.

    ``readinto`` raises BodyTruncated when the connection fails part-way (urllib3 errors are
    translated here) or when a CSV body ends in the middle of a line; the error is also kept in
    ``error``, since a reader in between (pyarrow) may replace it with its own exception. The
    in-flight slot and the connection are given back when the page is read to its end, fails or
    is closed.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        endpoint: str,
        params: Mapping[str, Any],
        number: int = 1,
        require_final_newline: bool = True,
        on_done: Callable[[], None] | None = None,
        started: float | None = None,
    ) -> None:
        super().__init__()
        self._response = response
        self.endpoint = endpoint
        self.params = dict(params)
        self.number = number
        self.status = response.status_code
        self.headers = response.headers
        self.next_url: str | None = null_to_none(response.headers.get("Next-Page"))
        self.error: TerminalError | None = None
        self.bytes_read = 0
        self.complete = False
        self._require_final_newline = require_final_newline
        self._on_done = on_done
        self._started = time.monotonic() if started is None else started
        self._head = bytearray()  # the first bytes, for error messages
        self._last_byte = b""
        self._finished = False
        if require_final_newline and not _is_framed(response.headers):
            log.warning(
                "%s: the terminal sent a body with neither Content-Length nor chunked encoding; "
                "a connection cut at a line end cannot be told from the end of the answer", endpoint
            )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes of the body; 0 at its end; BodyTruncated if cut."""
        if self.error is not None:
            raise self.error
        if self.complete:
            return 0
        if self.closed:
            raise ValueError("I/O operation on a closed page")
        view = memoryview(buffer).cast("B")
        if not view:
            return 0  # urllib3 answers b"" to a zero-byte read, which is not the end
        try:
            chunk = self._response.raw.read(len(view), decode_content=True)
        except BODY_READ_ERRORS as exc:
            raise self._truncated(f"the connection failed after {self.bytes_read} bytes of the body: {exc}") from exc
        if not chunk:
            self._reached_end()
            return 0
        size = len(chunk)
        view[:size] = chunk
        self._note(chunk)
        return size

    def close(self) -> None:
        """Give back the slot; an unfinished body closes its connection instead of reusing it."""
        if not self._finished:
            self._response.close()
            self._finish("closed before its end")
        super().close()

    def _note(self, chunk: bytes) -> None:
        if len(self._head) < BODY_IN_ERROR:
            self._head += chunk[: BODY_IN_ERROR - len(self._head)]
        self.bytes_read += len(chunk)
        self._last_byte = chunk[-1:]

    def _reached_end(self) -> None:
        if self._require_final_newline and self.bytes_read and self._last_byte != b"\n":
            raise self._truncated(f"the body ended in the middle of a line after {self.bytes_read} bytes")
        self.complete = True
        self._response.raw.release_conn()
        self._finish("complete")

    def _truncated(self, message: str) -> BodyTruncated:
        error = BodyTruncated(
            f"page {self.number}: {message}",
            endpoint=self.endpoint,
            params=self.params,
            status=self.status,
            body=self._head.decode("utf-8", "replace"),
        )
        self.error = error
        self._response.close()
        self._finish("truncated")
        return error

    def _finish(self, outcome: str) -> None:
        if self._finished:
            return
        self._finished = True
        if self._on_done is not None:
            self._on_done()
        log.debug(
            "%s %s -> %s, %d bytes, %.0f ms (page %d, %s)",
            self.endpoint,
            self.params,
            self.status,
            self.bytes_read,
            (time.monotonic() - self._started) * 1000,
            self.number,
            outcome,
        )


# ---------------------------------------------------------------------------------------------
# circuit breaker


class CircuitBreaker:
    """Shared by one client's threads. Closed: requests flow. Open: one thread probes, the rest wait.

    A probe that gives up fails every request that waited for it; the breaker stays open and the
    next request probes again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self._probing = False
        self._failed_probes = 0

    @property
    def is_open(self) -> bool:
        return self._open

    def trip(self) -> None:
        """Open the breaker: requests from now on wait for a successful probe."""
        with self._cond:
            self._open = True

    def wait_until_closed(self, probe: Callable[[], None]) -> None:
        """Return at once when closed; else run ``probe`` (one thread) or wait for it (the others)."""
        with self._cond:
            if not self._open:
                return
            generation = self._failed_probes
            while self._open and self._probing:
                self._cond.wait()
                if self._failed_probes != generation:
                    raise TerminalUnavailable("the terminal is still unavailable: the status probe gave up")
            if not self._open:
                return
            self._probing = True
        try:
            probe()
        except BaseException:
            with self._cond:
                self._probing = False
                self._failed_probes += 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._open = False
            self._probing = False
            self._cond.notify_all()


# ---------------------------------------------------------------------------------------------
# wire formats of parameters and list bodies


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
    expiration: date
    trade_date: date
    interval: str = "1m"
    start_ms: int = RTH_START_MS
    end_ms: int = RTH_END_MS
    rate: str | None = None
    rate_value: float | None = None  # a fraction: 0.0342 = 3.42 %
    annual_div: float | None = None

    def check_window(self) -> None:
        if not 0 <= self.start_ms < self.end_ms <= DAY_MS:
            raise ConfigError(
                f"bad time window {self.start_ms}..{self.end_ms} ms of day: need 0 <= start < end <= {DAY_MS}"
            )


def v2_history_params(query: HistoryQuery) -> dict[str, str]:
    """Query parameters of a v2 bulk history request (window only for interval datasets)."""
    params = {"root": query.root, "exp": wire_date(query.expiration)}
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
    parameter (eod): there ``start_date`` and ``end_date``, both the trade date.
    """
    params = {"symbol": query.root, "expiration": wire_date(query.expiration)}
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
    status = ERROR_TYPE_STATUS.get(error_type.upper(), 470)
    message = null_to_none(header.get("error_msg")) or error_type
    raise error_for_status(status, endpoint=endpoint, params=params, body=message)


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


# ---------------------------------------------------------------------------------------------
# the client


class TerminalClient:
    """A client of one ThetaData Terminal, for one process and its threads; a context manager.

    ``in_flight`` is a ``multiprocessing`` semaphore made by the parent and shared by every
    worker: a slot is held from sending a request until its body is read, closed or failed, and
    never while waiting to retry. ``retries`` counts the retries of an unavailable terminal per
    request; 429s are waited out outside that budget (at most ``max_throttles`` times).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api: str = "auto",
        *,
        threads: int = 2,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 5,
        in_flight: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_throttles: int = 200,
        probe_attempts: int = 10,
    ) -> None:
        if api not in ("auto", "v2", "v3"):
            raise ConfigError(f"unknown terminal API {api!r}: use auto, v2 or v3", key="terminal_api")
        self._configured_url = _check_base_url(base_url) if base_url else None
        self.api = api
        self.base_url = self._configured_url or DEFAULT_URLS["v3" if api == "auto" else api]
        self.simulated = False
        self.timeouts = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_throttles = max_throttles
        self.probe_attempts = probe_attempts
        self._in_flight = in_flight
        self._sleep = sleep
        self._random = random.Random()
        self._breaker = CircuitBreaker()
        self._connected = False
        self._connect_lock = threading.Lock()
        self._pid = os.getpid()
        self._session = _new_session(threads)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> TerminalClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    @property
    def breaker_open(self) -> bool:
        """True while the circuit breaker holds requests back until a status probe succeeds."""
        return self._breaker.is_open

    def connect(self) -> TerminalClient:
        """Find the terminal and its API version; PermissionDenied / TerminalUnavailable if unusable."""
        with self._connect_lock:
            if not self._connected:
                self._detect()
                self._connected = True
        return self

    def _detect(self) -> None:
        failures = []
        # Detection is news; a worker re-checking the version its parent found is not.
        level = logging.INFO if self.api == "auto" else logging.DEBUG
        for base_url, api in self._candidates():
            try:
                word, simulated = self._probe(base_url, api)
            except (TerminalUnavailable, BadRequest) as exc:
                if isinstance(exc, TerminalUnavailable) and exc.status is not None:
                    raise  # this API answered, unwell: falling back to the other would mix API versions
                failures.append(f"{base_url}{STATUS_PATHS[api]}: {exc}")
                continue
            self.base_url, self.api, self.simulated = base_url, api, simulated
            _raise_for_status_word(word, STATUS_PATHS[api])
            log.log(level, "terminal at %s speaks API %s%s", base_url, api, " (spxdl simulator)" if simulated else "")
            return
        raise TerminalUnavailable("no ThetaData Terminal answered: " + "; ".join(failures))

    def _probe(self, base_url: str, api: str) -> tuple[str, bool]:
        """The status word of ``api`` at ``base_url``.

        No answer at all (refused, timed out) or an unknown path (BadRequest) means "not this
        API": the caller tries the next candidate. An HTTP error (500, 474, 571, a cut answer)
        means the terminal is there but unwell: asked again with backoff up to ``retries`` times.
        """
        attempt = 0
        while True:
            try:
                return self._status_word(base_url, api, use_breaker=False)
            except TerminalUnavailable as exc:
                attempt += 1
                if exc.status is None or attempt > self.retries:
                    raise
                delay = self._backoff(attempt)
                log.warning("terminal at %s answered %s (%s); asking again in %.2f s", base_url, exc.status, exc, delay)
                self._sleep(delay)

    def _candidates(self) -> list[tuple[str, str]]:
        apis = ["v3", "v2"] if self.api == "auto" else [self.api]
        return [(self._configured_url or DEFAULT_URLS[api], api) for api in apis]

    # -- calls -------------------------------------------------------------------------------

    def status(self) -> str:
        """The terminal's MDDS status word: CONNECTED, UNVERIFIED, DISCONNECTED or ERROR."""
        self.connect()
        word, _ = self._status_word(self.base_url, self.api, use_breaker=True)
        return word

    def expirations(self, root: str) -> list[date]:
        """Every expiration of ``root`` the terminal lists, ascending."""
        values = self._list("expirations", ("expiration", "date"), self._list_params(root))
        return sorted({parse_wire_date(value) for value in values})

    def strikes(self, root: str, expiration: date) -> list[float]:
        """The strikes of one expiration in dollars, ascending."""
        values = self._list("strikes", ("strike",), self._list_params(root, expiration))
        divisor = 1000.0 if self.api == "v2" else 1.0  # v2 lists 1/10 cents
        return sorted({float(value) / divisor for value in values})

    def dates(self, root: str, expiration: date) -> list[date]:
        """The trade dates with quotes for one expiration, ascending."""
        values = self._list("dates", ("date",), self._list_params(root, expiration))
        return sorted({parse_wire_date(value) for value in values})

    def history(
        self,
        dataset: Dataset,
        root: str,
        expiration: date,
        trade_date: date,
        *,
        interval: str = "1m",
        start_ms: int = RTH_START_MS,
        end_ms: int = RTH_END_MS,
        rate: str | None = None,
        rate_value: float | None = None,
        annual_div: float | None = None,
    ) -> Iterator[Page]:
        """The CSV pages of one expiration on one trade date, in order.

        NoData when the terminal has none (472). The next page is fetched only when the caller
        asks for it after reading the previous one to its end. ``rate_value`` is a fraction.
        """
        self.connect()
        path = dataset.path(self.api)
        if path is None:
            raise ConfigError(f"dataset {dataset.name} has no endpoint in API {self.api}", key="datasets")
        build = v2_history_params if self.api == "v2" else v3_history_params
        params = build(
            HistoryQuery(dataset, root, expiration, trade_date, interval, start_ms, end_ms, rate, rate_value, annual_div)
        )
        return self._pages(path, params, require_final_newline=True)

    # -- lists -------------------------------------------------------------------------------

    def _list_params(self, root: str, expiration: date | None = None) -> dict[str, str]:
        if self.api == "v2":
            params = {"root": root, "exp": wire_date(expiration) if expiration else None, "use_csv": "true"}
        else:
            params = {"symbol": root, "expiration": wire_date(expiration) if expiration else None, "format": "csv"}
        return {key: value for key, value in params.items() if value is not None}

    def _list(self, kind: str, columns: tuple[str, ...], params: dict[str, str]) -> list[Any]:
        """The raw values of a list endpoint, over all its pages."""
        self.connect()
        path = LIST_PATHS[self.api][kind]
        values: list[Any] = []
        for page in self._pages(path, params, require_final_newline=False):
            text = page.read().decode("utf-8")  # list bodies are small
            page_values, json_next = parse_list_body(text, columns, endpoint=path, params=params)
            values.extend(page_values)
            page.next_url = page.next_url or json_next
        return values

    # -- pagination --------------------------------------------------------------------------

    def _pages(self, endpoint: str, params: dict[str, str], *, require_final_newline: bool) -> Iterator[Page]:
        """Each page of one answer; the next is fetched only after the previous was read to its end."""
        url, query, number = self.base_url + endpoint, params, 1
        while True:
            page = self._open_page(url, endpoint, query, params, number, require_final_newline)
            try:
                yield page
                _check_read_to_end(page)
            finally:
                page.close()
            if page.next_url is None:
                return
            url, query, number = self._next_page(page.next_url, endpoint, params), None, number + 1

    def _open_page(
        self,
        url: str,
        endpoint: str,
        query: dict[str, str] | None,
        params: dict[str, str],
        number: int,
        require_final_newline: bool,
    ) -> Page:
        page_endpoint = urlsplit(url).path
        try:
            return self._request(
                url,
                page_endpoint,
                query,
                report_params=params,
                number=number,
                require_final_newline=require_final_newline,
            )
        except NoData as exc:
            if number == 1:
                raise
            # Data ran out part-way through an answer: the earlier pages cannot be trusted alone.
            raise PageExpired(
                f"page {number} of {endpoint} answered 472 NO_DATA",
                endpoint=page_endpoint,
                params=params,
                status=exc.status,
                body=exc.body,
            ) from exc

    def _next_page(self, next_url: str, endpoint: str, params: Mapping[str, Any]) -> str:
        """The next page's absolute URL; BadRequest unless it is on the configured terminal."""
        url = urljoin(self.base_url + "/", next_url)
        if _origin(url) != _origin(self.base_url):
            raise BadRequest(
                f"the terminal's next page {url} is not on the configured terminal {self.base_url}: "
                "set the terminal URL to the host spelling and port the terminal itself uses",
                endpoint=endpoint,
                params=params,
                status=200,
            )
        return url

    # -- requests ----------------------------------------------------------------------------

    def _status_word(self, base_url: str, api: str, *, use_breaker: bool, retries: int = 0) -> tuple[str, bool]:
        path = STATUS_PATHS[api]
        page = self._request(
            base_url + path, path, None, retries=retries, use_breaker=use_breaker, require_final_newline=False
        )
        with page:
            try:
                word = page.read().decode("utf-8", "replace").strip().upper()
            except BodyTruncated as exc:
                raise TerminalUnavailable(f"the status answer was cut: {exc}", endpoint=path, status=200) from exc
        return word, _is_truthy(page.headers.get(SIMULATOR_HEADER))

    def _request(
        self,
        url: str,
        endpoint: str,
        query: Mapping[str, str] | None,
        *,
        report_params: Mapping[str, str] | None = None,
        number: int = 1,
        retries: int | None = None,
        use_breaker: bool = True,
        require_final_newline: bool = True,
    ) -> Page:
        """Send one request, retrying 429s and unavailability; the 200 answer's body as a Page.

        The only retry loop of the client. Retries end before the body streams: a body that is
        cut later is the caller's BodyTruncated.
        """
        params = dict(report_params if report_params is not None else query or {})
        budget = self.retries if retries is None else retries
        throttles = failures = 0
        while True:
            if use_breaker:
                self._breaker.wait_until_closed(self._probe_until_connected)
            try:
                return self._send(url, endpoint, query, params, number, require_final_newline)
            except Throttled as exc:
                throttles += 1
                if throttles > self.max_throttles:
                    raise
                delay = self._throttle_delay(exc, throttles)
                reason: TerminalError = exc
            except TerminalUnavailable as exc:
                failures += 1
                if failures > budget:
                    if use_breaker:
                        log.warning("%s: %s; opening the circuit breaker", endpoint, exc)
                        self._breaker.trip()
                    raise
                delay = self._backoff(failures)
                reason = exc
            log.warning("retrying %s %s in %.2f s: %s", endpoint, params, delay, reason)
            self._sleep(delay)

    def _send(
        self,
        url: str,
        endpoint: str,
        query: Mapping[str, str] | None,
        params: Mapping[str, str],
        number: int,
        require_final_newline: bool,
    ) -> Page:
        """One attempt: take an in-flight slot, send, and map a non-200 answer to its exception."""
        self._check_process()
        release = self._take_slot()
        started = time.monotonic()
        try:
            response = self._session.get(url, params=query, stream=True, timeout=self.timeouts, allow_redirects=False)
        except requests.RequestException as exc:
            release()
            log.debug("%s %s -> no answer, %.0f ms: %s", endpoint, params, _ms_since(started), exc)
            raise _unavailable_from(exc, endpoint, params) from exc
        except BaseException:
            release()
            raise
        if response.status_code != 200:
            try:
                body = _read_error_body(response)
            finally:
                response.close()
                release()
            status, ms = response.status_code, _ms_since(started)
            log.debug("%s %s -> %s, %d bytes, %.0f ms", endpoint, params, status, len(body), ms)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise error_for_status(status, endpoint=endpoint, params=params, body=body, retry_after=retry_after)
        return Page(
            response,
            endpoint=endpoint,
            params=params,
            number=number,
            require_final_newline=require_final_newline,
            on_done=release,
            started=started,
        )

    def _take_slot(self) -> Callable[[], None]:
        """Acquire an in-flight slot; the returned callable gives it back (only once)."""
        if self._in_flight is None:
            return lambda: None
        self._in_flight.acquire()
        once = threading.Lock()  # a reader thread and the closing thread may both finish a page

        def release() -> None:
            if once.acquire(blocking=False):
                self._in_flight.release()

        return release

    def _probe_until_connected(self) -> None:
        """Poll the status endpoint with backoff until CONNECTED; TerminalUnavailable if it never is."""
        last: Exception | None = None
        for attempt in range(1, self.probe_attempts + 1):
            try:
                word, _ = self._status_word(self.base_url, self.api, use_breaker=False)
                _raise_for_status_word(word, STATUS_PATHS[self.api])
                log.info("terminal is back (%s); closing the circuit breaker", word)
                return
            except TerminalUnavailable as exc:
                last = exc
            delay = self._backoff(attempt)
            log.warning("terminal still unavailable (%s); probing again in %.2f s", last, delay)
            self._sleep(delay)
        raise TerminalUnavailable(
            f"the terminal did not come back after {self.probe_attempts} status probes: {last}",
            endpoint=STATUS_PATHS[self.api],
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        return self._random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** min(attempt - 1, 30)))

    def _throttle_delay(self, exc: Throttled, throttles: int) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, self.backoff_cap)
        return self._backoff(throttles)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "a TerminalClient was used in a process other than the one that built it: "
                "build one client per worker process"
            )


# ---------------------------------------------------------------------------------------------
# helpers


def _new_session(threads: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, threads), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"bad terminal URL {base_url!r}: expected http://HOST:PORT", key="terminal_url")
    return base_url.rstrip("/")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def _raise_for_status_word(word: str, endpoint: str) -> None:
    if word == "CONNECTED":
        return
    if word == "UNVERIFIED":
        raise PermissionDenied(
            "the terminal is connected but ThetaData rejected its credentials (status UNVERIFIED): "
            "check the account's login and subscription",
            endpoint=endpoint,
            status=200,
            body=word,
        )
    raise TerminalUnavailable(
        f"the terminal is not connected to ThetaData (status {word or 'empty'})",
        endpoint=endpoint,
        status=200,
        body=word,
    )


def _check_read_to_end(page: Page) -> None:
    if page.error is not None:
        raise page.error
    if not page.complete:
        raise RuntimeError(f"page {page.number} of {page.endpoint} was not read to its end before the next one")


def _read_error_body(response: requests.Response) -> str:
    try:
        data = response.raw.read(ERROR_BODY_BYTES, decode_content=True)
    except BODY_READ_ERRORS:
        return ""
    return data.decode("utf-8", "replace")


def _is_truthy(value: str | None) -> bool:
    return bool(value) and value.strip().lower() not in ("0", "false", "no")


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
