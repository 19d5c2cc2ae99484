"""convert/split.py and the index: a day's answer split per expiration; an index with no contract columns."""

from __future__ import annotations

import io
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from spxdl import convert
from spxdl.datasets import EOD, GREEKS_EOD, INDEX_PRICE
from test_convert import JULY, body, convert as write_and_read, make_rows, spec_for

EXPIRATIONS = [JULY, JULY + timedelta(days=1), JULY + timedelta(days=4)]


def a_day(dataset=EOD, api="v3") -> bytes:
    """One answer holding three expirations, as ``expiration=*`` answers."""
    rows = [row for expiration in EXPIRATIONS for row in make_rows(dataset, expiration=expiration, minutes=1)]
    return body(dataset, api, rows)


def test_a_days_answer_is_split_per_expiration_each_part_checked_as_if_asked_alone():
    for api in ("v2", "v3"):
        split = convert.split_by_expiration([io.BytesIO(a_day(api=api))], spec_for(EOD, api, expiration=None),
                                            lambda expiration: expiration <= JULY + timedelta(days=1))
        assert sorted(split.parts) == EXPIRATIONS[:2] and split.left_out == 4 and split.unreadable == 0
        for expiration, part in split.parts.items():
            alone, _, _ = write_and_read([body(EOD, api, make_rows(EOD, expiration=expiration, minutes=1))],
                                         spec_for(EOD, api, expiration=expiration))
            sink = io.BytesIO()
            result = convert.write_batches(part.batches, sink, part.spec, part.converter)
            stored = pq.read_table(pa.BufferReader(sink.getvalue()), use_threads=False)
            assert stored.equals(alone) and result.rows == part.rows == 4
            assert result.checks["expiration_mismatch"] == 0 and result.pages == 1
            metadata = pq.read_metadata(pa.BufferReader(sink.getvalue())).metadata
            assert metadata[b"expiration"] == expiration.isoformat().encode()


def test_greeks_eod_converts_every_greek_of_the_close():
    table, result, _ = write_and_read([a_day(GREEKS_EOD)], spec_for(GREEKS_EOD, "v3", expiration=None))
    assert table.schema.equals(GREEKS_EOD.schema) and table.num_rows == 12
    assert set(table["expiration"].to_pylist()) == set(EXPIRATIONS)
    assert "expiration_mismatch" not in result.checks  # a whole day asks no single expiration


def test_the_index_from_v2_and_v3_gives_equal_tables_and_counts_its_rows_as_one_series():
    rows = make_rows(INDEX_PRICE, minutes=5)
    v2, v2_result, v2_bytes = write_and_read([body(INDEX_PRICE, "v2", rows)], spec_for(INDEX_PRICE, "v2", minutes=5))
    v3, _, _ = write_and_read([body(INDEX_PRICE, "v3", rows)], spec_for(INDEX_PRICE, "v3", minutes=5))
    assert v2.equals(v3) and v2.schema.names == ["timestamp", "ms_of_day", "price"] and v2.num_rows == 5
    assert (v2_result.checks["contracts_short"], v2_result.checks["contracts_long"]) == (0, 0)
    assert "strike_nonpositive" not in v2_result.checks
    assert b"expiration" not in pq.read_metadata(pa.BufferReader(v2_bytes)).metadata
    _, short, _ = write_and_read([body(INDEX_PRICE, "v3", rows[:-1])], spec_for(INDEX_PRICE, "v3", minutes=5))
    assert short.checks["contracts_short"] == 1
