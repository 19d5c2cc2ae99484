"""The simulator's flavours over real loopback HTTP: the ThetaData Terminal's speech and thetadatadx-server's.

The thetadatadx flavour serves the same market and rows as the terminal flavour's v3, in the
server's words (its v0.2.0 source): errors naming the gRPC status, empty 200s, 503 with a whole
number of seconds in Retry-After, requests queued above the concurrency instead of refused, whole
answers with Content-Length, shortest numbers. The tier of a subscription applies to both flavours.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest
import requests

from conftest import cleaned
from spxdl.errors import ConfigError
from spxdl.simulator import Faults, Simulator
from spxdl.simulator.flavors import (
    ASSEMBLY_ROWS_PER_SECOND,
    MIN_TIER,
    TIERS,
    ThetadatadxFlavor,
    _dataset_paths,
    trim_numbers,
)
from spxdl.simulator.params import Reply

GREEKS = "/v3/option/history/greeks/first_order"
QUOTE = "/v3/option/history/quote"
ASK = {"symbol": "SPXW", "expiration": "20240315", "date": "20240314", "interval": "1m", "format": "csv"}


@pytest.fixture(scope="module", name="server")
def fixture_server():
    with Simulator(flavor="thetadatadx") as simulator:
        yield simulator


@pytest.fixture(name="clean_server")
def fixture_clean_server(server):
    yield from cleaned(server)


def get(sim: Simulator, path: str, **params: str) -> requests.Response:
    return requests.get(sim.url + path, params=params, timeout=30)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_status_is_connected_in_plain_text_with_a_charset(clean_server):
    answer = get(clean_server, "/v3/terminal/mdds/status")
    assert (answer.status_code, answer.text) == (200, "CONNECTED")
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_chain_is_the_terminals_rows_sent_whole_with_shortest_numbers(clean_server, sim):
    served = get(clean_server, GREEKS, **ASK)
    terminal = get(sim, GREEKS, **ASK)
    assert served.status_code == terminal.status_code == 200
    assert served.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert served.headers["Content-Length"] == str(len(served.content))
    assert "Transfer-Encoding" not in served.headers and "Next-Page" not in served.headers
    assert served.headers["Content-Disposition"] == 'attachment; filename="option_history_greeks_first_order.csv"'
    assert terminal.headers.get("Transfer-Encoding") == "chunked"  # the terminal flavour streams it
    ours, theirs = rows(served.text), rows(terminal.text)
    assert len(ours) == len(theirs) > 1000 and ours[0].keys() == theirs[0].keys()
    assert ours[0]["strike"] == "4900.0" and theirs[0]["strike"] == "4900.000"
    numeric = [name for name in ours[0] if name not in ("symbol", "expiration", "right", "timestamp",
                                                         "underlying_timestamp")]
    for mine, other in zip(ours, theirs):
        assert {name: float(mine[name]) for name in numeric} == {name: float(other[name]) for name in numeric}
        assert (mine["timestamp"], mine["right"]) == (other["timestamp"], other["right"])
    assert b"\r\n" in served.content and served.content.endswith(b"\r\n")


def test_no_data_is_a_500_naming_not_found(clean_server):
    answer = get(clean_server, GREEKS, **(ASK | {"date": "20240316"}))  # a Saturday
    assert answer.status_code == 500
    assert answer.text == "gRPC status NotFound: No data for the specified timeframe & contract."
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_a_window_without_rows_is_a_200_with_an_empty_body(clean_server):
    answer = get(clean_server, GREEKS, **(ASK | {"start_time": "17:00:00", "end_time": "17:30:00"}))
    assert (answer.status_code, answer.content, answer.headers["Content-Length"]) == (200, b"", "0")
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_a_bad_request_is_a_400_naming_the_first_missing_parameter(clean_server):
    answer = get(clean_server, GREEKS, symbol="SPXW", date="20240314", interval="1m")
    assert (answer.status_code, answer.text) == (400, "missing required parameter: 'expiration'")


def test_v2_names_are_a_410_listing_the_renames(clean_server):
    answer = get(clean_server, GREEKS, **(ASK | {"root": "SPXW"}))
    assert answer.status_code == 410 and "\troot -> symbol" in answer.text


def test_an_unknown_route_and_every_v2_path_are_404_with_an_empty_body(clean_server):
    for path in ("/v3/option/history/nothing", "/v2/system/mdds/status", "/v2/bulk_hist/option/greeks"):
        answer = get(clean_server, path)
        assert (answer.status_code, answer.content) == (404, b"")
        assert "Content-Type" not in answer.headers


@pytest.mark.parametrize("retry_after, shown", [(0.05, "1"), (2.5, "3")])
def test_a_busy_upstream_is_a_503_with_retry_after_in_whole_seconds(clean_server, retry_after, shown):
    clean_server.set_faults(Faults(throttle_rate=1.0, retry_after=retry_after))
    answer = get(clean_server, GREEKS, **ASK)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, shown)
    assert answer.text.startswith("upstream is at capacity; retry shortly: gRPC status ResourceExhausted: ")


def test_exhausted_upstream_failures_are_500s_in_the_servers_words(clean_server):
    clean_server.set_faults(Faults(error_rate=1.0))
    texts = {get(clean_server, "/v3/terminal/mdds/status").text for _ in range(12)}
    statuses = {status for by_status in clean_server.counters()["requests"].values() for status in by_status}
    assert statuses == {"500"}
    assert texts <= {"gRPC status Unavailable: upstream connection lost after retries",
                     "Request deadline exceeded after 300000 ms", "gRPC status Internal: upstream failed"}


def load(sim: Simulator, requests_at_once: int) -> list[int]:
    """Statuses of ``requests_at_once`` concurrent requests for an hour of one chain."""
    statuses: list[int] = []
    params = ASK | {"end_time": "10:30:00"}

    def ask() -> None:
        statuses.append(get(sim, GREEKS, **params).status_code)

    threads = [threading.Thread(target=ask) for _ in range(requests_at_once)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_above_its_concurrency_the_server_queues_where_the_terminal_refuses(clean_server, clean_sim):
    faults = Faults(max_concurrent=1, latency=0.2)
    clean_server.set_faults(faults)
    clean_sim.set_faults(faults)
    assert load(clean_server, 4) == [200] * 4
    assert 429 in load(clean_sim, 4)


def test_an_answer_waits_for_its_whole_chain_to_be_assembled():
    flavor = ThetadatadxFlavor()
    chain = Reply(200, b"x", rows=130_000)
    assert flavor.assembly_seconds(chain) == 130_000 / ASSEMBLY_ROWS_PER_SECOND > 0
    assert flavor.assembly_seconds(Reply(500, b"x")) == 0


@pytest.mark.parametrize("flavor, status, text", [
    ("thetadatadx", 500, "gRPC status PermissionDenied: Your subscription does not include this data."),
    ("terminal", 403, "Forbidden: your subscription does not include this endpoint"),
])
def test_a_dataset_above_the_tier_gets_the_flavours_permission_answer(flavor, status, text):
    with Simulator(flavor=flavor, tier="value") as sim:
        denied = get(sim, GREEKS, **ASK)
        allowed = get(sim, QUOTE, **ASK)
        v2 = None if flavor == "thetadatadx" else requests.get(
            sim.url + "/v2/bulk_hist/option/greeks", timeout=30,
            params={"root": "SPXW", "exp": "20240315", "start_date": "20240314", "end_date": "20240314",
                    "ivl": "60000", "use_csv": "true"})
    assert (denied.status_code, denied.text) == (status, text)
    assert allowed.status_code == 200
    assert v2 is None or (v2.status_code, v2.text.split(":")[0]) == (471, "PERMISSION")


def test_flavour_and_tier_are_checked():
    with pytest.raises(ConfigError, match="unknown simulator flavor"):
        Simulator(flavor="jetty")
    with pytest.raises(ConfigError, match="unknown subscription tier"):
        Simulator(tier="gold")
    with pytest.raises(ConfigError, match="v3 only"):
        Simulator(flavor="thetadatadx", apis=("v2", "v3"))


def test_numbers_are_trimmed_to_their_shortest_form_and_nothing_else_is():
    body = (b"symbol,strike,bid,delta,timestamp,size\r\n"
            b"SPXW,5150.000,12.30,-0.5000,2024-03-14T09:30:00.100,10\r\n"
            b"SPXW,4900.500,0.00,0.0001,2024-03-14T09:31:00,200\r\n")
    assert trim_numbers(body) == (b"symbol,strike,bid,delta,timestamp,size\r\n"
                                  b"SPXW,5150.0,12.3,-0.5,2024-03-14T09:30:00.100,10\r\n"
                                  b"SPXW,4900.5,0.0,0.0001,2024-03-14T09:31:00,200\r\n")


def test_each_datasets_least_tier_is_the_vendors_contract():
    facts = json.loads((Path(__file__).parent / "data" / "v3-openapi-facts.json").read_text())["paths"]
    vendor_words = {"free": "free", "value": "value", "standard": "standard", "professional": "pro"}
    for path, name in _dataset_paths().items():
        if path.startswith("/v3/"):
            assert MIN_TIER[name] == vendor_words[facts[path[len("/v3"):]]["min_subscription"]], path
    assert set(MIN_TIER.values()) <= set(TIERS)
