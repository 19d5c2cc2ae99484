"""The client's v3 requests judged by the vendor's own contract (tests/data/v3-openapi-facts.json).

Every request spxdl sends to a v3 terminal is built here exactly as the client builds it (the real
``TerminalClient`` sends it, ``responses`` records it), for every dataset, every interval, every
greeks parameter a user can set, and with and without pagination; each one is then checked
against the facts of the vendor's OpenAPI document: the path exists, every required parameter is
present, no parameter the path does not list is sent, enum values and date/time formats are valid.
The CSV header spxdl pins for each v3 dataset must be the vendor's column list. New datasets,
intervals and rate names are picked up from spxdl's own tables without editing this file; a new
request setting needs a sample value below, and the test says so when one is missing. A ``*``
(every expiration of the day) is accepted only where the vendor's own sample URLs of that path
use it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from spxdl import config, terminal
from spxdl.datasets import DATASETS, INTERVALS, Dataset
from spxdl.terminal import HistoryQuery, TerminalClient

FACTS = json.loads((Path(__file__).parent / "data" / "v3-openapi-facts.json").read_text())["paths"]
BASE = "http://127.0.0.1:25503"
EXP, DAY = date(2024, 3, 15), date(2024, 3, 14)
DATE_FORM = re.compile(r"\d{8}|\d{4}-\d{2}-\d{2}")
TIME_FORM = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d{1,3})?")
NUMBER_FORM = re.compile(r"-?\d+(\.\d+)?")
V3_DATASETS = [dataset for dataset in DATASETS.values() if dataset.v3_path]
# A sample for every optional request setting of HistoryQuery; a new one fails the test below.
GREEKS_SAMPLES: dict[str, list[Any]] = {
    "rate": list(config.RATES),
    "rate_value": [0.0533, 0.0],
    "annual_div": [12.5],
}
CONTRACT_SAMPLES: dict[str, list[Any]] = {"strike": [5150.0, 5152.5], "right": ["C", "P"]}


# ---------------------------------------------------------------------------------------------
# the referee


def contract_for(path: str) -> tuple[str, dict[str, Any], dict[str, str]] | None:
    """The facts' entry for a request path (``/v3/...``), its name, and the values of its path parameters."""
    if not path.startswith("/v3/"):
        return None
    wanted = path[len("/v3"):]
    for name, entry in FACTS.items():
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", name) + "$"
        match = re.match(pattern, wanted)
        if match:
            return name, entry, match.groupdict()
    return None


def violations(url: str) -> list[str]:
    """Every way the request ``url`` breaks the vendor's v3 contract (empty when it obeys it)."""
    parts = urlsplit(url)
    found = contract_for(parts.path)
    if found is None:
        return [f"{parts.path}: no such path in the vendor's v3 contract"]
    name, entry, path_values = found
    params = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    declared = {p["name"]: p for p in entry["parameters"]}
    problems = [f"{name}: parameter {key!r} is not listed" for key in params if declared.get(key, {}).get("in") != "query"]
    for spec in entry["parameters"]:
        value = path_values.get(spec["name"]) if spec["in"] == "path" else params.get(spec["name"])
        if value is None:
            if spec["required"]:
                problems.append(f"{name}: required parameter {spec['name']!r} is missing")
            continue
        problems += value_problems(name, spec, value)
    return problems


def sample_wildcards(entry: dict[str, Any]) -> set[str]:
    """Parameters the vendor's own sample URLs of a path give as ``*``."""
    return {key for url in entry["sample_urls"] for key, values in parse_qs(urlsplit(url).query).items()
            if "*" in values}


def value_problems(path: str, spec: dict[str, Any], value: str) -> list[str]:
    where = f"{path}: {spec['name']}={value!r}"
    if value == "*" and spec["name"] in sample_wildcards(FACTS[path]):
        return []
    if spec.get("enum") and value not in [str(option) for option in spec["enum"]]:
        return [f"{where} is not one of {spec['enum']}"]
    form = {"date": DATE_FORM, "time": TIME_FORM}.get(spec.get("format") or "")
    if form is not None and not form.fullmatch(value):
        return [f"{where} is not a {spec['format']}"]
    if spec["type"] in ("number", "integer") and not NUMBER_FORM.fullmatch(value):
        return [f"{where} is not a {spec['type']}"]
    return []


def test_the_referee_catches_what_it_claims_to():
    good = f"{BASE}/v3/option/history/eod?symbol=SPXW&expiration=20240315&start_date=20240314&end_date=20240314"
    assert violations(good) == []
    assert any("'date' is not listed" in v for v in violations(good + "&date=20240314"))
    assert any("'end_date' is missing" in v for v in violations(good.replace("&end_date=20240314", "")))
    assert any("is not one of" in v for v in violations(good.replace("eod?", "quote?") + "&interval=2m"))
    assert any("not a date" in v for v in violations(good.replace("20240315", "15/03/2024")))
    assert violations(good.replace("20240315", "*")) == []  # the vendor's eod samples ask expiration=*
    assert any("not a date" in v for v in violations(
        f"{BASE}/v3/option/history/greeks/first_order?symbol=SPXW&expiration=*&date=20240314&interval=1m"))
    assert any("not a time" in v for v in violations(
        f"{BASE}/v3/option/history/quote?symbol=SPXW&expiration=20240315&date=20240314&interval=1m&start_time=9:30"))
    assert violations(f"{BASE}/v3/option/history/nothing") != []


# ---------------------------------------------------------------------------------------------
# the client's requests, recorded


class Recorder:
    """A v3 terminal in ``responses`` that answers every path with a minimal body and keeps the URLs."""

    def __init__(self, mock: responses.RequestsMock, *, next_page: str | None = None) -> None:
        self.urls: list[str] = []
        self.next_page = next_page
        mock.add_callback(responses.GET, re.compile(re.escape(BASE) + r"/.*"), callback=self.answer)

    def answer(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        self.urls.append(request.url)
        path = urlsplit(request.url).path
        if path.endswith("/mdds/status"):
            return 200, {"Content-Type": "text/plain"}, b"CONNECTED"
        found = contract_for(path)
        columns = found[1]["csv_columns"] if found else ["x"]
        rows = {"expiration": "SPXW,2024-03-15", "strike": "SPXW,5150.000", "date": "2024-03-14"}
        row = next((value for key, value in rows.items() if key in columns and "/list/" in path), None)
        if path.endswith("/calendar/on_date"):
            row = "open,09:30:00,16:00:00"
        body = ",".join(columns) + "\r\n" + (row + "\r\n" if row else "")
        headers = {"Content-Type": "text/csv"}
        if self.next_page and "/history/" in path and len(self.urls) < 4:
            headers["Next-Page"] = self.next_page
        return 200, headers, body.encode()


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def client() -> TerminalClient:
    return TerminalClient(BASE, api="v3", sleep=lambda seconds: None)


def fetch_history(dataset: Dataset, **settings: Any) -> None:
    """One history request as the engine makes it: daily datasets ask every expiration, an index none."""
    expiration = None if dataset.all_expirations or dataset.is_index else EXP
    root = "SPX" if dataset.is_index else "SPXW"
    with client() as terminal_client:
        for page in terminal_client.history(dataset, root, expiration, DAY, **settings):
            page.read()


def assert_obeys(urls: list[str]) -> None:
    assert urls, "no request was recorded"
    broken = {url: problems for url in urls if (problems := violations(url))}
    assert not broken, json.dumps(broken, indent=2)


def test_status_and_every_list_request_obey_the_contract(mock):
    recorder = Recorder(mock)
    with client() as terminal_client:
        assert terminal_client.status() == "CONNECTED"
        assert terminal_client.expirations("SPXW") == [EXP]
        assert terminal_client.strikes("SPXW", EXP) == [5150.0]
        assert terminal_client.dates("SPXW", EXP) == [DAY]
    status = [url for url in recorder.urls if url.endswith("/mdds/status")]
    # The status path is not in the OpenAPI document; the recorded body of a real terminal is its evidence.
    assert status and all(urlsplit(url).path == terminal.STATUS_PATHS["v3"] for url in status)
    assert_obeys([url for url in recorder.urls if url not in status])


@pytest.mark.parametrize("dataset", V3_DATASETS, ids=lambda d: d.name)
def test_every_history_request_obeys_the_contract(mock, dataset):
    recorder = Recorder(mock)
    fetch_history(dataset)
    history = [url for url in recorder.urls if "/history/" in url]
    assert_obeys(history)
    sent = parse_qs(urlsplit(history[0]).query)
    if dataset.all_expirations:
        assert sent["expiration"] == ["*"]  # one request for the whole day
    if dataset.is_index:
        assert "expiration" not in sent and sent["symbol"] == ["SPX"]


@pytest.mark.parametrize("dataset", [d for d in V3_DATASETS if not d.is_index], ids=lambda d: d.name)
def test_one_contract_of_every_dataset_is_asked_as_the_contract_spells_it(mock, dataset):
    recorder = Recorder(mock)
    for strike in CONTRACT_SAMPLES["strike"]:
        for right in CONTRACT_SAMPLES["right"]:
            fetch_history(dataset, strike=strike, right=right)
    history = [url for url in recorder.urls if "/history/" in url]
    assert_obeys(history)
    assert {(parse_qs(urlsplit(url).query)["strike"][0], parse_qs(urlsplit(url).query)["right"][0])
            for url in history} == {("5150.000", "call"), ("5150.000", "put"), ("5152.500", "call"), ("5152.500", "put")}


def test_the_calendar_requests_obey_the_contract(mock):
    recorder = Recorder(mock)
    with client() as terminal_client:
        assert terminal_client.holidays(2026) == []
        assert terminal_client.schedule(DAY).kind == "open"
    calendar = [url for url in recorder.urls if "/calendar/" in url]
    assert len(calendar) == 2
    assert_obeys(calendar)


@pytest.mark.parametrize("interval", list(INTERVALS))
@pytest.mark.parametrize("dataset", [d for d in V3_DATASETS if d.uses_interval], ids=lambda d: d.name)
def test_every_interval_and_window_is_spelled_as_the_contract_says(mock, dataset, interval):
    recorder = Recorder(mock)
    fetch_history(dataset, interval=interval, start_ms=34_200_000, end_ms=58_500_000)
    fetch_history(dataset, interval=interval, start_ms=34_200_500, end_ms=57_600_000)
    assert_obeys([url for url in recorder.urls if "/history/" in url])


def greeks_settings() -> list[dict[str, Any]]:
    """One request per sample of every optional greeks setting of HistoryQuery, and one with all of them set."""
    optional = [f.name for f in dataclasses.fields(HistoryQuery) if f.default is None and f.name not in CONTRACT_SAMPLES]
    unsampled = sorted(set(optional) - set(GREEKS_SAMPLES))
    assert not unsampled, f"add sample values for {unsampled} to GREEKS_SAMPLES (or CONTRACT_SAMPLES)"
    single = [{name: value} for name in optional for value in GREEKS_SAMPLES[name]]
    return [*single, {name: GREEKS_SAMPLES[name][0] for name in optional}]


@pytest.mark.parametrize("dataset", [d for d in V3_DATASETS if d.greeks_params], ids=lambda d: d.name)
def test_every_greeks_parameter_a_user_can_set_obeys_the_contract(mock, dataset):
    recorder = Recorder(mock)
    for settings in greeks_settings():
        fetch_history(dataset, **settings)
    history = [url for url in recorder.urls if "/history/" in url]
    assert len(history) == len(greeks_settings())
    assert_obeys(history)
    sent = {key for url in history for key in parse_qs(urlsplit(url).query)}
    assert {"rate_type", "rate_value", "annual_dividend"} <= sent


@pytest.mark.parametrize("dataset", V3_DATASETS, ids=lambda d: d.name)
def test_with_pagination_the_first_request_obeys_and_pages_are_fetched_as_given(mock, dataset):
    page_url = BASE + "/v3/page/7"
    recorder = Recorder(mock, next_page=page_url)
    fetch_history(dataset)
    first, *pages = [url for url in recorder.urls if not url.endswith("/mdds/status")]
    assert_obeys([first])
    assert pages and all(url == page_url for url in pages)  # exactly as given: no parameter added


# ---------------------------------------------------------------------------------------------
# the columns spxdl pins


@pytest.mark.parametrize("dataset", V3_DATASETS, ids=lambda d: d.name)
def test_the_pinned_v3_header_is_the_vendors_column_list(dataset):
    found = contract_for(dataset.v3_path)
    assert found is not None, f"{dataset.v3_path} is not in the vendor's contract"
    assert list(dataset.v3_columns) == found[1]["csv_columns"]


def test_every_list_column_the_client_reads_is_in_the_vendors_list_answers():
    for kind, column in (("expirations", "expiration"), ("strikes", "strike"), ("dates", "date")):
        found = contract_for(terminal.LIST_PATHS["v3"][kind])
        assert found is not None and column in found[1]["csv_columns"], kind
