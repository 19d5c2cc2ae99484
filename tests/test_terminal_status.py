"""spxdl.terminal.status: what a status, an old terminal's error_type and a Retry-After mean."""

from __future__ import annotations

import pickle

import pytest

from spxdl import terminal
from spxdl.errors import BadRequest, NoData, PermissionDenied, TerminalUnavailable, Throttled


def test_errors_from_the_status_mapping_survive_a_pickle_round_trip():
    error = terminal.error_for_status(429, endpoint="/v3/x", params={"symbol": "SPXW"}, body="busy", retry_after=1.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.retry_after, copy.params, copy.status) == (Throttled, 1.5, {"symbol": "SPXW"}, 429)


def test_retry_after_as_an_http_date():
    assert terminal.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert terminal.parse_retry_after("3") == 3.0
    assert terminal.parse_retry_after("soon") is None
    assert terminal.parse_retry_after(None) is None


@pytest.mark.parametrize(
    "error_type, error, status",
    [
        ("NO_DATA", NoData, 472),
        ("no_data", NoData, 472),
        ("PERMISSION", PermissionDenied, 471),
        ("DISCONNECTED", TerminalUnavailable, 474),
        ("SOMETHING_NEW", BadRequest, 470),
    ],
)
def test_an_old_terminals_error_type_means_what_its_status_means(error_type, error, status):
    found = terminal.error_for_error_type(error_type, endpoint="/v2/list/expirations", body="the text")
    assert type(found) is error and found.status == status and found.body == "the text"
