"""metrics.csv: a column per check and the rows dropped, older files widened, past runs' rows/s."""

from __future__ import annotations

import csv

from spxdl import checks, metrics

OLD_FIELDS = "kind,key,state,rows,bytes,seconds,rows_per_s,retries,failures,finished_at"


def test_every_row_has_a_column_per_check_and_the_rows_dropped(tmp_path):
    metrics.append(tmp_path, [metrics.MetricsRow("task", "greeks-1m/SPXW/2024-03-14", "success", 100, 10, 1.0,
                                                 dropped=3, checks={"crossed_quote": 3, "greeks_all_zero": 7})])
    header = metrics.metrics_path(tmp_path).read_text().splitlines()[0].split(",")
    assert header == [*OLD_FIELDS.split(","), "dropped", *checks.CHECKS]
    row = metrics.read(tmp_path)[0]
    assert (row["crossed_quote"], row["greeks_all_zero"], row["dropped"], row["negative_quote"]) == ("3", "7", "3", "0")


def test_a_metrics_file_of_an_older_spxdl_is_widened_and_keeps_its_rows(tmp_path):
    path = metrics.metrics_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(OLD_FIELDS + "\nrun,2024-03-14..2024-03-14,complete,500,50,2.000,250,0,0,2024-03-14T18:00:00-04:00\n")
    metrics.append(tmp_path, [metrics.MetricsRow("run", "2024-03-15..2024-03-15", "complete", 300, 30, 1.0,
                                                 checks={"crossed_quote": 1})])
    rows = list(csv.reader(path.read_text().splitlines()))
    assert len({len(row) for row in rows}) == 1  # rectangular: old rows padded
    old, new = metrics.read(tmp_path)
    assert (old["rows"], old["crossed_quote"], new["crossed_quote"]) == ("500", "", "1")


def test_past_runs_give_a_dry_runs_rows_per_second(tmp_path):
    assert metrics.past_rows_per_second(tmp_path) is None
    metrics.append(tmp_path, [
        metrics.MetricsRow("task", "greeks-1m/SPXW/2024-03-14", "success", 10_000, 1, 0.1),  # tasks are not runs
        metrics.MetricsRow("run", "a", "complete", 1_000, 1, 1.0),
        metrics.MetricsRow("run", "b", "complete", 0, 0, 9.0),  # nothing stored: says nothing about speed
        metrics.MetricsRow("run", "c", "complete", 5_000, 1, 3.0),
    ])
    assert metrics.past_rows_per_second(tmp_path) == 1_500.0
    assert metrics.past_rows_per_second(tmp_path, runs=1) == 5_000 / 3
