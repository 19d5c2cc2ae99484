"""The simulator's daily datasets: every expiration at once, and the same values as the minute chains."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import requests

from spxdl.simulator.listing import trades_on

DAY, EXP = "20240314", "20240315"
RANGE = {"start_date": DAY, "end_date": DAY}


def rows(sim, path: str, **params: str) -> list[dict[str, str]]:
    answer = requests.get(sim.url + path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def contract(row: dict[str, str]) -> tuple[str, str, str]:
    return row["expiration"], row["strike"], row["right"]


@pytest.mark.parametrize("path, day", [("/v3/option/history/eod", RANGE), ("/v3/option/history/greeks/eod", RANGE),
                                       ("/v3/option/history/open_interest", {"date": DAY})])
def test_every_expiration_at_once_is_each_expirations_answer_one_after_the_other(sim, path, day):
    everything = rows(sim, path, symbol="SPXW", expiration="*", **day)
    expirations = sorted({row["expiration"] for row in everything})
    trading = [e.exp.isoformat() for e in sim.app.terminal.model.expirations("SPXW") if trades_on(e, date(2024, 3, 14))]
    assert expirations == trading  # every expiration with data on the day, none left out
    assert len(expirations) > 10 and [row["expiration"] for row in everything] == sorted(
        row["expiration"] for row in everything)  # ascending, one block after another
    for expiration in expirations[:2] + expirations[-1:]:
        alone = rows(sim, path, symbol="SPXW", expiration=expiration.replace("-", ""), **day)
        assert [row for row in everything if row["expiration"] == expiration] == alone


def test_v2_every_expiration_is_exp_0_and_carries_the_same_contracts(sim):
    v2 = rows(sim, "/v2/bulk_hist/option/eod", root="SPXW", exp="0", start_date=DAY, end_date=DAY, use_csv="true")
    v3 = rows(sim, "/v3/option/history/eod", symbol="SPXW", expiration="*", **RANGE)
    assert len(v2) == len(v3)
    assert [(r["close"], r["bid"], r["ask"]) for r in v2] == [(r["close"], r["bid"], r["ask"]) for r in v3]


def test_the_days_report_carries_the_close_minutes_quote_and_greeks(sim):
    eod = {contract(r): r for r in rows(sim, "/v3/option/history/greeks/eod", symbol="SPXW", expiration=EXP, **RANGE)}
    close = rows(sim, "/v3/option/history/greeks/first_order", symbol="SPXW", expiration=EXP, date=DAY,
                 interval="1m", start_time="16:00:00", end_time="16:00:00")
    assert len(close) == len(eod) == 10
    for minute in close:
        report = eod[contract(minute)]
        for name in ("bid", "ask", "delta", "theta", "vega", "rho", "epsilon", "lambda", "implied_vol", "iv_error",
                     "underlying_price"):
            assert report[name] == minute[name], name
        assert report["timestamp"] < "2024-03-14T16:01" < report["underlying_timestamp"] < "2024-03-14T17:21"
        assert all(report[name] for name in ("vera", "speed", "zomma", "color", "ultima", "dual_delta", "dual_gamma"))
    quotes = {contract(r): r for r in rows(sim, "/v3/option/history/eod", symbol="SPXW", expiration=EXP, **RANGE)}
    assert all(quotes[key]["bid"] == report["bid"] and quotes[key]["close"] == report["close"]
               for key, report in eod.items())


def test_a_rate_of_the_request_moves_the_greeks_not_the_quotes(sim):
    base = rows(sim, "/v3/option/history/greeks/eod", symbol="SPXW", expiration=EXP, **RANGE)
    other = rows(sim, "/v3/option/history/greeks/eod", symbol="SPXW", expiration=EXP, rate_value="1", **RANGE)
    assert [r["bid"] for r in base] == [r["bid"] for r in other]
    assert [r["rho"] for r in base] != [r["rho"] for r in other]


def test_every_expiration_at_once_is_refused_for_the_minute_datasets(sim):
    answer = requests.get(sim.url + "/v2/bulk_hist/option/greeks", params={
        "root": "SPXW", "exp": "0", "start_date": DAY, "end_date": DAY, "ivl": "60000"}, timeout=30)
    assert answer.status_code == 473 and "exp=0" in answer.text
