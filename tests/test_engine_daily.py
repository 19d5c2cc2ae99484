"""The daily datasets (one request per trade date, split per expiration) and the index (one file per day).

Against the simulator over loopback with real worker processes; every file is read back.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from engine_helpers import END, START, data_files, ledger_problems, make_settings, temp_files
from spxdl import convert, engine, storage
from spxdl.datasets import get_dataset
from spxdl.errors import ConfigError
from spxdl.ledger import Task
from spxdl.simulator import Faults

DAYS = 2  # START..END
DAILY = ("eod", "open_interest")


def run_range(settings, start=START, end=END):
    return engine.run(engine.plan(settings, start, end), settings)


def history_requests(sim, path: str) -> int:
    return sum(sim.counters()["requests"].get(path, {}).values())


def expiration_of_file(path) -> date:
    return date.fromisoformat(pq.ParquetFile(path).schema_arrow.metadata[b"expiration"].decode())


def one_expiration_alone(sim, dataset: str, expiration: date, day: date) -> pa.Table:
    """What a per-expiration request for ``expiration`` gives, converted as the engine converts it."""
    ds = get_dataset(dataset)
    params = {"symbol": "SPXW", "expiration": expiration.strftime("%Y%m%d"), "format": "csv"}
    if ds.v3_date_range:
        params.update(start_date=day.strftime("%Y%m%d"), end_date=day.strftime("%Y%m%d"))
    else:
        params["date"] = day.strftime("%Y%m%d")
    body = requests.get(sim.url + ds.v3_path, params=params, timeout=30).content
    spec = convert.ConvertSpec(ds, "v3", "SPXW", expiration, day, 34_200_000, 57_600_000, None)
    sink = io.BytesIO()
    convert.write_parquet([io.BytesIO(body)], sink, spec)
    return pq.read_table(pa.BufferReader(sink.getvalue()), use_threads=False)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_daily_datasets_make_one_request_per_trade_date_and_one_file_per_expiration(clean_sim, tmp_path, api):
    settings = make_settings(tmp_path, clean_sim.url, datasets=DAILY, terminal_api=api, max_dte=20)
    summary = run_range(settings)

    assert summary.complete and summary.by_state() == {"success": 2 * DAYS}
    requests_made = clean_sim.counters()["requests"]
    for name in DAILY:
        path = get_dataset(name).path(api)
        assert sum(requests_made[path].values()) == DAYS  # one per trade date, whatever the expirations
    assert not any("/list/" in path for path in requests_made)  # the answer holds every expiration
    files = data_files(tmp_path)
    for name in DAILY:
        for day in (START, END):
            mine = sorted(expiration_of_file(p) for p in files if f"{name}/" in str(p) and day.isoformat() in str(p))
            assert mine and all(day <= exp <= day + timedelta(days=20) for exp in mine)  # the window filters rows
    assert ledger_problems(tmp_path) == [] and temp_files(tmp_path) == []
    assert run_range(settings).results == []  # complete: nothing planned again


def test_a_day_split_gives_each_expiration_the_rows_a_request_of_its_own_gives(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, datasets=("eod", "greeks_eod"), terminal_api="v3", max_dte=20,
                             workers=1)
    assert run_range(settings, START, START).complete
    for name in ("eod", "greeks_eod"):
        paths = [p for p in data_files(tmp_path) if p.parts[-4] == name]
        assert len(paths) >= 2
        for path in paths:
            stored = pq.read_table(path, use_threads=False)
            alone = one_expiration_alone(clean_sim, name, expiration_of_file(path), START)
            assert stored.equals(alone.cast(stored.schema)), path


def test_a_wider_window_asks_the_day_once_more_and_writes_only_the_new_expirations(clean_sim, tmp_path):
    narrow = make_settings(tmp_path, clean_sim.url, datasets=("eod",), max_dte=8, workers=1)
    run_range(narrow, START, START)
    before = {path: path.stat().st_ino for path in data_files(tmp_path)}
    clean_sim.reset_counters()

    summary = run_range(make_settings(tmp_path, clean_sim.url, datasets=("eod",), max_dte=30, workers=1), START, START)

    assert summary.complete and sum(result.skipped for result in summary.results) == len(before)
    assert sum(sum(by.values()) for path, by in clean_sim.counters()["requests"].items() if "eod" in path) == 1
    after = data_files(tmp_path)
    assert len(after) > len(before)
    assert all(path.stat().st_ino == before[path] for path in before)  # untouched


def test_a_daily_task_is_never_shared_and_a_daily_run_lists_no_expirations(clean_sim, tmp_path):
    # greeks then eod on one day: eod is the run's last task, with idle workers beside it
    mixed = make_settings(tmp_path / "mixed", clean_sim.url, datasets=("greeks", "eod"), workers=3, threads=1,
                          max_dte=29)
    summary = run_range(mixed, START, START)
    assert summary.complete and summary.totals()["expirations"]["complete"] >= 8  # a window worth sharing
    assert history_requests(clean_sim, get_dataset("eod").v3_path) == 1  # no helper asked the day again
    clean_sim.reset_counters()
    daily = make_settings(tmp_path / "daily", clean_sim.url, datasets=DAILY)
    assert run_range(daily).complete
    assert not [path for path in clean_sim.counters()["requests"] if "expirations" in path]


def test_a_cut_day_is_asked_again_and_ends_as_a_clean_runs(clean_sim, tmp_path):
    clean = make_settings(tmp_path / "clean", clean_sim.url, datasets=("open_interest",), workers=1)
    run_range(clean, START, START)
    # The draws are seeded: at 0.8 the day's first answers are cut however many status answers came first.
    clean_sim.set_faults(Faults(cut_rate=0.8))
    cut = make_settings(tmp_path / "cut", clean_sim.url, datasets=("open_interest",), workers=1,
                        expiration_attempts=20)
    summary = run_range(cut, START, START)
    assert summary.complete
    assert clean_sim.counters()["cut"]["responses"] > 0
    relative = lambda root: {p.relative_to(root): p.read_bytes() for p in data_files(root)}  # noqa: E731
    assert relative(tmp_path / "cut") == relative(tmp_path / "clean")


def test_a_day_without_data_is_no_data_and_planned_again(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, datasets=("eod",), roots=("XYZ",), workers=1)
    summary = run_range(settings, START, START)
    assert summary.by_state() == {"no_data": 1}
    assert engine.plan(settings, START, START).tasks == (Task("eod", "XYZ", START),)


def test_greeks_eod_on_a_v2_terminal_is_refused_before_any_worker_starts(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, datasets=("greeks_eod",), terminal_api="v2")
    with pytest.raises(ConfigError, match="served only by API v3"):
        run_range(settings)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_the_index_is_one_file_per_trade_date_equal_to_the_options_underlying(clean_sim, tmp_path, api):
    settings = make_settings(tmp_path, clean_sim.url, datasets=("greeks", "index_price"), roots=("SPXW", "SPX"),
                             terminal_api=api, max_dte=3)
    summary = run_range(settings)

    assert summary.complete
    index_files = sorted(p for p in data_files(tmp_path) if p.parts[-4] == "index_price-1m")
    assert [p.name for p in index_files] == [f"spx_{day:%Y%m%d}.parquet" for day in (START, END)]
    assert all(p.parent.parent.name == "root=SPX" for p in index_files)  # one index for SPXW and SPX
    assert pq.read_metadata(index_files[0]).num_rows == 391
    assert sum(sum(by.values()) for path, by in clean_sim.counters()["requests"].items() if "index" in path) == DAYS
    base = str(tmp_path)
    mismatched = duckdb.sql(f"""
        SELECT count(*) FROM read_parquet('{base}/greeks-1m/**/*.parquet', hive_partitioning = true) g
        JOIN read_parquet('{base}/index_price-1m/**/*.parquet', hive_partitioning = true) i
          ON g.trade_date = i.trade_date AND g.timestamp = i.timestamp
        WHERE g.underlying_price <> i.price
    """).fetchall()[0][0]
    joined = duckdb.sql(f"""
        SELECT count(*) FROM read_parquet('{base}/greeks-1m/**/*.parquet', hive_partitioning = true) g
        JOIN read_parquet('{base}/index_price-1m/**/*.parquet', hive_partitioning = true) i
          ON g.trade_date = i.trade_date AND g.timestamp = i.timestamp
    """).fetchall()[0][0]
    assert joined > 0 and mismatched == 0
    assert ledger_problems(tmp_path) == []
    day = engine.plan(settings, START, START)
    assert day.tasks == () and Task("index_price-1m", "SPX", START) in day.done


def test_an_index_task_covers_no_dte_window_so_a_wider_one_does_not_plan_it_again(clean_sim, tmp_path):
    settings = make_settings(tmp_path, clean_sim.url, datasets=("index_price",), workers=1)
    run_range(settings, START, START)
    wider = make_settings(tmp_path, clean_sim.url, datasets=("index_price",), max_dte=90)
    assert engine.plan(wider, START, START).tasks == ()
    assert storage.expiration_of(data_files(tmp_path)[0], "SPX") == START  # the ledger's key: the trade date


def test_the_estimate_counts_one_request_per_day_for_daily_and_index_tasks(tmp_path):
    settings = make_settings(tmp_path, "http://127.0.0.1:9", datasets=("eod", "index_price"), max_dte=30)
    figures = engine.estimate(engine.plan(settings, START, END), settings)
    assert figures["tasks"] == 2 * DAYS and figures["requests"] == 2 * DAYS  # no listing either


def test_gaps_judge_the_index_by_its_own_root_and_window(clean_sim, tmp_path):
    from spxdl import audit
    from spxdl.trading_calendar import TradingCalendar

    settings = make_settings(tmp_path, clean_sim.url, datasets=("index_price",), workers=1)
    run_range(settings)
    gaps = audit.find_gaps(tmp_path, TradingCalendar(), START, END, archives=["index_price-1m"], roots=("SPXW",),
                           min_dte=0, max_dte=60)
    assert gaps == []
    missing = audit.find_gaps(tmp_path, TradingCalendar(), START, END + timedelta(days=1),
                              archives=["index_price-1m"], roots=("SPXW",), min_dte=0, max_dte=60)
    assert [(gap.root, gap.trade_date, gap.state) for gap in missing] == [("SPX", END + timedelta(days=1), "missing")]
