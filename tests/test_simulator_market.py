"""The synthetic market: levels, expirations by era, strikes, Black-Scholes consistency, sessions."""

from __future__ import annotations

import math
import dataclasses
from datetime import date, datetime, timedelta

import pytest

from spxdl import trading_calendar
from spxdl.simulator import listing, market
from spxdl.simulator.blackscholes import call_put
from spxdl.simulator.columns import GREEKS, OHLC, QUOTE
from spxdl.simulator.model import PROFILES, MarketModel, SessionRules
from spxdl.simulator.rows import Query, RowGenerator

ALL_DAYS = (listing.MON, listing.TUE, listing.WED, listing.THU, listing.FRI)


@pytest.mark.parametrize("day,level", [(date(2000, 6, 1), 1400), (date(2024, 1, 16), 4700),
                                       (date(2024, 3, 14), 5150), (date(2024, 12, 16), 5900),
                                       (date(2025, 2, 20), 6100)])
def test_index_is_near_historical_levels(day, level):
    assert abs(market.open_level(0, day) / level - 1) < 0.05


def test_market_is_deterministic_for_seed_and_date():
    d = date(2024, 3, 14)
    assert market.index_path(1, d) == market.index_path(1, d)
    assert market.index_path(1, d) != market.index_path(2, d)
    path = market.index_path(1, d)
    assert len(path) == 406 and all(round(p, 2) == p for p in path)
    assert max(path) / min(path) < 1.05


def _weekdays(root: str, year: int) -> set[int]:
    return {e.exp.weekday() for e in listing.expirations(root, ALL_DAYS) if e.exp.year == year}


def test_spxw_expirations_follow_the_eras():
    assert listing.expirations("SPXW", ALL_DAYS)[0].exp == date(2005, 10, 21)
    fridays_2010 = [e.exp for e in listing.expirations("SPXW", ALL_DAYS) if e.exp.year == 2010]
    assert {d.weekday() for d in fridays_2010} == {listing.THU, listing.FRI}
    # Fridays closed for Good Friday and Christmas (observed) move to the Thursday before.
    assert [d for d in fridays_2010 if d.weekday() == listing.THU] == [date(2010, 4, 1), date(2010, 12, 23)]
    exps_2017 = [e.exp for e in listing.expirations("SPXW", ALL_DAYS) if e.exp.year == 2017]
    moved = [d for d in exps_2017 if d.weekday() in (listing.TUE, listing.THU)]
    assert date(2017, 1, 17) in moved                              # MLK Monday moved to Tuesday
    assert all(not trading_calendar.is_trading_day(d - timedelta(days=1)) for d in moved
               if d.weekday() == listing.TUE)
    assert all(not trading_calendar.is_trading_day(d + timedelta(days=1)) for d in moved
               if d.weekday() == listing.THU)
    assert len(exps_2017) - len(moved) > 140                      # Mondays, Wednesdays, Fridays
    every_day_2023 = {e.exp for e in listing.expirations("SPXW", ALL_DAYS) if e.exp.year == 2023}
    assert every_day_2023 == set(trading_calendar.trading_days(date(2023, 1, 1), date(2023, 12, 31)))


def test_spx_monthlies_are_third_fridays_with_saturday_dates_before_2015():
    spx = {e.exp: e for e in listing.expirations("SPX")}
    assert date(2014, 4, 19) in spx and spx[date(2014, 4, 19)].last_trade == date(2014, 4, 16)
    assert date(2024, 3, 15) in spx and spx[date(2024, 3, 15)].last_trade == date(2024, 3, 14)
    assert date(2025, 4, 17) in spx                                # Good Friday: settles Thursday
    assert all(e.settles_am for e in spx.values())
    assert listing.expirations("AAPL") == ()


def test_realistic_lists_forty_spxw_expirations_within_sixty_days():
    model = MarketModel(PROFILES["realistic"], 0)
    day = date(2024, 3, 14)
    near = [e for e in model.expirations("SPXW") if listing.trades_on(e, day) and (e.exp - day).days <= 60]
    assert len(near) >= 40


def test_realistic_strikes_are_dense_near_the_money_and_sparse_in_the_wings():
    strikes = listing.realistic_strikes(5150.0)
    assert len(strikes) >= 150
    near = [k for k in strikes if abs(k - 5150) <= 250]
    assert {b - a for a, b in zip(near, near[1:])} == {5}
    wings = [k for k in strikes if k < 5150 * 0.8]
    assert {b - a for a, b in zip(wings, wings[1:])} == {100}
    assert listing.tiny_strikes(5160.0) == [5050, 5100, 5150, 5200, 5250]


def test_dense_profile_has_four_times_the_realistic_strikes_every_5_points():
    dense = listing.dense_strikes(5150.0)
    assert len(dense) >= 4 * len(listing.realistic_strikes(5150.0))
    assert {b - a for a, b in zip(dense, dense[1:])} == {5}
    assert dense[0] <= 5150 * 0.6 + 5 and dense[-1] >= 5150 * 1.25 - 5


def test_black_scholes_parity_and_delta():
    s, k, t, r, q, sigma = 5150.0, 5100.0, 10 / 365, 0.05, 0.01, 0.15
    call, put = call_put(s, k, t, r, q, sigma)
    assert call.price - put.price == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-9)
    up, _ = call_put(s + 0.01, k, t, r, q, sigma)
    assert call.delta == pytest.approx((up.price - call.price) / 0.01, abs=1e-3)
    assert call.gamma == pytest.approx((up.delta - call.delta) / 0.01, rel=1e-2)
    later, _ = call_put(s, k, t - 1 / 365, r, q, sigma)
    assert call.theta == pytest.approx(later.price - call.price, rel=2e-2)      # per calendar day


def test_greeks_units_match_a_real_terminal_sample():
    # SPXW 2026-03-13 6850 P at 2026-03-04 09:07 (docs/wire.md 7.1 / the snapshot fixture).
    years = (datetime(2026, 3, 13, 16) - datetime(2026, 3, 4, 9, 7, 13)).total_seconds() / (365 * 86400)
    _, put = call_put(6816.63, 6850.0, years, 0.036, 0.0, 0.1741)
    sample = {"delta": -0.5576, "theta": -3.9430, "vega": 398.3919, "rho": -85.1814, "epsilon": 83.3173}
    for name, value in sample.items():
        assert getattr(put, name) == pytest.approx(value, rel=0.2), name
    assert put.price == pytest.approx(85.05, rel=0.1)


@pytest.fixture(scope="module")
def tiny():
    model = MarketModel(PROFILES["tiny"], 5)
    return model, RowGenerator(model)


def _query(model, dataset=GREEKS, day=date(2024, 3, 14), exp=date(2024, 3, 15), **kw):
    return Query(dataset, "v2", model.expiration("SPXW", exp), (day,), **kw)


def test_greeks_are_consistent_with_the_quote_mid_and_the_underlying(tiny):
    model, gen = tiny
    query = _query(model)
    chain = model.chain(query.expiration, date(2024, 3, 14))
    for block in gen.blocks(query):
        for row in block.rows[::97]:
            ms, bid, ask, delta, theta, vega, rho, eps, lam, iv, iv_err, _, under, _ = row
            m = (ms - market.OPEN_MS) // 60_000
            call, put = call_put(under, block.strike, chain.years[m], chain.rate, 0.0, iv)
            g = call if block.right == "C" else put
            mid = (bid + ask) / 2
            assert 0 <= bid < ask and g.delta == delta and g.vega == vega
            assert abs(g.price - mid) / mid == pytest.approx(iv_err)
            assert lam == pytest.approx(delta * under / mid)
            assert bid <= g.price + 0.1 and g.price - 0.1 <= ask or mid < 0.1


def test_rate_and_dividend_change_greeks_but_not_quotes(tiny):
    model, gen = tiny
    base = gen.blocks(_query(model))[4].rows[100]
    other = gen.blocks(_query(model, rate=0.0, annual_div=50.0))[4].rows[100]
    assert base[1:3] == other[1:3] and base[3] != other[3]


def test_early_close_stops_at_1315_or_holds_values_flat():
    day = date(2024, 11, 29)                           # the day after Thanksgiving
    stop = MarketModel(PROFILES["tiny"], 0)
    rows = RowGenerator(stop).blocks(_query(stop, QUOTE, day, date(2024, 12, 6)))[0].rows
    assert rows[-1][0] == 47_700_000 and len(rows) == 226
    flat = MarketModel(PROFILES["tiny"], 0, SessionRules(early_close_rows="flat"))
    rows = RowGenerator(flat).blocks(_query(flat, QUOTE, day, date(2024, 12, 6)))[0].rows
    assert len(rows) == 391 and rows[-1][1:-1] == rows[225][1:-1]
    bars = RowGenerator(flat).blocks(_query(flat, OHLC, day, date(2024, 12, 6)))[0].rows
    assert all(b[5] == 0 for b in bars[226:])


def test_late_window_is_configurable_and_ends_at_1600_on_expiry_day():
    late = MarketModel(PROFILES["tiny"], 0)
    rows = RowGenerator(late).blocks(_query(late, QUOTE, end_ms=58_500_000))[0].rows
    assert len(rows) == 406
    expiring = RowGenerator(late).blocks(_query(late, QUOTE, date(2024, 3, 15), end_ms=58_500_000))[0].rows
    assert len(expiring) == 391
    closed = MarketModel(PROFILES["tiny"], 0, SessionRules(late_window=False))
    assert len(RowGenerator(closed).blocks(_query(closed, QUOTE, end_ms=58_500_000))[0].rows) == 391


def test_chain_cache_is_bounded_in_bytes():
    model = MarketModel(PROFILES["tiny"], 0)
    e = model.expiration("SPXW", date(2024, 3, 15))
    first = model.chain(e, date(2024, 3, 11))
    assert model.chain(e, date(2024, 3, 11)) is first
    one_chain = first.size_bytes()
    small = MarketModel(dataclasses.replace(PROFILES["tiny"], chain_cache_bytes=one_chain), 0)
    for day in (11, 12, 13):
        small.chain(e, date(2024, 3, day))
    assert small.cached() == (1, one_chain)
    assert model.cached() == (1, one_chain)


def test_greeks_for_many_rates_keep_a_bounded_number_of_tables(tiny):
    model, gen = tiny
    base = gen.blocks(_query(model))[0].rows[10]
    for rate in (0.01, 0.02, 0.03, 0.04, 0.06):
        gen.blocks(_query(model, rate=rate))
    chain = model.chain(model.expiration("SPXW", date(2024, 3, 15)), date(2024, 3, 14))
    assert chain.greek_tables() == 1 + market.MAX_GREEK_TABLES
    assert gen.blocks(_query(model))[0].rows[10] == base
