"""Issue 2's "Done when" points for the realistic profile (one test builds a full near-term chain)."""

from __future__ import annotations

import pytest
import requests

from spxdl.simulator import Simulator

DOC_V2_GREEKS = ("root,expiration,strike,right,ms_of_day,bid,ask,delta,theta,vega,rho,epsilon,lambda,"
                 "implied_vol,iv_error,ms_of_day2,underlying_price,date")


@pytest.fixture(scope="module")
def realistic():
    with Simulator(profile="realistic") as s:
        yield s


@pytest.mark.parametrize("path", ["/v3/terminal/mdds/status", "/v2/system/mdds/status"])
def test_status_is_connected(realistic, path):
    assert requests.get(realistic.url + path, timeout=10).text == "CONNECTED"


def test_lists_forty_spxw_expirations_within_sixty_days_of_2024_03_14(realistic):
    exps = requests.get(realistic.url + "/v2/list/expirations", params={"root": "SPXW"}, timeout=10).json()
    near = [e for e in exps["response"] if 20240314 <= e <= 20240513]
    assert len(near) >= 40
    dates = requests.get(realistic.url + "/v2/list/dates/option/quote",
                         params={"root": "SPXW", "exp": near[-1]}, timeout=10).json()["response"]
    assert 20240314 in dates


def test_near_term_chain_has_the_documented_header_and_100k_rows(realistic):
    r = requests.get(realistic.url + "/v2/bulk_hist/option/greeks", timeout=120, params={
        "root": "SPXW", "exp": "20240315", "start_date": "20240314", "end_date": "20240314",
        "ivl": "60000", "use_csv": "true"})
    assert r.status_code == 200
    lines = r.content.split(b"\r\n")
    assert lines[0].decode() == DOC_V2_GREEKS
    assert len(lines) - 2 >= 100_000
    strikes = {line.split(b",")[2] for line in lines[1:-1]}
    assert len(strikes) >= 150


@pytest.mark.parametrize("path,params", [
    ("/v2/bulk_hist/option/greeks", {"root": "SPXW", "exp": "20240322", "start_date": "20240316",
                                     "end_date": "20240316", "ivl": "60000", "use_csv": "true"}),
    ("/v3/option/history/greeks/first_order", {"symbol": "SPXW", "expiration": "20240322",
                                               "date": "20240316", "interval": "1m"}),
])
def test_a_saturday_answers_472(realistic, path, params):
    assert requests.get(realistic.url + path, params=params, timeout=10).status_code == 472
