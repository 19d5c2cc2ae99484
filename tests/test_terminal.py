"""The package's layers; TerminalClient against canned HTTP answers (``responses``): retries, pages, lists."""

from __future__ import annotations

import io
import logging
import multiprocessing
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import requests
import urllib3.exceptions

from spxdl.datasets import GREEKS, OPEN_INTEREST
from spxdl.errors import (
    BadRequest,
    BodyTruncated,
    ConfigError,
    InvalidSession,
    NoData,
    PageExpired,
    PermissionDenied,
    RequestTooLarge,
    TerminalGone,
    TerminalUnavailable,
    Throttled,
)
from spxdl.terminal import TerminalClient

DATA = Path(__file__).parent / "data"
V3 = "http://127.0.0.1:25503"
V2 = "http://127.0.0.1:25510"
V3_STATUS = V3 + "/v3/terminal/mdds/status"
V2_STATUS = V2 + "/v2/system/mdds/status"
V3_GREEKS = V3 + "/v3/option/history/greeks/first_order"
V2_GREEKS = V2 + "/v2/bulk_hist/option/greeks"
EXP = date(2024, 3, 15)
DAY = date(2024, 3, 14)


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


def v3_client(rsps, sleeps, **kwargs) -> TerminalClient:
    rsps.get(V3_STATUS, body=body("v3-terminal-mdds-status-none.txt"), content_type="text/plain")
    return TerminalClient(V3, api="v3", sleep=sleeps, **kwargs)


def v2_client(rsps, sleeps, **kwargs) -> TerminalClient:
    rsps.get(V2_STATUS, body=b"CONNECTED")
    return TerminalClient(V2, api="v2", sleep=sleeps, **kwargs)


def read_history(client: TerminalClient, dataset=GREEKS) -> list[bytes]:
    return [page.read() for page in client.history(dataset, "SPXW", EXP, DAY)]


def data_calls(rsps, url: str) -> list:
    return [call for call in rsps.calls if call.request.url.split("?")[0] == url]


# ---------------------------------------------------------------------------------------------
# status mapping


@pytest.mark.parametrize(
    "status, error",
    [
        (472, NoData),
        (471, PermissionDenied),
        (403, PermissionDenied),  # real v3 terminals, for endpoints above the user's tier
        (478, InvalidSession),  # another terminal on the account
        (570, RequestTooLarge),
        (473, BadRequest),
        (475, BadRequest),
        (476, BadRequest),
        (410, BadRequest),
        (404, BadRequest),
        (418, BadRequest),
        (477, PageExpired),
    ],
)
def test_status_maps_to_its_error_without_retry(rsps, sleeps, status, error):
    client = v3_client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=status, body=b"x" * 300)
    with pytest.raises(error) as caught:
        read_history(client)
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.endpoint == "/v3/option/history/greeks/first_order"
    assert caught.value.params["symbol"] == "SPXW" and caught.value.params["expiration"] == "20240315"
    assert caught.value.body == "x" * 200
    assert len(data_calls(rsps, V3_GREEKS)) == 1 and sleeps == []


@pytest.mark.parametrize("status", [474, 571, 500, 502, 503, 504, 572, 599])
def test_server_side_statuses_are_unavailable_and_retried(rsps, sleeps, status):
    client = v3_client(rsps, sleeps, retries=2)
    rsps.get(V3_GREEKS, status=status, body=b"down")
    with pytest.raises(TerminalUnavailable) as caught:
        read_history(client)
    assert caught.value.status == status
    assert len(data_calls(rsps, V3_GREEKS)) == 3 and len(sleeps) == 2


def test_error_params_never_name_the_host(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=473, body=b"bad")
    with pytest.raises(BadRequest) as caught:
        read_history(client)
    assert "127.0.0.1" not in repr(caught.value.params) and "25503" not in repr(caught.value.params)


def test_request_too_large_suggests_a_coarser_interval(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=570, body=b"Too much data")
    with pytest.raises(RequestTooLarge, match="coarser interval"):
        read_history(client)


def test_recorded_410_names_the_deprecated_parameter_and_quotes_the_text(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3 + "/v3/option/list/strikes", status=410, body=body("v3-option-list-strikes-deprecated-param-AAPL.txt"))
    with pytest.raises(BadRequest) as caught:
        client.strikes("AAPL", EXP)
    text = str(caught.value)
    assert "parameter exp (this API calls it expiration)" in text
    assert "We have upgraded to API v3" in text


def test_bad_request_names_a_parameter_the_text_mentions(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, status=473, body=b"Invalid value for ivl: must be >= 0")
    with pytest.raises(BadRequest, match="parameter ivl"):
        read_history(client)


# ---------------------------------------------------------------------------------------------
# retries and the breaker


def test_throttle_waits_retry_after_without_spending_the_failure_budget(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=0)
    for _ in range(3):
        rsps.get(V3_GREEKS, status=429, body=b"queue full", headers={"Retry-After": "2"})
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    pages = read_history(client)
    assert pages == [body("handmade-v3-greeks-first-order-SPXW.csv")]
    assert sleeps == [2.0, 2.0, 2.0]


def test_throttle_without_retry_after_backs_off_within_the_cap(rsps, sleeps):
    client = v3_client(rsps, sleeps, backoff_base=0.5, backoff_cap=1.0)
    for _ in range(4):
        rsps.get(V3_GREEKS, status=429, body=b"queue full")
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    read_history(client)
    assert len(sleeps) == 4 and all(0.0 <= s <= 1.0 for s in sleeps)


def test_throttling_stops_after_the_maximum_count(rsps, sleeps):
    client = v3_client(rsps, sleeps, max_throttles=3)
    rsps.get(V3_GREEKS, status=429, body=b"queue full", headers={"Retry-After": "0.5"})
    with pytest.raises(Throttled) as caught:
        read_history(client)
    assert caught.value.retry_after == 0.5
    assert len(data_calls(rsps, V3_GREEKS)) == 4 and sleeps == [0.5] * 3


def test_unavailable_retries_with_full_jitter_then_succeeds(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=4, backoff_base=1.0, backoff_cap=3.0)
    for status in (503, 474, 571):
        rsps.get(V3_GREEKS, status=status, body=b"down")
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    assert read_history(client) == [body("handmade-v3-greeks-first-order-SPXW.csv")]
    caps = [1.0, 2.0, 3.0]
    assert len(sleeps) == 3 and all(0.0 <= s <= cap for s, cap in zip(sleeps, caps))


def test_unavailable_backoff_grows_with_the_attempt_and_stops_at_the_cap(rsps, sleeps):
    """Retry n waits uniform in [0, min(cap, base * 2**(n-1))]: over 40 requests, each retry's waits
    reach the upper half of its bound (so they grow past the previous bound) but never exceed it."""
    client = v3_client(rsps, sleeps, retries=6, backoff_base=1.0, backoff_cap=8.0)
    bounds = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    requests_made = 40
    for _ in range(requests_made):  # responses answers a URL's registrations in order
        for _ in bounds:
            rsps.get(V3_GREEKS, status=503, body=b"down")
        rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    for _ in range(requests_made):
        read_history(client)
    assert len(sleeps) == requests_made * len(bounds)
    for retry, bound in enumerate(bounds):
        waits = sleeps[retry :: len(bounds)]
        assert all(0.0 <= wait <= bound for wait in waits), (retry + 1, max(waits))
        assert max(waits) > bound / 2, (retry + 1, max(waits))  # a false failure has odds 2**-40
        assert min(waits) < bound / 2, (retry + 1, min(waits))  # jittered, not a fixed wait
    assert not client.breaker_open


def test_refused_connection_is_unavailable(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=1)
    rsps.get(V3_GREEKS, body=requests.ConnectionError("refused"))
    with pytest.raises(TerminalUnavailable, match="refused") as caught:
        read_history(client)
    assert caught.value.status is None and caught.value.endpoint == "/v3/option/history/greeks/first_order"
    assert len(sleeps) == 1


def test_read_timeout_before_the_headers_is_unavailable(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=0)
    rsps.get(V3_GREEKS, body=requests.ReadTimeout("slow"))
    with pytest.raises(TerminalUnavailable, match="read timeout"):
        read_history(client)


def test_exhausted_budget_opens_the_breaker_and_a_probe_closes_it(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=1)
    rsps.get(V3_GREEKS, status=503, body=b"down")
    rsps.get(V3_GREEKS, status=503, body=b"down")
    with pytest.raises(TerminalUnavailable):
        read_history(client)
    assert client.breaker_open
    rsps.get(V3_STATUS, body=b"DISCONNECTED")
    rsps.get(V3_STATUS, status=503, body=b"starting")
    rsps.get(V3_STATUS, body=b"CONNECTED")
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    assert read_history(client) == [body("handmade-v3-greeks-first-order-SPXW.csv")]
    assert not client.breaker_open
    order = [urlsplit(call.request.url).path.split("/")[-1] for call in rsps.calls]
    assert order == ["status", "first_order", "first_order", "status", "status", "status", "first_order"]


def test_breaker_probe_gives_up_and_fails_the_request(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=0, outage_limit=20)
    rsps.get(V3_GREEKS, status=500, body=b"down")
    with pytest.raises(TerminalUnavailable):
        read_history(client)
    rsps.get(V3_STATUS, body=b"ERROR")
    with pytest.raises(TerminalGone, match="did not come back within 20 s") as gone:
        read_history(client)
    assert str(gone.value).count("/v3/terminal/mdds/status") == 1  # named once, though it ends each probe's error
    assert 20 - 1e-9 <= sum(sleeps) <= 20 + 1e-9  # the probes' waits add up to the limit, never past it
    assert len(data_calls(rsps, V3_GREEKS)) == 1
    assert client.breaker_open


def test_breaker_probe_stops_everything_on_unverified_credentials(rsps, sleeps):
    client = v3_client(rsps, sleeps, retries=0)
    rsps.get(V3_GREEKS, status=500, body=b"down")
    with pytest.raises(TerminalUnavailable):
        read_history(client)
    rsps.get(V3_STATUS, body=b"UNVERIFIED")
    with pytest.raises(PermissionDenied, match="UNVERIFIED"):
        read_history(client)


def test_a_retry_warning_names_the_reason_and_each_request_logs_a_debug_line(rsps, sleeps, caplog):
    client = v3_client(rsps, sleeps)
    size = len(body("handmade-v3-greeks-first-order-SPXW.csv"))
    rsps.get(V3_GREEKS, status=429, body=b"queue full", headers={"Retry-After": "0"})
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"), headers={"Content-Length": str(size)})
    with caplog.at_level(logging.DEBUG, logger="spxdl.terminal"):
        read_history(client)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    debugs = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(warnings) == 1 and "429" in warnings[0] and "retrying" in warnings[0]
    assert any("-> 429" in line for line in debugs)
    assert any("first_order" in line and f"-> 200, {size} bytes" in line for line in debugs)


def test_a_body_without_length_or_chunking_is_warned_about(rsps, sleeps, caplog):
    client = v3_client(rsps, sleeps)
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))  # no Content-Length here
    with caplog.at_level(logging.WARNING, logger="spxdl.terminal"):
        read_history(client)
    assert any("neither Content-Length nor chunked" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# in-flight cap


def test_in_flight_slot_is_held_for_the_body_and_never_while_waiting(rsps):
    slots = multiprocessing.get_context().BoundedSemaphore(1)
    held_during_sleep = []

    def sleep(_seconds):
        free = slots.acquire(block=False)
        held_during_sleep.append(not free)
        if free:
            slots.release()

    rsps.get(V3_STATUS, body=b"CONNECTED")
    rsps.get(V3_GREEKS, status=503, body=b"down")
    rsps.get(V3_GREEKS, status=429, body=b"busy", headers={"Retry-After": "0"})
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    client = TerminalClient(V3, api="v3", in_flight=slots, sleep=sleep)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    assert not slots.acquire(block=False)  # held while the body is open
    page.read()
    assert slots.acquire(block=False)  # given back at the end of the body
    slots.release()
    assert held_during_sleep == [False, False]


def test_in_flight_slot_is_given_back_when_a_page_is_closed_early_or_fails(rsps, sleeps):
    slots = multiprocessing.get_context().BoundedSemaphore(1)
    client = v3_client(rsps, sleeps, in_flight=slots)
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    rsps.get(V3_GREEKS, status=472, body=b"no data")
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    page.read(10)
    pages.close()
    assert page.closed and slots.acquire(block=False)
    slots.release()
    with pytest.raises(NoData):
        read_history(client)
    assert slots.acquire(block=False)


# ---------------------------------------------------------------------------------------------
# streaming and truncation


class CutStream(io.RawIOBase):
    """A body that yields ``data`` and then fails with ``error`` as a dropped socket would."""

    def __init__(self, data: bytes, error: Exception) -> None:
        self._data, self._error = io.BytesIO(data), error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = self._data.readinto(buffer)
        if size == 0:
            raise self._error
        return size


@pytest.mark.parametrize(
    "error",
    [
        urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead"),
        ConnectionResetError(104, "Connection reset by peer"),
        urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out."),
    ],
    ids=["protocol", "reset", "timeout"],
)
def test_errors_while_reading_a_body_become_body_truncated(rsps, sleeps, error):
    client = v3_client(rsps, sleeps)
    data = body("handmade-v3-greeks-first-order-SPXW.csv")
    rsps.get(V3_GREEKS, body=io.BufferedReader(CutStream(data[:150], error), buffer_size=64))
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    with pytest.raises(BodyTruncated) as caught:
        page.read()
    assert page.error is caught.value
    assert data.decode().startswith(caught.value.body)
    with pytest.raises(BodyTruncated):
        page.read()  # the error sticks: a truncated page never looks complete


def test_a_zero_byte_read_is_not_the_end_of_the_body(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    data = body("handmade-v3-greeks-first-order-SPXW.csv")
    rsps.get(V3_GREEKS, body=data)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    assert page.readinto(bytearray(0)) == 0 and not page.complete
    assert page.read() == data and page.complete


def test_body_shorter_than_its_content_length_is_truncated(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    data = body("handmade-v3-greeks-first-order-SPXW.csv")
    length = {"Content-Length": str(len(data))}
    rsps.get(V3_GREEKS, body=data[:200], headers=length, auto_calculate_content_length=False)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    with pytest.raises(BodyTruncated, match="IncompleteRead"):
        page.read()


def test_body_ending_mid_line_is_truncated(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    data = body("handmade-v3-greeks-first-order-SPXW.csv")
    rsps.get(V3_GREEKS, body=data[:-5])
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    with pytest.raises(BodyTruncated, match="middle of a line"):
        page.read()
    assert isinstance(page.error, BodyTruncated) and not page.complete


def test_recorded_crlf_v2_csv_streams_through_pyarrow_unchanged(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    data = body("v2-hist-stock-quote-AAPL.csv")
    rsps.get(V2_GREEKS, body=data, headers={"Next-Page": "null"})
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    table = pacsv.open_csv(page, read_options=pacsv.ReadOptions(block_size=4096)).read_all()
    assert page.complete and page.bytes_read == len(data) == 19521
    assert table.num_rows == data.count(b"\r\n") - 1
    assert table.column_names[0] == "ms_of_day" and table.column("date")[0].as_py() == 20241107


def test_pyarrow_reraises_body_truncated_from_a_page_cut_after_the_header(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    data = body("v2-hist-stock-quote-AAPL.csv")
    cut = io.BufferedReader(CutStream(data[:9000], urllib3.exceptions.ProtocolError("broken")), buffer_size=1024)
    rsps.get(V2_GREEKS, body=cut)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    with pytest.raises(BodyTruncated) as caught:
        pacsv.open_csv(page, read_options=pacsv.ReadOptions(block_size=4096)).read_all()
    assert caught.value is page.error


def test_pyarrow_may_replace_a_cut_inside_the_header_line_but_page_error_keeps_it(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    data = body("v2-hist-stock-quote-AAPL.csv")
    cut = io.BufferedReader(CutStream(data[:20], urllib3.exceptions.ProtocolError("broken")), buffer_size=1024)
    rsps.get(V2_GREEKS, body=cut)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    page = next(pages)
    with pytest.raises((BodyTruncated, pa.ArrowInvalid)):
        pacsv.open_csv(page).read_all()
    assert isinstance(page.error, BodyTruncated)


# ---------------------------------------------------------------------------------------------
# pagination


def register_three_pages(rsps, base: str = V2) -> list[bytes]:
    bodies = [body(f"handmade-v2-bulk-greeks-SPXW-page{n}.csv") for n in (1, 2, 3)]
    rsps.get(V2_GREEKS, body=bodies[0], headers={"Next-Page": base + "/v2/page/101"})
    rsps.get(V2 + "/v2/page/101", body=bodies[1], headers={"Next-Page": base + "/v2/page/205"})
    rsps.get(V2 + "/v2/page/205", body=bodies[2], headers={"Next-Page": "null"})
    return bodies


def test_three_pages_follow_next_page_in_order(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    bodies = register_three_pages(rsps)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    seen = []
    for page in pages:
        fetched = len(rsps.calls)
        seen.append(page.read())
        assert len(rsps.calls) == fetched  # the next page waits for the caller
    assert seen == bodies
    assert [urlsplit(c.request.url).path for c in rsps.calls[1:]] == [
        "/v2/bulk_hist/option/greeks",
        "/v2/page/101",
        "/v2/page/205",
    ]
    assert urlsplit(rsps.calls[2].request.url).query == ""  # a page URL is fetched as given


def test_three_pages_read_by_pyarrow_make_one_table(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    register_three_pages(rsps)
    tables = [pacsv.open_csv(page).read_all() for page in client.history(GREEKS, "SPXW", EXP, DAY)]
    assert [t.num_rows for t in tables] == [2, 2, 1]
    assert pa.concat_tables(tables).column("strike").to_pylist() == [5065000] * 4 + [5070000]


def test_absent_next_page_ends_the_answer(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, body=body("handmade-v2-bulk-greeks-SPXW-page1.csv"))
    assert len(read_history(client)) == 1


def test_next_page_on_another_host_is_refused(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    register_three_pages(rsps, base="http://localhost:25510")
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    next(pages).read()
    with pytest.raises(BadRequest, match="not on the configured terminal"):
        next(pages)


def test_a_page_not_read_to_its_end_stops_pagination(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    register_three_pages(rsps)
    pages = client.history(GREEKS, "SPXW", EXP, DAY)
    next(pages).read(10)
    with pytest.raises(RuntimeError, match="not read to its end"):
        next(pages)
    assert len(data_calls(rsps, V2 + "/v2/page/101")) == 0


def test_no_data_on_the_first_page_is_no_data(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, status=472, body=body("handmade-v2-472-bulk.txt"))
    with pytest.raises(NoData) as caught:
        read_history(client)
    assert "No data for the specified timeframe and chain" in caught.value.body


@pytest.mark.parametrize("status", [472, 477])
def test_a_later_page_that_is_gone_is_page_expired(rsps, sleeps, status):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, body=body("handmade-v2-bulk-greeks-SPXW-page1.csv"), headers={"Next-Page": V2 + "/v2/page/7"})
    rsps.get(V2 + "/v2/page/7", status=status, body=b"gone")
    with pytest.raises(PageExpired) as caught:
        read_history(client)
    assert caught.value.endpoint == "/v2/page/7" and caught.value.params["exp"] == "20240315"


# ---------------------------------------------------------------------------------------------
# API detection


def test_auto_detects_v3_and_notes_the_simulator_header(rsps, sleeps):
    rsps.get("http://localhost:9999/v3/terminal/mdds/status", body=b"CONNECTED", headers={"X-Spxdl-Simulator": "1"})
    client = TerminalClient("http://localhost:9999/", sleep=sleeps).connect()
    assert (client.api, client.base_url, client.simulated) == ("v3", "http://localhost:9999", True)


def test_a_checked_terminal_is_not_asked_its_status_again(rsps, sleeps):
    # a worker whose parent found the terminal a moment ago goes straight to its data
    rsps.get(V2_GREEKS, body=body("handmade-v2-bulk-greeks-SPXW-page1.csv"))
    client = TerminalClient(V2, api="v2", sleep=sleeps, checked=True)
    assert read_history(client)
    assert [call.request.url.split("?")[0] for call in rsps.calls] == [V2_GREEKS]


@pytest.mark.parametrize("kwargs", [{"api": "auto", "base_url": V2}, {"api": "v2", "base_url": None}])
def test_a_checked_terminal_needs_its_url_and_api(kwargs):
    with pytest.raises(ConfigError, match="URL and API"):
        TerminalClient(checked=True, **kwargs)


def test_auto_falls_back_to_v2_on_the_same_url(rsps, sleeps):
    rsps.get("http://127.0.0.1:9999/v3/terminal/mdds/status", status=404, body=b"No such path")
    rsps.get("http://127.0.0.1:9999/v2/system/mdds/status", body=b"CONNECTED")
    client = TerminalClient("http://127.0.0.1:9999", sleep=sleeps).connect()
    assert (client.api, client.simulated) == ("v2", False)


def test_auto_without_url_tries_the_v3_port_then_the_v2_port(rsps, sleeps):
    rsps.get(V3_STATUS, body=requests.ConnectionError("refused"))
    rsps.get(V2_STATUS, body=b"CONNECTED")
    client = TerminalClient(sleep=sleeps).connect()
    assert (client.api, client.base_url) == ("v2", V2)
    assert sleeps == []  # detection does not retry a port nobody listens on


def test_no_terminal_at_all_is_unavailable_and_names_both_urls_once(rsps, sleeps):
    rsps.get(V3_STATUS, body=requests.ConnectionError("refused"))
    rsps.get(V2_STATUS, body=requests.ConnectionError("refused"))
    with pytest.raises(TerminalUnavailable) as caught:
        TerminalClient(sleep=sleeps).connect()
    message = str(caught.value)
    assert message == (f"no ThetaData Terminal answered at {V3} (v3) or {V2} (v2): "
                       "the terminal refused or dropped the connection (is it running?)")


def test_one_url_tried_with_both_apis_is_named_once():
    from spxdl.terminal.client import no_terminal_message

    same = no_terminal_message([("http://h:1", "v3", "refused"), ("http://h:1", "v2", "refused")])
    assert same == "no ThetaData Terminal answered at http://h:1 (v3 or v2): refused"
    different = no_terminal_message([("http://h:1", "v3", "refused"), ("http://h:2", "v2", "timed out")])
    assert different == "no ThetaData Terminal answered: http://h:1 (v3): refused; http://h:2 (v2): timed out"


def test_the_simulator_identity_is_kept_with_its_profile_and_seed(rsps, sleeps):
    from spxdl.terminal import simulator_facts

    identity = "spxdl-sim/0.1.0; profile=tiny; seed=3"
    rsps.get("http://127.0.0.1:9999/v3/terminal/mdds/status", body=b"CONNECTED", headers={"X-Spxdl-Simulator": identity})
    client = TerminalClient("http://127.0.0.1:9999", sleep=sleeps).connect()
    assert client.simulated and client.simulator == identity
    assert simulator_facts(client.simulator) == {"profile": "tiny", "seed": "3"}
    assert simulator_facts(None) == {}


@pytest.mark.parametrize(
    "word, error",
    [("UNVERIFIED", PermissionDenied), ("DISCONNECTED", TerminalUnavailable), ("ERROR", TerminalUnavailable)],
)
def test_status_words_that_stop_the_connection(rsps, sleeps, word, error):
    rsps.get(V3_STATUS, body=word.encode())
    with pytest.raises(error, match=word):
        TerminalClient(V3, sleep=sleeps).connect()


def test_a_cut_status_answer_is_unavailable_after_asking_again(rsps, sleeps):
    for _ in range(3):  # one fresh cut answer per request
        rsps.get(V3_STATUS, body=io.BufferedReader(CutStream(b"CONN", urllib3.exceptions.ProtocolError("broken"))))
    with pytest.raises(TerminalUnavailable, match="status answer was cut"):
        TerminalClient(V3, api="v3", retries=2, sleep=sleeps).connect()
    assert len(rsps.calls) == 3 and len(sleeps) == 2


def test_auto_never_falls_back_to_v2_when_v3_answers_with_an_error(rsps, sleeps):
    rsps.get("http://127.0.0.1:9999/v3/terminal/mdds/status", status=500, body=b"starting")
    rsps.get("http://127.0.0.1:9999/v2/system/mdds/status", body=b"CONNECTED")
    with pytest.raises(TerminalUnavailable):
        TerminalClient("http://127.0.0.1:9999", retries=2, sleep=sleeps).connect()
    assert [call.request.url.split("/")[3] for call in rsps.calls] == ["v3", "v3", "v3"]


def test_auto_keeps_v3_when_it_recovers_from_a_transient_error(rsps, sleeps):
    status = "http://127.0.0.1:9999/v3/terminal/mdds/status"
    rsps.get(status, status=474, body=b"DISCONNECTED")
    rsps.get(status, body=b"CONNECTED")
    rsps.get("http://127.0.0.1:9999/v2/system/mdds/status", body=b"CONNECTED")
    client = TerminalClient("http://127.0.0.1:9999", retries=2, sleep=sleeps).connect()
    assert client.api == "v3" and len(sleeps) == 1


def test_status_returns_the_word(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    assert client.status() == "CONNECTED"


def test_bad_configuration_is_refused_before_any_request():
    with pytest.raises(ConfigError):
        TerminalClient("127.0.0.1:25503")
    with pytest.raises(ConfigError):
        TerminalClient(V3, api="v4")


# ---------------------------------------------------------------------------------------------
# request parameters


def query_of(call) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(call.request.url).query).items()}


def test_v2_greeks_parameters_for_the_regular_session(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, body=body("handmade-v2-bulk-greeks-SPXW-page1.csv"))
    pages = client.history(GREEKS, "SPXW", EXP, DAY, rate="sofr", rate_value=0.0342, annual_div=0.013)
    list(page.read() for page in pages)
    assert query_of(rsps.calls[-1]) == {
        "root": "SPXW",
        "exp": "20240315",
        "start_date": "20240314",
        "end_date": "20240314",
        "ivl": "60000",
        "rth": "false",
        "start_time": "34200000",
        "end_time": "57600000",
        "use_csv": "true",
        "rate": "SOFR",
        "rate_value": "0.0342",
        "annual_div": "0.013",
    }


def test_v2_window_other_than_the_regular_session(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2_GREEKS, body=body("handmade-v2-bulk-greeks-SPXW-page1.csv"))
    list(page.read() for page in client.history(GREEKS, "SPXW", EXP, DAY, interval="5m", end_ms=58_500_000))
    query = query_of(rsps.calls[-1])
    window = (query["ivl"], query["rth"], query["start_time"], query["end_time"])
    assert window == ("300000", "false", "34200000", "58500000")


def test_v3_greeks_parameters_send_the_rate_in_percent(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3_GREEKS, body=body("handmade-v3-greeks-first-order-SPXW.csv"))
    greeks = {"rate": "SOFR", "rate_value": 0.0342, "annual_div": 0.013}
    pages = client.history(GREEKS, "SPXW", EXP, DAY, end_ms=58_500_123, **greeks)
    list(page.read() for page in pages)
    assert query_of(rsps.calls[-1]) == {
        "symbol": "SPXW",
        "expiration": "20240315",
        "date": "20240314",
        "interval": "1m",
        "start_time": "09:30:00",
        "end_time": "16:15:00.123",
        "format": "csv",
        "rate_type": "sofr",
        "rate_value": "3.42",
        "annual_dividend": "0.013",
    }


def test_datasets_without_an_interval_send_neither_interval_nor_window(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    header = b"root,expiration,strike,right,ms_of_day,open_interest,date\r\n"
    rsps.get(V2 + "/v2/bulk_hist/option/open_interest", body=header)
    list(page.read() for page in client.history(OPEN_INTEREST, "SPXW", EXP, DAY, rate_value=0.05))
    expected = {"root": "SPXW", "exp": "20240315", "start_date": "20240314", "end_date": "20240314", "use_csv": "true"}
    assert query_of(rsps.calls[-1]) == expected


def test_unknown_interval_is_a_config_error(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    with pytest.raises(ConfigError, match="interval"):
        client.history(GREEKS, "SPXW", EXP, DAY, interval="7m")


# ---------------------------------------------------------------------------------------------
# lists


def test_v3_expirations_from_the_recorded_json(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3 + "/v3/option/list/expirations", body=body("v3-option-list-expirations-SPY.json"))
    expirations = client.expirations("SPY")
    assert expirations[0] == date(2012, 6, 1) and expirations[-1] == date(2028, 12, 15)
    assert expirations == sorted(set(expirations)) and len(expirations) > 1000
    assert query_of(rsps.calls[-1]) == {"symbol": "SPY", "format": "csv"}


def test_v3_dates_from_the_recorded_json(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3 + "/v3/option/list/dates/quote", body=body("v3-option-list-dates-quote-AAPL.json"))
    dates = client.dates("AAPL", date(2024, 4, 19))
    assert dates[0] == date(2023, 8, 17) and all(isinstance(d, date) for d in dates)
    assert query_of(rsps.calls[-1]) == {"symbol": "AAPL", "expiration": "20240419", "format": "csv"}


def test_v3_expirations_from_columnar_json(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3 + "/v3/option/list/expirations", body=body("handmade-v3-list-expirations-columnar.json"))
    assert client.expirations("SPXW") == [date(2024, 3, 14), date(2024, 3, 15), date(2024, 3, 18)]


def test_v3_strikes_from_quoted_csv_in_dollars(rsps, sleeps):
    client = v3_client(rsps, sleeps)
    rsps.get(V3 + "/v3/option/list/strikes", body=body("handmade-v3-list-strikes-SPXW.csv"))
    assert client.strikes("SPXW", EXP) == [5065.0, 5070.0, 5075.5]


def test_v2_expirations_from_crlf_csv(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2 + "/v2/list/expirations", body=body("handmade-v2-list-expirations-SPXW.csv"))
    assert client.expirations("SPXW") == [date(2024, 3, 14), date(2024, 3, 15), date(2024, 3, 18)]
    assert query_of(rsps.calls[-1]) == {"root": "SPXW", "use_csv": "true"}


def test_v2_strikes_from_the_json_envelope_in_dollars(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2 + "/v2/list/strikes", body=body("handmade-v2-list-strikes-SPXW.json"))
    assert client.strikes("SPXW", EXP) == [5065.0, 5070.0, 5075.0]


def test_old_terminal_200_with_no_data_header_is_no_data(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2 + "/v2/list/expirations", body=body("handmade-v2-list-expirations-no-data.json"))
    with pytest.raises(NoData) as caught:
        client.expirations("SPXW")
    assert caught.value.status == 472 and "No data for the specified timeframe" in caught.value.body


def test_list_json_header_next_page_is_followed(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    first = b'{"header": {"next_page": "' + V2.encode() + b'/v2/page/9", "format": ["date"]}, "response": [20240315]}'
    last = b'{"header": {"next_page": "null", "format": ["date"]}, "response": [20240314]}'
    rsps.get(V2 + "/v2/list/expirations", body=first)
    rsps.get(V2 + "/v2/page/9", body=last)
    assert client.expirations("SPXW") == [date(2024, 3, 14), date(2024, 3, 15)]


def test_list_csv_cut_mid_line_is_truncated(rsps, sleeps):
    client = v2_client(rsps, sleeps)
    rsps.get(V2 + "/v2/list/expirations", body=b"date\r\n20240315\r\n202403")
    with pytest.raises(BodyTruncated):
        client.expirations("SPXW")


# ---------------------------------------------------------------------------------------------
# one client per process


def _use_inherited_client(client: TerminalClient, results) -> None:
    try:
        client.status()
        results.put("used")
    except RuntimeError as exc:
        results.put(str(exc))


def test_a_client_inherited_across_fork_refuses_to_work(rsps, sleeps):
    client = v3_client(rsps, sleeps).connect()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_use_inherited_client, args=(client, results))
    child.start()
    child.join(20)
    assert "build one client per worker process" in results.get(timeout=5)



# ---------------------------------------------------------------------------------------------
# the observer: told about every answer, given every body byte as read


class Seen:
    """An observer keeping each answer's head and body, and whether the body arrived whole."""

    def __init__(self, fail: bool = False) -> None:
        self.answers: list[list] = []
        self.fail = fail

    def __call__(self, head):
        if self.fail:
            raise OSError("no space left on device")
        answer = [head, b"", None]
        self.answers.append(answer)

        class Sink:
            def write(self, chunk: bytes) -> None:
                answer[1] += chunk

            def finish(self, complete: bool) -> None:
                answer[2] = complete

        return Sink()


def test_the_observer_sees_every_answer_byte_for_byte_errors_included(rsps, sleeps):
    greeks = body("handmade-v3-greeks-first-order-SPXW.csv")
    rsps.get(V3_GREEKS, body=greeks, content_type="text/csv")
    rsps.get(V3 + "/v3/option/list/strikes", status=472, body=b"No data for the specified timeframe")
    seen = Seen()
    client = v3_client(rsps, sleeps, observer=seen)
    assert read_history(client) == [greeks]
    with pytest.raises(NoData):
        client.strikes("SPXW", EXP)
    status, history, error = seen.answers
    assert status[0].endpoint == "/v3/terminal/mdds/status" and status[1] == b"CONNECTED" and status[2] is True
    assert history[0].params["symbol"] == "SPXW" and history[1] == greeks and history[2] is True
    assert history[0].url.startswith(V3_GREEKS + "?") and history[0].status == 200
    assert error[0].status == 472 and error[1] == b"No data for the specified timeframe" and error[2] is True


def test_a_cut_body_is_seen_unfinished_and_a_body_without_its_last_line_end_whole(rsps, sleeps):
    rsps.get(V3_GREEKS, body=b"symbol,expiration\r\nSPXW,2024-03-15", content_type="text/csv")
    seen = Seen()
    client = v3_client(rsps, sleeps, observer=seen)
    with pytest.raises(BodyTruncated):
        read_history(client)
    assert seen.answers[-1][1] == b"symbol,expiration\r\nSPXW,2024-03-15" and seen.answers[-1][2] is True


def test_an_observer_that_fails_never_fails_the_request(rsps, sleeps, caplog):
    greeks = body("handmade-v3-greeks-first-order-SPXW.csv")
    rsps.get(V3_GREEKS, body=greeks, content_type="text/csv")
    client = v3_client(rsps, sleeps, observer=Seen(fail=True))
    with caplog.at_level(logging.WARNING, logger="spxdl"):
        assert read_history(client) == [greeks]
    assert "observer failed" in caplog.text
