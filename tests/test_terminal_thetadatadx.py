"""TerminalClient against thetadatadx-server's answers (canned with ``responses``; texts from its v0.2.0 source).

The server serves the terminal's ``/v3`` routes but says what went wrong in its text, not its code:
``gRPC status NotFound: ...`` in a 500 is no data, ``PermissionDenied`` and ``Unauthenticated`` a
permission answer, ``ResourceExhausted`` (or a 503 with ``Retry-After``) a throttle, a 200 without a
body no data, and a 400 names the parameter. One client reads both servers without asking which.
"""

from __future__ import annotations

import pytest

from spxdl.datasets import EOD, GREEKS
from spxdl.errors import BadRequest, NoData, PageExpired, PermissionDenied, TerminalUnavailable, Throttled
from spxdl.terminal import TerminalClient, error_for_status, grpc_status
from test_terminal import DAY, EXP, V3, V3_GREEKS, V3_STATUS, data_calls

CSV = "text/csv; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
HEADER = ("symbol,expiration,strike,right,timestamp,bid,ask,delta,theta,vega,rho,epsilon,lambda,implied_vol,"
          "iv_error,underlying_timestamp,underlying_price\r\n")
ROW = ("SPXW,2024-03-15,5150.0,CALL,2024-03-14T09:30:00,12.3,12.6,0.5123,-1.2345,2.5,0.75,-0.33,20.5,0.1834,0.0001,"
       "2024-03-14T09:30:00,5150.25\r\n")


def client(rsps, sleeps, **kwargs) -> TerminalClient:
    rsps.get(V3_STATUS, body=b"CONNECTED", content_type=TEXT)
    return TerminalClient(V3, api="v3", sleep=sleeps, **kwargs)


def read(terminal: TerminalClient, dataset=GREEKS) -> list[bytes]:
    expiration = None if dataset.all_expirations else EXP
    return [page.read() for page in terminal.history(dataset, "SPXW", expiration, DAY)]


@pytest.mark.parametrize(
    "status, text, error",
    [
        (500, "gRPC status NotFound: No data for the specified timeframe & contract.", NoData),
        (500, "gRPC status PermissionDenied: Your subscription does not include this data.", PermissionDenied),
        (500, "gRPC status Unauthenticated: session expired", PermissionDenied),
        (500, "gRPC status InvalidArgument: bad interval", BadRequest),
    ],
)
def test_a_grpc_status_in_the_text_decides_without_a_retry(rsps, sleeps, status, text, error):
    terminal = client(rsps, sleeps, retries=3)
    rsps.get(V3_GREEKS, status=status, body=text.encode(), content_type=TEXT)
    with pytest.raises(error) as caught:
        read(terminal)
    assert type(caught.value) is error and caught.value.status == status
    assert caught.value.body == text and "gRPC status" in str(caught.value)
    assert len(data_calls(rsps, V3_GREEKS)) == 1 and sleeps == []


def test_a_permission_answer_says_what_to_check(rsps, sleeps):
    terminal = client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=500, body=b"gRPC status Unauthenticated: session expired", content_type=TEXT)
    with pytest.raises(PermissionDenied, match="credentials thetadatadx-server logs in with"):
        read(terminal)


@pytest.mark.parametrize("text", [
    "gRPC status Unavailable: upstream connection reset",
    "gRPC status DeadlineExceeded: deadline",
    "Request deadline exceeded after 300000 ms",
    "gRPC status Internal: oops",
])
def test_exhausted_upstream_failures_are_a_server_error_and_retried(rsps, sleeps, text):
    terminal = client(rsps, sleeps, retries=2)
    rsps.get(V3_GREEKS, status=500, body=text.encode(), content_type=TEXT)
    with pytest.raises(TerminalUnavailable):
        read(terminal)
    assert len(data_calls(rsps, V3_GREEKS)) == 3 and len(sleeps) == 2


def test_a_503_with_retry_after_is_waited_out_outside_the_failure_budget(rsps, sleeps):
    terminal = client(rsps, sleeps, retries=0)
    busy = b"upstream is at capacity; retry shortly: gRPC status ResourceExhausted: too many requests"
    for _ in range(3):
        rsps.get(V3_GREEKS, status=503, body=busy, content_type=TEXT, headers={"Retry-After": "2"})
    rsps.get(V3_GREEKS, status=200, body=(HEADER + ROW).encode(), content_type=CSV)
    assert read(terminal) == [(HEADER + ROW).encode()]
    assert sleeps == [2.0, 2.0, 2.0]


def test_a_503_with_retry_after_but_no_grpc_text_is_a_throttle(rsps, sleeps):
    terminal = client(rsps, sleeps, retries=0)
    rsps.get(V3_GREEKS, status=503, body=b"busy", content_type=TEXT, headers={"Retry-After": "1"})
    rsps.get(V3_GREEKS, status=200, body=(HEADER + ROW).encode(), content_type=CSV)
    assert read(terminal) == [(HEADER + ROW).encode()] and sleeps == [1.0]


def test_resource_exhausted_in_a_500_is_a_throttle_too(rsps, sleeps):
    error = error_for_status(500, endpoint="/v3/x", body="gRPC status ResourceExhausted: slow down", retry_after=None)
    assert type(error) is Throttled and error.retry_after is None


def test_a_200_without_a_body_is_no_data_for_that_request(rsps, sleeps):
    terminal = client(rsps, sleeps, retries=3)
    rsps.get(V3 + EOD.v3_path, status=200, body=b"", content_type=CSV, auto_calculate_content_length=True)
    with pytest.raises(NoData, match="200 with an empty body") as caught:
        read(terminal, EOD)
    assert caught.value.params["expiration"] == "*" and sleeps == []


@pytest.mark.parametrize("framed", [True, False], ids=["content-length", "unframed"])
def test_a_body_looked_at_for_emptiness_is_still_read_whole(rsps, sleeps, framed):
    terminal = client(rsps, sleeps)
    data = (HEADER + ROW * 5000).encode()
    rsps.get(V3_GREEKS, status=200, body=data, content_type=CSV, auto_calculate_content_length=framed)
    assert read(terminal) == [data]


def test_an_unframed_empty_body_is_no_data_too(rsps, sleeps):
    terminal = client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=200, body=b"", content_type=CSV)  # neither Content-Length nor chunked
    with pytest.raises(NoData, match="200 with an empty body"):
        read(terminal)


def test_an_empty_later_page_is_page_expired(rsps, sleeps):
    terminal = client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=200, body=(HEADER + ROW).encode(), content_type=CSV,
             headers={"Next-Page": V3 + "/v3/page/2"})
    rsps.get(V3 + "/v3/page/2", status=200, body=b"", content_type=CSV)
    pages = terminal.history(GREEKS, "SPXW", EXP, DAY)
    next(pages).read()
    with pytest.raises(PageExpired):
        next(pages)


def test_a_400_names_the_missing_parameter(rsps, sleeps):
    terminal = client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=400, body=b"missing required parameter: 'start_date' (Start date YYYYMMDD)",
             content_type=TEXT)
    with pytest.raises(BadRequest, match=r"\(400 Bad Request\); parameter start_date") as caught:
        read(terminal)
    assert len(data_calls(rsps, V3_GREEKS)) == 1 and sleeps == []
    assert caught.value.status == 400


def test_a_400_quoting_a_value_names_only_our_parameter(rsps, sleeps):
    error = error_for_status(400, endpoint="/v3/x", params={"interval": "7m"},
                             body="invalid value for 'interval': '7m'")
    assert str(error).split(";")[1].strip().startswith("parameter interval")


def test_the_servers_410_names_the_renamed_parameters(rsps, sleeps):
    text = ("We have upgraded to API v3. Please use API v3 query parameters instead.\n"
            "Deprecated query parameters:\n\troot -> symbol\n\texp -> expiration\n")
    error = error_for_status(410, endpoint="/v3/x", params={"root": "SPXW"}, body=text)
    assert type(error) is BadRequest and "root (this API calls it symbol), exp (this API calls it expiration)" in str(error)


def test_an_unknown_route_answers_404_empty_and_is_a_bad_request(rsps, sleeps):
    terminal = client(rsps, sleeps)
    rsps.get(V3_GREEKS, status=404, body=b"")
    with pytest.raises(BadRequest, match="404 NO_IMPL"):
        read(terminal)


def test_the_grpc_status_is_read_from_anywhere_in_the_text():
    assert grpc_status("upstream is at capacity; retry shortly: gRPC status ResourceExhausted: x") == "ResourceExhausted"
    assert grpc_status("gRPC status NotFound: none") == "NotFound"
    assert grpc_status("No data for the specified timeframe and chain. Debug code 1") is None
    assert grpc_status("") is None


def test_the_java_terminals_own_answers_mean_what_they_meant():
    no_data = "No data for the specified timeframe and chain. Debug code 1"
    assert type(error_for_status(472, endpoint="/v3/x", body=no_data)) is NoData
    assert type(error_for_status(503, endpoint="/v3/x", body="down")) is TerminalUnavailable
    assert type(error_for_status(500, endpoint="/v3/x", body="Internal Server Error")) is TerminalUnavailable
