"""The simulator's own v3 parameter table against the vendor's contract, and its answers to broken queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from spxdl.simulator import Simulator, contract
from spxdl.simulator.columns import BY_V3_PATH

FACTS = json.loads((Path(__file__).parent / "data" / "v3-openapi-facts.json").read_text())["paths"]
KINDS = {("string", None): contract.STRING, ("string", "date"): contract.DATE, ("string", "time"): contract.TIME,
         ("integer", "int32"): contract.INT, ("number", "float"): contract.FLOAT, ("array", None): contract.ARRAY,
         ("boolean", None): contract.BOOL}
DAY, EXP = "20240314", "20240315"


def facts_of(path: str) -> dict:
    """The facts entry of a simulator path (``/v3/option/list/dates/quote`` is the templated one)."""
    name = path[len("/v3"):]
    if name.startswith("/option/list/dates/"):
        name = "/option/list/dates/{request_type}"
    return FACTS[name]


def as_table(params: list[dict]) -> dict[str, tuple[bool, str, tuple[str, ...]]]:
    return {p["name"]: (p["required"], KINDS[(p["type"], p.get("format"))], tuple(str(v) for v in p.get("enum", ())))
            for p in params if p["in"] == "query"}


def wildcards_of(path: str) -> set[str]:
    """Parameters the vendor's sample URLs of the path give as ``*``."""
    return {name for url in facts_of(path)["sample_urls"] for name, value in
            (pair.split("=", 1) for pair in url.partition("?")[2].split("&") if "=" in pair) if value == "*"}


@pytest.mark.parametrize("path", sorted(contract.PARAMS))
def test_the_simulators_table_is_the_vendors_contract(path):
    ours = {p.name: (p.required, p.kind, p.values) for p in contract.PARAMS[path]}
    assert ours == as_table(facts_of(path)["parameters"])
    assert {p.name for p in contract.PARAMS[path] if p.wildcard} == wildcards_of(path)


def test_every_v3_path_the_simulator_serves_has_a_table_and_the_vendors_columns():
    assert set(BY_V3_PATH) <= set(contract.PARAMS)
    for path, columns in BY_V3_PATH.items():
        assert list(columns.v3_columns) == facts_of(path)["csv_columns"], path


@pytest.fixture(scope="module")
def sim():
    with Simulator(profile="tiny") as running:
        yield running


def get(sim, path: str, **params: str) -> requests.Response:
    return requests.get(sim.url + path, params=params, timeout=30)


EOD = {"symbol": "SPXW", "expiration": EXP, "start_date": DAY, "end_date": DAY}
QUOTE = {"symbol": "SPXW", "expiration": EXP, "date": DAY, "interval": "1m"}


@pytest.mark.parametrize(
    "path, params, named",
    [
        ("/v3/option/history/eod", {**{k: v for k, v in EOD.items() if "_date" not in k}, "date": DAY}, "date"),
        ("/v3/option/history/eod", {k: v for k, v in EOD.items() if k != "end_date"}, "end_date"),
        ("/v3/option/history/quote", {**QUOTE, "interval": "2m"}, "interval"),
        ("/v3/option/history/quote", {**QUOTE, "rate_type": "sofr"}, "rate_type"),
        ("/v3/option/history/quote", {**QUOTE, "start_time": "9.30"}, "start_time"),
        ("/v3/option/history/quote", {**QUOTE, "date": "14/03/2024"}, "date"),
        ("/v3/option/history/greeks/first_order", {**QUOTE, "rate_type": "libor"}, "rate_type"),
        ("/v3/option/list/strikes", {"symbol": "SPXW"}, "expiration"),
        ("/v3/option/list/expirations", {"symbol": "SPXW", "format": "xml"}, "format"),
    ],
    ids=["eod-date", "eod-no-end", "enum", "unlisted", "time-form", "date-form", "rate-enum", "no-expiration",
         "format-enum"],
)
def test_a_query_that_breaks_the_contract_gets_473_naming_the_parameter(sim, path, params, named):
    answer = get(sim, path, **params)
    assert answer.status_code == 473
    assert f"'{named}'" in answer.text or f"{named}=" in answer.text, answer.text


def test_queries_as_the_contract_spells_them_are_answered(sim):
    assert get(sim, "/v3/option/history/eod", **EOD).status_code == 200
    assert get(sim, "/v3/option/history/quote", **QUOTE).status_code == 200
    assert get(sim, "/v3/option/history/greeks/second_order", **QUOTE).status_code == 200
    assert get(sim, "/v3/option/history/quote", **QUOTE, right="C").status_code == 200  # seen from a real terminal


def test_listed_parameters_the_simulator_does_not_serve_say_so(sim):
    answer = get(sim, "/v3/option/history/quote", **QUOTE, strike_range="5")
    assert answer.status_code == 473 and "strike_range is not served by the simulator" in answer.text


def test_every_expiration_at_once_is_answered_where_the_vendor_shows_it_and_refused_elsewhere(sim):
    eod = get(sim, "/v3/option/history/eod", **{**EOD, "expiration": "*"})
    assert eod.status_code == 200 and len({line.split(",")[1] for line in eod.text.splitlines()[1:]}) > 1
    answer = get(sim, "/v3/option/history/greeks/first_order", **{**QUOTE, "expiration": "*"})
    assert answer.status_code == 473 and "expiration='*'" in answer.text  # not in the vendor's samples
    quote = get(sim, "/v3/option/history/quote", **{**QUOTE, "expiration": "*"})
    assert quote.status_code == 473 and "served for open_interest, eod and greeks/eod only" in quote.text


def test_the_index_and_the_calendar_answer_as_the_contract_spells_them(sim):
    assert get(sim, "/v3/index/history/price", symbol="SPX", date=DAY, interval="1m").status_code == 200
    assert get(sim, "/v3/calendar/year_holidays", year="2024").status_code == 200
    assert get(sim, "/v3/calendar/on_date", date=DAY).status_code == 200
    assert get(sim, "/v3/calendar/on_date").status_code == 473
