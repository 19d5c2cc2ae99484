"""One attempt at one request, as requests' ``HTTPAdapter`` sends one: the pooled session, the
in-flight slot, the one-process guard; a 200 becomes a ``Page``, anything else its exception.

``Request`` is the record of one page's request, built once per page by the client.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from spxdl.terminal.page import AnswerHead, BodySink, GuardedSink, Observer, Page, read_error_body
from spxdl.terminal.status import error_for_status, parse_retry_after, unavailable_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One page's request: built once per page and handed down to each attempt that sends it."""

    url: str  # absolute; a later page's URL exactly as the terminal gave it
    endpoint: str  # the URL's path, for errors and log lines
    query: Mapping[str, str] | None  # the query string to add; None for a later page
    params: Mapping[str, str]  # the first page's parameters, for errors and log lines (never the host)
    number: int = 1  # the page's place in its answer
    require_final_newline: bool = True  # CSV pages must end with "\n"; list and status bodies need not

    def next_page(self, url: str) -> Request:
        """The request of the page after this one, fetched at ``url`` exactly as given."""
        return replace(self, url=url, endpoint=urlsplit(url).path, query=None, number=self.number + 1)


class TerminalAdapter:
    """Sends requests over one pooled ``requests.Session``, in the process that built it.

    ``in_flight`` (a ``multiprocessing`` semaphore, or None) is acquired before each send and
    given back when the answer's body is read to its end, closed or failed.
    """

    def __init__(
        self, *, threads: int, timeouts: tuple[float, float], in_flight: Any = None, observer: Observer | None = None
    ) -> None:
        self.timeouts = timeouts
        self._in_flight = in_flight
        self._observer = observer
        self._pid = os.getpid()
        self._session = _new_session(threads)

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def send(self, request: Request) -> Page:
        """One attempt: take an in-flight slot, send, and map a non-200 answer to its exception."""
        self._check_process()
        endpoint, params = request.endpoint, request.params
        release = _take_slot(self._in_flight)
        started = time.monotonic()
        try:
            response = self._session.get(
                request.url, params=request.query, stream=True, timeout=self.timeouts, allow_redirects=False
            )
        except requests.RequestException as exc:
            release()
            log.debug("%s %s -> no answer, %.0f ms: %s", endpoint, params, _ms_since(started), exc)
            raise unavailable_from(exc, endpoint, params) from exc
        except BaseException:
            release()
            raise
        sink = self._observe(request, response)
        if response.status_code != 200:
            try:
                raw = read_error_body(response)
            finally:
                response.close()
                release()
            guarded = GuardedSink(sink, endpoint)
            guarded.write(raw)
            guarded.finish(True)
            body = raw.decode("utf-8", "replace")
            status, ms = response.status_code, _ms_since(started)
            log.debug("%s %s -> %s, %d bytes, %.0f ms", endpoint, params, status, len(body), ms)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise error_for_status(status, endpoint=endpoint, params=params, body=body, retry_after=retry_after)
        return Page(
            response,
            endpoint=endpoint,
            params=params,
            number=request.number,
            require_final_newline=request.require_final_newline,
            on_done=release,
            started=started,
            sink=sink,
        )

    def _observe(self, request: Request, response: requests.Response) -> BodySink | None:
        """Tell the observer (if any) about this answer; where its body goes. Its failure is only logged."""
        if self._observer is None:
            return None
        head = AnswerHead(
            url=response.request.url or request.url,
            endpoint=request.endpoint,
            params=dict(request.params),
            number=request.number,
            status=response.status_code,
            headers=dict(response.headers),
            request_headers=dict(response.request.headers),
        )
        try:
            return self._observer(head)
        except Exception as exc:  # an observer must never fail the request it watches
            log.warning("%s: the answer's observer failed (%s)", request.endpoint, exc)
            return None

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "a TerminalClient was used in a process other than the one that built it: "
                "build one client per worker process"
            )


def _new_session(threads: int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, threads), max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _take_slot(in_flight: Any) -> Callable[[], None]:
    """Acquire an in-flight slot; the returned callable gives it back (only once)."""
    if in_flight is None:
        return lambda: None
    in_flight.acquire()
    once = threading.Lock()  # a reader thread and the closing thread may both finish a page

    def release() -> None:
        if once.acquire(blocking=False):
            in_flight.release()

    return release


def _ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000
