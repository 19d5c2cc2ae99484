"""The simulator's index endpoints: SPX is the options' underlying, v2 and v3 agree, VIX is plausible."""

from __future__ import annotations

import csv
import io

import requests

DAY = "20240314"


def table(sim, path: str, **params: str) -> list[dict[str, str]]:
    answer = requests.get(sim.url + path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def v3_index(sim, symbol: str = "SPX", **params: str) -> list[dict[str, str]]:
    return table(sim, "/v3/index/history/price", symbol=symbol, date=DAY, interval="1m", **params)


def test_spx_each_minute_is_the_underlying_every_option_row_of_that_minute_carries(sim):
    index = {row["timestamp"]: row["price"] for row in v3_index(sim)}
    greeks = table(sim, "/v3/option/history/greeks/first_order", symbol="SPXW", expiration="20240315", date=DAY,
                   interval="1m")
    assert len(index) == 391 and "2024-03-14T16:00:00" in index
    assert all(index[row["timestamp"]] == row["underlying_price"] for row in greeks)


def test_v2_and_v3_give_the_same_prices_in_their_own_forms(sim):
    v2 = table(sim, "/v2/hist/index/price", root="SPX", start_date=DAY, end_date=DAY, ivl="60000", rth="false",
               start_time="34200000", end_time="57600000", use_csv="true")
    v3 = v3_index(sim)
    assert list(v2[0]) == ["ms_of_day", "price", "date"] and list(v3[0]) == ["timestamp", "price"]
    assert [row["price"] for row in v2] == [row["price"] for row in v3]
    assert v2[0]["ms_of_day"] == "34200000" and v2[0]["date"] == DAY


def test_vix_is_a_volatility_in_points_and_other_symbols_have_no_data(sim):
    vix = [float(row["price"]) for row in v3_index(sim, "VIX")]
    assert len(vix) == 391 and all(8 < value < 30 for value in vix)
    answer = requests.get(sim.url + "/v3/index/history/price",
                          params={"symbol": "NDX", "date": DAY, "interval": "1m"}, timeout=30)
    assert answer.status_code == 472


def test_rows_follow_the_window_to_16_15_and_json_is_served_too(sim):
    late = v3_index(sim, start_time="16:00:00", end_time="16:15:00")
    assert [row["timestamp"][-8:] for row in late][::15] == ["16:00:00", "16:15:00"]
    body = requests.get(sim.url + "/v3/index/history/price",
                        params={"symbol": "SPX", "date": DAY, "interval": "1h", "format": "json"}, timeout=30).json()
    assert [row["timestamp"][-8:] for row in body["response"]][:2] == ["10:00:00", "11:00:00"]
