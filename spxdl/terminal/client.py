"""``TerminalClient``: what spxdl asks a terminal: its status, lists, history pages, its calendar.

A client talks to the terminal's local HTTP API, v2 (port 25510) or v3 (port 25503), and turns
every answer into either data or one exception of ``spxdl.errors``. ``history()`` yields ``Page``
objects that the CSV reader pulls from the socket directly; no body is held whole. Finding the
terminal and the retry loop are its base's (``connection.TerminalConnection``, which also says
why a client is built per worker process); pagination is here.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urljoin, urlsplit

from spxdl.datasets import Dataset
from spxdl.errors import BadRequest, ConfigError, NoData, PageExpired, SchemaMismatch
from spxdl.terminal.adapter import Request
from spxdl.terminal.connection import TerminalConnection, no_terminal_message
from spxdl.terminal.page import Page, check_read_to_end, refuse_empty
from spxdl.urls import origin
from spxdl.terminal.wire import (
    CALENDAR_PATHS,
    LIST_PATHS,
    RTH_END_MS,
    RTH_START_MS,
    CalendarDay,
    HistoryQuery,
    calendar_params,
    list_params,
    parse_calendar_body,
    parse_list_body,
    parse_wire_date,
    v2_history_params,
    v3_history_params,
)

__all__ = ["TerminalClient", "no_terminal_message"]


class TerminalClient(TerminalConnection):
    """A client of one ThetaData Terminal, for one process and its threads; a context manager.

    Built as its base ``TerminalConnection`` is (the terminal's URL and API, threads, timeouts,
    the retry budget, the shared in-flight semaphore, the observer, the outage limit).
    """

    # -- calls -------------------------------------------------------------------------------

    def status(self) -> str:
        """The terminal's MDDS status word: CONNECTED, UNVERIFIED, DISCONNECTED or ERROR."""
        self.connect()
        word, _ = self._status_word(self.base_url, self.api, use_breaker=True)
        return word

    def expirations(self, root: str) -> list[date]:
        """Every expiration of ``root`` the terminal lists, ascending."""
        values = self._list("expirations", ("expiration", "date"), root)
        return sorted({parse_wire_date(value) for value in values})

    def strikes(self, root: str, expiration: date) -> list[float]:
        """The strikes of one expiration in dollars, ascending."""
        values = self._list("strikes", ("strike",), root, expiration)
        divisor = 1000.0 if self.api == "v2" else 1.0  # v2 lists 1/10 cents
        return sorted({float(value) / divisor for value in values})

    def dates(self, root: str, expiration: date) -> list[date]:
        """The trade dates with quotes for one expiration, ascending."""
        values = self._list("dates", ("date",), root, expiration)
        return sorted({parse_wire_date(value) for value in values})

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
    ) -> Iterator[Page]:
        """The CSV pages of one expiration on one trade date, in order.

        ``expiration`` None asks every expiration of the day in one request (the daily datasets) and
        is what an index dataset passes. ``strike`` and ``right`` ("C"/"P") narrow a v3 request to
        one contract (v2 bulk endpoints serve the whole chain). NoData when the terminal has none
        (472). A page is fetched only after the previous one was read to its end. ``rate_value`` is a fraction.
        """
        self.connect()
        path = dataset.path(self.api)
        if path is None:
            raise ConfigError(f"dataset {dataset.name} has no endpoint in API {self.api}", key="datasets")
        build = v2_history_params if self.api == "v2" else v3_history_params
        query = HistoryQuery(dataset, root, expiration, trade_date, interval, start_ms, end_ms, rate, rate_value,
                             annual_div, strike, right)
        params = build(query)
        return self._pages(path, params, require_final_newline=True)

    def holidays(self, year: int) -> list[CalendarDay]:
        """The terminal's holidays and early closes of ``year`` (v3 only; ConfigError on v2)."""
        return self._calendar("year", calendar_params(year=year))

    def schedule(self, day: date) -> CalendarDay:
        """The terminal's schedule of one day (v3 only): open, early close or closed."""
        rows = self._calendar("day", calendar_params(day=day))
        if len(rows) == 1:
            return rows[0]
        raise SchemaMismatch(f"{CALENDAR_PATHS['day']}: {len(rows)} rows for one day", columns=[])

    def _calendar(self, kind: str, params: dict[str, str]) -> list[CalendarDay]:
        if self.connect().api != "v3":
            raise ConfigError("the terminal's calendar is served by API v3 only", key="calendar_source")
        path = CALENDAR_PATHS[kind]
        return [day for text in self._small_bodies(path, params, lambda text: None)
                for day in parse_calendar_body(text, endpoint=path, params=params)]

    def _list(self, kind: str, columns: tuple[str, ...], root: str, expiration: date | None = None) -> list[Any]:
        """The raw values of a list endpoint, over all its pages."""
        self.connect()
        path, params = LIST_PATHS[self.api][kind], list_params(self.api, root, expiration)
        values: list[Any] = []

        def parse(text: str) -> str | None:
            page_values, json_next = parse_list_body(text, columns, endpoint=path, params=params)
            values.extend(page_values)
            return json_next

        self._small_bodies(path, params, parse)
        return values

    def _small_bodies(self, path: str, params: dict[str, str], parse: Callable[[str], str | None]) -> list[str]:
        """The text of every page of a small answer; ``parse`` reads each and may name a JSON next page."""
        texts = []
        for page in self._pages(path, params, require_final_newline=False):
            texts.append(page.read().decode("utf-8"))  # list and calendar bodies are small
            page.next_url = page.next_url or parse(texts[-1])
        return texts

    # -- pagination --------------------------------------------------------------------------

    def _pages(self, endpoint: str, params: dict[str, str], *, require_final_newline: bool) -> Iterator[Page]:
        """Each page of one answer; the next is fetched only after the previous was read to its end."""
        url = self.base_url + endpoint
        request = Request(
            url, urlsplit(url).path, query=params, params=dict(params), require_final_newline=require_final_newline
        )
        while True:
            page = self._open_page(request, endpoint)
            try:
                yield page
                check_read_to_end(page)
            finally:
                page.close()
            if page.next_url is None:
                return
            request = request.next_page(self._next_page_url(page.next_url, endpoint, params))

    def _open_page(self, request: Request, first_endpoint: str) -> Page:
        try:
            page = self._request(request)
            if request.require_final_newline:
                refuse_empty(page)
            return page
        except NoData as exc:
            if request.number == 1:
                raise
            # Data ran out part-way through an answer: the earlier pages cannot be trusted alone.
            raise PageExpired(
                f"page {request.number} of {first_endpoint} answered 472 NO_DATA",
                endpoint=request.endpoint,
                params=request.params,
                status=exc.status,
                body=exc.body,
            ) from exc

    def _next_page_url(self, next_url: str, endpoint: str, params: Mapping[str, Any]) -> str:
        """The next page's absolute URL; BadRequest unless it is on the configured terminal."""
        url = urljoin(self.base_url + "/", next_url)
        if origin(url) != origin(self.base_url):
            raise BadRequest(
                f"the terminal's next page {url} is not on the configured terminal {self.base_url}: "
                "set the terminal URL to the host spelling and port the terminal itself uses",
                endpoint=endpoint,
                params=params,
                status=200,
            )
        return url
