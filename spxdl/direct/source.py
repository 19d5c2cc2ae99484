"""``DirectSource``: ThetaData's market data through the thetadatadx-py SDK, with no local server.

It stands where a ``TerminalClient`` stands (the engine's worker, health, doctor): ``connect``,
``expirations``, ``history``, ``close``, ``api`` (``"direct"``), ``base_url`` (None) and
``simulated`` (False). ``history`` yields the answer's Arrow tables one gRPC chunk at a time, which
the converter reads as it reads a terminal's CSV pages: the same checks, Parquet writer, atomic
storage and ledger follow. Build one per process (the SDK authenticates when its client is built);
the process's threads share it. ``in_flight`` is the run's semaphore of requests in flight across
every worker, held for the whole of one answer's stream. A throttle the SDK gives up on before the
first chunk (``RateLimitError``, after its own retries) is waited out here, as the terminal client
waits out a 429: outside the retry budget, honouring its ``retry_after``, never holding a slot.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa

from spxdl.datasets import Dataset
from spxdl.direct.calls import HistoryCall, history_call
from spxdl.direct.chunks import stream_tables
from spxdl.direct.sdk import find_credentials, load_sdk, make_config, sdk_version
from spxdl.direct.status import error_for, is_sdk_error, no_rows
from spxdl.errors import Throttled
from spxdl.trading_calendar import RTH_END_MS, RTH_START_MS

log = logging.getLogger(__name__)

API = "direct"
EXPIRATIONS_CALL = "option_list_expirations"
STRIKES_CALL = "option_list_strikes"


class DirectSource:
    """ThetaData through the SDK, for one process and its threads; a context manager."""

    api = API
    base_url: str | None = None
    simulated = False

    def __init__(
        self,
        *,
        retries: int = 5,
        read_timeout: float = 360.0,
        in_flight: Any = None,
        credential_dirs: Sequence[Path] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_throttles: int = 200,
        backoff_cap: float = 30.0,
        **_ignored: Any,  # the terminal client's other options (threads, connect_timeout, observer) do not apply
    ) -> None:
        self.retries = retries
        self.max_throttles = max_throttles
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._random = random.Random()
        self.read_timeout = read_timeout
        self.credential_dirs = credential_dirs
        self.credentials_origin: str | None = None  # where the credentials came from (never what they are)
        self.sdk_version: str | None = None
        self._in_flight = in_flight
        self._client: Any = None
        self._pid = os.getpid()
        self._connect_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> DirectSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the SDK's client (its connections); a later call connects again."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # closing must never fail a run that is ending
                log.debug("closing the SDK client: %r", exc)

    def connect(self) -> DirectSource:
        """Load the SDK, find the credentials and log in; ConfigError / PermissionDenied / TerminalUnavailable."""
        if os.getpid() != self._pid:
            raise RuntimeError("a DirectSource was used in a process other than the one that built it: "
                               "build one per worker process")
        with self._connect_lock:
            if self._client is None:
                self._client = self._login()
        return self

    def _login(self) -> Any:
        sdk = load_sdk()
        self.sdk_version = sdk_version(sdk)
        found = find_credentials(sdk, self.credential_dirs)
        self.credentials_origin = found.origin
        config = make_config(sdk, retries=self.retries, request_timeout=self.read_timeout)
        try:
            client = sdk.Client(credentials=found.credentials, config=config)
        except Exception as exc:
            if is_sdk_error(exc):
                raise error_for(exc, call="login") from None
            raise
        log.info("direct source: thetadatadx %s, credentials from %s", self.sdk_version, found.origin)
        return client

    # -- calls -------------------------------------------------------------------------------

    def status(self) -> str:
        """``CONNECTED`` once logged in (the SDK's session), as a terminal's status word."""
        self.connect()
        return "CONNECTED"

    def subscription(self) -> dict[str, str]:
        """The account's tier per asset class, as ThetaData told the SDK at login (``options: Pro``)."""
        return {str(asset): str(tier) for asset, tier in self.connect()._client.subscription_info()}

    def expirations(self, root: str) -> list[date]:
        """Every expiration of ``root`` ThetaData lists, ascending; NoData when none."""
        market = self.connect()._client.market_data
        values = self._call(EXPIRATIONS_CALL, {"symbol": root}, lambda: list(market.option_list_expirations(root)))
        found = sorted({_parse_date(str(value)) for value in values})
        if not found:
            raise no_rows(EXPIRATIONS_CALL, {"symbol": root})
        return found

    def strikes(self, root: str, expiration: date) -> list[float]:
        """The strikes of one expiration in dollars, ascending; NoData when none."""
        market = self.connect()._client.market_data
        params = {"symbol": root, "expiration": expiration.strftime("%Y%m%d")}
        values = self._call(STRIKES_CALL, params, lambda: list(market.option_list_strikes(root, params["expiration"])))
        found = sorted({float(str(value)) for value in values})
        if not found:
            raise no_rows(STRIKES_CALL, params)
        return found

    def history(
        self,
        dataset: Dataset,
        root: str,
        expiration: date | None,
        trade_date: date,
        *,
        interval: str = "1m",
        start_ms: int = RTH_START_MS,
        end_ms: int = RTH_END_MS,
        rate: str | None = None,
        rate_value: float | None = None,
        annual_div: float | None = None,
        strike: float | None = None,
        right: str | None = None,
    ) -> Iterator[pa.Table]:
        """The Arrow tables of one answer, one per gRPC chunk, in order; NoData when it has no row.

        The same request a terminal gets (``expiration`` None: every expiration, or an index's day;
        ``rate_value`` a fraction, sent in percent; ``strike``/``right`` one contract).
        """
        self.connect()
        call = history_call(dataset, root, expiration, trade_date, interval=interval, start_ms=start_ms,
                            end_ms=end_ms, rate=rate, rate_value=rate_value, annual_div=annual_div, strike=strike,
                            right=right)
        return self._waiting_out_throttles(call)

    def _waiting_out_throttles(self, call: HistoryCall) -> Iterator[pa.Table]:
        """The answer's chunks; a throttle before the first chunk waited out (at most ``max_throttles`` times)."""
        throttles = 0
        while True:
            tables = self._stream(call)
            try:
                first = next(tables, None)
            except Throttled as exc:
                throttles += 1
                if throttles > self.max_throttles:
                    raise
                delay = self._throttle_delay(exc, throttles)
                log.warning("retrying %s %s in %.2f s: %s", call.name, call.params, delay, exc)
                self._sleep(delay)
                continue
            if first is not None:
                yield first
                yield from tables
            return

    def _throttle_delay(self, exc: Throttled, throttles: int) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, self.backoff_cap)
        return self._random.uniform(0.0, min(self.backoff_cap, 0.5 * 2 ** min(throttles - 1, 30)))

    def _stream(self, call: HistoryCall) -> Iterator[pa.Table]:
        release = _take_slot(self._in_flight)
        rows = 0
        try:
            builder = call.builder(self._client.market_data)
            for table in stream_tables(builder):
                rows += table.num_rows
                yield table
        except Exception as exc:
            if is_sdk_error(exc):
                raise error_for(exc, call=call.name, params=call.params) from None
            raise
        finally:
            release()
        log.debug("%s %s -> %d rows", call.name, call.params, rows)
        if rows == 0:
            raise no_rows(call.name, call.params)

    def _call(self, name: str, params: dict[str, str], make: Callable[[], Any]) -> Any:
        release = _take_slot(self._in_flight)
        try:
            return make()
        except Exception as exc:
            if is_sdk_error(exc):
                raise error_for(exc, call=name, params=params) from None
            raise
        finally:
            release()


def _parse_date(text: str) -> date:
    """``2026-01-16`` or ``20260116`` (the SDK lists the wire's text as it came)."""
    text = text.strip()
    return date.fromisoformat(text) if "-" in text else date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _take_slot(in_flight: Any) -> Callable[[], None]:
    """Acquire an in-flight slot; the returned callable gives it back (only once)."""
    if in_flight is None:
        return lambda: None
    in_flight.acquire()
    given = []

    def release() -> None:
        if not given:
            given.append(True)
            in_flight.release()

    return release
