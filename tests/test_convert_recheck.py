"""A stored file's rows checked again: the same counts as the conversion's, and a file altered afterwards told apart."""

from __future__ import annotations

import io
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from spxdl import storage
from spxdl.convert import recount, write_parquet
from spxdl.datasets import DATASETS, GREEKS
from spxdl.errors import StorageError
from test_convert import ROW_CHECKS, body, make_rows, spec_for

BAD = {"strike_nonpositive", "crossed_quote", "implied_vol_range", "outside_window", "negative_quote"}


def stored(tmp_path, data: bytes, spec) -> tuple:
    """``data`` converted into a real file; its path and the conversion's result."""
    path = tmp_path / "spxw_exp_20240715.parquet"
    results = []

    def write(sink) -> int:
        results.append(write_parquet([io.BytesIO(data)], sink, spec))
        return results[0].rows

    storage.write_verified_parquet(path, write)
    return path, results[0]


def bad_chain(api: str) -> bytes:
    rows = make_rows(GREEKS)
    for number, name in enumerate(sorted(BAD)):
        ROW_CHECKS[name](rows[number + 1])
    rows[8].update(bid=0.0, ask=0.0, delta=0.0, theta=0.0, vega=0.0, rho=0.0, epsilon=0.0)  # observations
    rows[9]["date"] = date(2024, 7, 12)
    rows[11]["ms_of_day"] = 73_800_000  # 20:30 in New York: the next day in UTC, still the trade date here
    rows.pop(10)  # a contract short of one row
    return body(GREEKS, api, rows)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_a_stored_file_counts_what_its_conversion_counted(tmp_path, api):
    path, result = stored(tmp_path, bad_chain(api), spec_for(api=api))
    again = recount(path, GREEKS)
    expected = dict(result.checks)
    if api == "v2":  # v2's own date is not stored
        assert again.not_rechecked == ("date_mismatch",)
        expected.pop("date_mismatch")
    assert again.counts == expected
    assert all(again.counts[name] for name in BAD) and again.counts["contracts_short"] > 0
    assert again.validation == "flag"


def test_a_file_written_in_drop_mode_holds_none_of_what_was_dropped(tmp_path):
    path, result = stored(tmp_path, bad_chain("v3"), spec_for(api="v3", validation="drop"))
    again = recount(path, GREEKS)
    assert again.validation == "drop" and result.dropped == len(BAD) + 1  # the 20:30 row is outside the window too
    assert all(again.counts[name] == 0 for name in BAD) and all(result.checks[name] for name in BAD)
    for name in ("greeks_all_zero", "no_quote_yet", "date_mismatch", "contracts_short"):
        assert again.counts[name] == result.checks[name], name  # they describe the stored rows


def test_rows_altered_after_the_file_was_written_are_counted_as_they_now_are(tmp_path):
    path, result = stored(tmp_path, body(GREEKS, "v3", make_rows(GREEKS)), spec_for(api="v3"))
    table = pq.read_table(path)
    crossed = pc.if_else(pc.less(pa.array(range(table.num_rows)), 3), pc.add(table["ask"], 1.0), table["bid"])
    pq.write_table(table.set_column(table.schema.get_field_index("bid"), "bid", crossed), path)
    assert result.checks["crossed_quote"] == 0
    assert recount(path, GREEKS).counts["crossed_quote"] == 3


@pytest.mark.parametrize("dataset", [d for d in DATASETS.values() if d.v3_columns and not d.all_expirations],
                         ids=lambda d: d.name)
def test_every_interval_dataset_recounts_clean_to_zero_flags(tmp_path, dataset):
    path, result = stored(tmp_path, body(dataset, "v3", make_rows(dataset)), spec_for(dataset, api="v3"))
    assert recount(path, dataset).counts == result.checks


def test_a_file_without_spxdls_metadata_is_a_storage_error(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(StorageError, match="metadata"):
        recount(path, GREEKS)
    path.write_bytes(b"not parquet")
    with pytest.raises(StorageError, match="not a readable Parquet file"):
        recount(path, GREEKS)


def test_the_mode_is_none_for_a_file_written_before_modes_were_named(tmp_path):
    path, _ = stored(tmp_path, body(GREEKS, "v3", make_rows(GREEKS)), spec_for(api="v3"))
    table = pq.read_table(path)
    metadata = {k: v for k, v in table.schema.metadata.items() if k != b"validation"}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    assert recount(path, GREEKS).validation is None
