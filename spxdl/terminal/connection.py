"""``TerminalConnection``: one terminal found and asked, with retries, backoff and the circuit breaker.

The base of ``TerminalClient``: it finds the terminal and its API version (detection), and sends
each request through the client's only retry loop: 429s waited out (``Retry-After``), an
unavailable terminal asked again with exponential backoff and full jitter, then the circuit
breaker, whose status probes wait for the terminal to come back or raise ``TerminalGone``.

Build one per worker process (after the fork, in the pool initializer): a session inherited
across ``fork`` shares its parent's sockets, so the adapter refuses to be used from another
process than the one that built it. Inside one process the threads share it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, TypeVar

from spxdl.errors import (
    BadRequest,
    BodyTruncated,
    ConfigError,
    TerminalError,
    TerminalGone,
    TerminalUnavailable,
    Throttled,
)
from spxdl.terminal.adapter import Request, TerminalAdapter
from spxdl.terminal.breaker import CircuitBreaker
from spxdl.terminal.page import Observer, Page
from spxdl.terminal.status import raise_for_status_word
from spxdl.terminal.wire import DEFAULT_URLS, SIMULATOR_HEADER, STATUS_PATHS
from spxdl.urls import check_terminal_url

log = logging.getLogger(__name__)

Connection = TypeVar("Connection", bound="TerminalConnection")


class TerminalConnection:
    """One ThetaData Terminal, found and asked for one process and its threads; a context manager.

    ``in_flight`` is a ``multiprocessing`` semaphore made by the parent and shared by every
    worker: a slot is held from sending a request until its body is read, closed or failed, and
    never while waiting to retry. ``retries`` counts the retries of an unavailable terminal per
    request; 429s are waited out outside that budget (at most ``max_throttles`` times). A request
    that spends the budget opens the circuit breaker, whose status probes wait up to
    ``outage_limit`` seconds for the terminal to come back before raising ``TerminalGone``.
    ``checked`` says the caller has just found the terminal at ``base_url`` speaking ``api`` (a
    worker whose parent did): the client then asks no status first.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api: str = "auto",
        *,
        threads: int = 2,
        connect_timeout: float = 5.0,
        read_timeout: float = 360.0,
        retries: int = 5,
        in_flight: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_throttles: int = 200,
        observer: Observer | None = None,
        outage_limit: float = 120.0,
        checked: bool = False,
    ) -> None:
        if api not in ("auto", "v2", "v3"):
            raise ConfigError(f"unknown terminal API {api!r}: use auto, v2 or v3", key="terminal_api")
        if checked and (api == "auto" or not base_url):
            raise ConfigError("a checked terminal needs its URL and API version", key="terminal_api")
        self._configured_url = _configured_url(base_url) if base_url else None
        self.api = api
        self.base_url = self._configured_url or DEFAULT_URLS["v3" if api == "auto" else api]
        self.simulated = False
        self.simulator: str | None = None  # the simulator's identity (profile, seed), when it is one
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_throttles = max_throttles
        self.outage_limit = outage_limit
        self._sleep = sleep
        self._random = random.Random()
        self._breaker = CircuitBreaker()
        self._connected = checked
        self._connect_lock = threading.Lock()
        self._adapter = TerminalAdapter(
            threads=threads, timeouts=(connect_timeout, read_timeout), in_flight=in_flight, observer=observer
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self: Connection) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._adapter.close()

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds of every request."""
        return self._adapter.timeouts

    @property
    def breaker_open(self) -> bool:
        """True while the circuit breaker holds requests back until a status probe succeeds."""
        return self._breaker.is_open

    def connect(self: Connection) -> Connection:
        """Find the terminal and its API version; PermissionDenied / TerminalUnavailable if unusable."""
        with self._connect_lock:
            if not self._connected:
                self._detect()
                self._connected = True
        return self

    def _detect(self) -> None:
        failures: list[tuple[str, str, str]] = []  # (URL, API, why)
        # Detection is news; a worker re-checking the version its parent found is not.
        level = logging.INFO if self.api == "auto" else logging.DEBUG
        for base_url, api in self._candidates():
            try:
                word, simulator = self._probe(base_url, api)
            except (TerminalUnavailable, BadRequest) as exc:
                if isinstance(exc, TerminalUnavailable) and exc.status is not None:
                    raise  # this API answered, unwell: falling back to the other would mix API versions
                failures.append((base_url, api, exc.args[0] if exc.args else str(exc)))
                continue
            self.base_url, self.api, self.simulator = base_url, api, simulator
            self.simulated = simulator is not None
            raise_for_status_word(word, STATUS_PATHS[api])
            log.log(level, "terminal at %s speaks API %s%s", base_url, api, " (spxdl simulator)" if simulator else "")
            return
        raise TerminalUnavailable(no_terminal_message(failures))

    def _probe(self, base_url: str, api: str) -> tuple[str, str | None]:
        """The status word of ``api`` at ``base_url``, and the simulator's identity if it is one.

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

    # -- requests ----------------------------------------------------------------------------

    def _status_word(self, base_url: str, api: str, *, use_breaker: bool, retries: int = 0) -> tuple[str, str | None]:
        path = STATUS_PATHS[api]
        request = Request(base_url + path, path, query=None, params={}, require_final_newline=False)
        with self._request(request, retries=retries, use_breaker=use_breaker) as page:
            try:
                word = page.read().decode("utf-8", "replace").strip().upper()
            except BodyTruncated as exc:
                raise TerminalUnavailable(f"the status answer was cut: {exc}", endpoint=path, status=200) from exc
        identity = page.headers.get(SIMULATOR_HEADER)
        return word, identity.strip() if _is_truthy(identity) else None

    def _request(self, request: Request, *, retries: int | None = None, use_breaker: bool = True) -> Page:
        """Send one request, retrying 429s and unavailability; the 200 answer's body as a Page.

        The only retry loop of the client. Retries end before the body streams: a body that is
        cut later is the caller's BodyTruncated.
        """
        budget = self.retries if retries is None else retries
        throttles = failures = 0
        while True:
            if use_breaker:
                self._breaker.wait_until_closed(self._probe_until_connected)
            try:
                return self._adapter.send(request)
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
                        log.warning("%s: %s; opening the circuit breaker", request.endpoint, exc)
                        self._breaker.trip()
                    raise
                delay = self._backoff(failures)
                reason = exc
            log.warning("retrying %s %s in %.2f s: %s", request.endpoint, request.params, delay, reason)
            self._sleep(delay)

    def _probe_until_connected(self) -> None:
        """Poll the status endpoint with backoff until CONNECTED; TerminalGone after ``outage_limit`` seconds."""
        began, slept, attempt = time.monotonic(), 0.0, 0
        while True:
            attempt += 1
            try:
                word, _ = self._status_word(self.base_url, self.api, use_breaker=False)
                raise_for_status_word(word, STATUS_PATHS[self.api])
                log.info("terminal is back (%s); closing the circuit breaker", word)
                return
            except TerminalUnavailable as exc:
                last = exc
            waited = max(slept, time.monotonic() - began)  # the sleeps alone, where sleeping is simulated
            if waited >= self.outage_limit:
                why = last.args[0] if last.args else last  # its endpoint is this one's: named once
                raise TerminalGone(
                    f"the terminal did not come back within {self.outage_limit:g} s ({attempt} status probes): {why}",
                    endpoint=STATUS_PATHS[self.api],
                )
            delay = min(self._backoff(attempt), self.outage_limit - waited)
            log.warning("terminal still unavailable (%s); probing again in %.2f s", last, delay)
            self._sleep(delay)
            slept += delay

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        return self._random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** min(attempt - 1, 30)))

    def _throttle_delay(self, exc: Throttled, throttles: int) -> float:
        if exc.retry_after is not None:
            return min(exc.retry_after, self.backoff_cap)
        return self._backoff(throttles)


def _configured_url(base_url: str) -> str:
    try:
        return check_terminal_url(base_url)
    except ConfigError as exc:
        raise ConfigError(f"bad terminal URL {base_url!r}: {exc}", key="terminal_url") from None


def no_terminal_message(failures: list[tuple[str, str, str]]) -> str:
    """One sentence for every place a terminal was looked for: each URL once, a shared reason once."""
    reasons = {why for _, _, why in failures}
    urls = list(dict.fromkeys(url for url, _, _ in failures))
    if len(reasons) == 1 and len(urls) == 1:
        apis = " or ".join(api for _, api, _ in failures)
        return f"no ThetaData Terminal answered at {urls[0]} ({apis}): {reasons.pop()}"
    if len(reasons) == 1:
        where = " or ".join(f"{url} ({api})" for url, api, _ in failures)
        return f"no ThetaData Terminal answered at {where}: {reasons.pop()}"
    return "no ThetaData Terminal answered: " + "; ".join(f"{url} ({api}): {why}" for url, api, why in failures)


def _is_truthy(value: str | None) -> bool:
    return bool(value) and value.strip().lower() not in ("0", "false", "no")
