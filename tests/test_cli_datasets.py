"""The research datasets through the command line: the index and the end-of-day greeks beside the chains.

``spxdl run --simulate --dataset index_price`` and ``--dataset greeks_eod`` write archives DuckDB
reads together with the others; the daily datasets cost one request per trade date.
"""

from __future__ import annotations

import duckdb
from click.testing import CliRunner

from spxdl import cli

DAY, NEXT_DAY = "2024-03-14", "2024-03-15"


def spxdl(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


def test_index_price_and_greeks_eod_are_read_by_duckdb_with_the_others(isolated):
    for dataset in ("greeks", "index_price", "greeks_eod", "eod", "open_interest"):
        result = spxdl("run", "--simulate", "--sim-profile", "tiny", "--date", DAY, "--dataset", dataset,
                       "--max-dte", "7", "--workers", "1")
        assert result.exit_code == 0, result.stderr
    data = isolated / "sim-data"
    archives = sorted(path.parent.name for path in data.glob("*/_archive.json"))
    assert archives == ["eod", "greeks-1m", "greeks_eod", "index_price-1m", "open_interest"]

    def read(archive: str) -> str:
        return f"read_parquet('{data}/{archive}/**/*.parquet', hive_partitioning = true)"

    index_vs_greeks = duckdb.sql(f"""
        SELECT count(*), count(*) FILTER (WHERE g.underlying_price = i.price)
        FROM {read('greeks-1m')} g JOIN {read('index_price-1m')} i USING (trade_date, timestamp)
    """).fetchall()[0]
    assert index_vs_greeks[0] > 0 and index_vs_greeks[0] == index_vs_greeks[1]
    eod_vs_greeks_eod = duckdb.sql(f"""
        SELECT count(*), count(*) FILTER (WHERE e.close = g.close AND e.bid = g.bid AND e.ask = g.ask)
        FROM {read('eod')} e JOIN {read('greeks_eod')} g USING (root, trade_date, expiration, strike, "right")
    """).fetchall()[0]
    assert eod_vs_greeks_eod[0] > 0 and eod_vs_greeks_eod[0] == eod_vs_greeks_eod[1]
    with_open_interest = duckdb.sql(f"""
        SELECT count(*), min(o.open_interest) > 0, max(g.vera) <> 0
        FROM {read('greeks_eod')} g JOIN {read('open_interest')} o USING (root, trade_date, expiration, strike, "right")
    """).fetchall()[0]
    assert with_open_interest[0] > 0 and with_open_interest[1] and with_open_interest[2]
    index_days = duckdb.sql(f"SELECT DISTINCT root, trade_date::VARCHAR FROM {read('index_price-1m')}").fetchall()
    assert index_days == [("SPX", DAY)]  # the index of SPXW


def test_eod_and_open_interest_make_one_request_per_trade_date(isolated, clean_sim):
    result = spxdl("run", "--terminal-url", clean_sim.url, "--start", DAY, "--end", NEXT_DAY, "--dataset",
                   "eod,open_interest", "--max-dte", "60", "--data-dir", str(isolated / "data"))
    assert result.exit_code == 0, result.stderr
    requests = clean_sim.counters()["requests"]
    assert sum(requests["/v3/option/history/eod"].values()) == 2
    assert sum(requests["/v3/option/history/open_interest"].values()) == 2
    assert len(list((isolated / "data" / "eod").rglob("*.parquet"))) > 2 * 2  # several expirations a day


def test_greeks_eod_over_v2_is_refused_naming_the_fix(isolated):
    result = spxdl("run", "--simulate", "--sim-profile", "tiny", "--date", DAY, "--dataset", "greeks_eod",
                   "--api", "v2")
    assert result.exit_code == cli.EXIT_USAGE
    line = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert len(line) == 1 and "served only by API v3" in line[0] and "--api v3" in line[0]
