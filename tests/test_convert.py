"""CSV pages of both API versions -> checked Arrow batches -> Parquet files, read back for real."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import duckdb
import dataclasses

import pyarrow as pa
import requests
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from spxdl import storage
from spxdl.convert import ConvertSpec, RowGroupBuffer, gathered, iter_batches, write_parquet
from spxdl.instants import session_utc_offset_ms
from spxdl.datasets import DATASETS, EOD, GREEKS, OHLC, OPEN_INTEREST, QUOTE, Dataset
from spxdl.errors import BodyTruncated, ConfigError, DataError, SchemaMismatch, ValidationFailed
from spxdl.simulator import Simulator

DATA = Path(__file__).parent / "data"
GOLDEN_V2 = DATA / "handmade-v2-bulk-hist-option-greeks-SPXW.csv"
GOLDEN_V3 = DATA / "handmade-v3-option-history-greeks-first-order-SPXW.csv"
JULY = date(2024, 7, 15)
START, IVL = 34_200_000, 60_000
UTC = timezone.utc


# ---------------------------------------------------------------------------------------------
# bodies in the wire formats of docs/wire.md §3.2 (v2) and §6.3 (v3)


def make_rows(dataset: Dataset, trade_date: date = JULY, expiration: date | None = None,
              strikes=(5600.0, 5612.5), minutes: int = 3, start_ms: int = START) -> list[dict]:
    """A plausible chain as output-named values, one row per contract and interval."""
    expiration = expiration or trade_date
    rows = []
    for strike in strikes if not dataset.is_index else strikes[:1]:  # an index is one series
        for right in "CP" if not dataset.is_index else "C":
            for i in range(minutes):
                row = {"root": "SPXW", "expiration": expiration, "strike": strike, "right": right,
                       "ms_of_day": start_ms + i * IVL, "date": trade_date}
                for field in dataset.schema:
                    if field.name in row or pa.types.is_timestamp(field.type):
                        continue  # the zoned instants are derived from the wire's times
                    if pa.types.is_integer(field.type):
                        row[field.name] = 10 + i
                    else:
                        row[field.name] = round(1.0 + 0.25 * i + strike / 10_000, 2)
                if "ms_of_day2" in row:
                    row["ms_of_day2"] = start_ms + i * IVL - 500
                if "bid" in row:
                    row["ask"] = round(row["bid"] + 0.1, 2)
                if "implied_vol" in row:
                    row["implied_vol"] = 0.15 + 0.001 * i
                rows.append(row)
    return rows


def wall_clock(day: date, ms: int) -> str:
    """v3's timestamp text: ISO wall clock, fraction only when non-zero and trimmed."""
    text = (datetime.combine(day, time()) + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    return text[:-4] if text.endswith(".000") else text.rstrip("0")


def v2_value(name: str, row: dict) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if name in ("expiration", "date"):
        return f"{value:%Y%m%d}"
    if name == "strike":
        return str(round(value * 1000))
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


V3_TIMES = {"timestamp": "ms_of_day", "created": "ms_of_day", "underlying_timestamp": "ms_of_day2",
            "last_trade": "ms_of_day2"}


def v3_value(name: str, row: dict) -> str:
    if name in V3_TIMES:
        return wall_clock(row["date"], row[V3_TIMES[name]])
    if name == "symbol":
        return row["root"]
    value = row.get(name)
    if value is None:
        return ""
    if name == "expiration":
        return value.isoformat()
    if name == "strike":
        return f"{value:.3f}"
    if name == "right":
        return {"C": "CALL", "P": "PUT"}.get(value, value)
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def body(dataset: Dataset, api: str, rows: list[dict], newline: str = "\r\n", header=None) -> bytes:
    """A CSV body as the terminal of ``api`` sends it."""
    columns = header or dataset.columns(api)
    fmt = v2_value if api == "v2" else v3_value
    lines = [",".join(columns)] + [",".join(fmt(name, row) for name in columns) for row in rows]
    return (newline.join(lines) + newline).encode()


def an_api(dataset: Dataset) -> str:
    """v2 where the dataset has it, else v3."""
    return "v2" if dataset.v2_columns else "v3"


def spec_for(dataset: Dataset = GREEKS, api: str = "v2", trade_date: date = JULY, minutes: int = 3,
             **kwargs) -> ConvertSpec:
    expiration = None if dataset.is_index else trade_date
    values = dict(dataset=dataset, api=api, root="SPXW", expiration=expiration, trade_date=trade_date,
                  start_ms=START, end_ms=START + (minutes - 1) * IVL, interval_ms=IVL)
    values.update(kwargs)
    return ConvertSpec(**values)


def convert(pages, spec: ConvertSpec) -> tuple[pa.Table, object, bytes]:
    """Write ``pages`` to an in-memory Parquet file; the table read back, the result and the bytes."""
    sink = io.BytesIO()
    result = write_parquet((io.BytesIO(page) if isinstance(page, bytes) else page for page in pages), sink, spec)
    data = sink.getvalue()
    # single-threaded reads: pyarrow 26 can abort at interpreter exit after threaded Parquet reads
    return pq.read_table(pa.BufferReader(data), use_threads=False), result, data


class RawPage(io.RawIOBase):
    """A page like terminal.Page: raw reads, bytes counted, and an early end raising BodyTruncated."""

    def __init__(self, data: bytes, cut_at: int | None = None, most: int | None = None) -> None:
        self._body = io.BytesIO(data if cut_at is None else data[:cut_at])
        self.most = most  # the most bytes one read returns, like a socket
        self.cut = cut_at is not None
        self.error = None
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self._body.readinto(memoryview(buffer)[: self.most] if self.most else buffer)
        if count == 0 and self.cut:
            self.error = BodyTruncated("the body ended before its Content-Length", endpoint="/v2/bulk_hist/option/greeks")
            raise self.error
        self.bytes_read += count
        return count


# ---------------------------------------------------------------------------------------------
# both API versions, one table


def test_hand_made_v2_and_v3_greeks_bodies_give_equal_tables():
    v2, v2_result, v2_bytes = convert([GOLDEN_V2.read_bytes()], spec_for(api="v2"))
    v3, v3_result, v3_bytes = convert([GOLDEN_V3.read_bytes()], spec_for(api="v3"))
    assert v2.num_rows == v3.num_rows == 12
    assert v2.equals(v3)
    assert v2.schema.equals(GREEKS.schema)
    assert v2_bytes != v3_bytes  # the metadata names the API
    assert pq.read_metadata(pa.BufferReader(v2_bytes)).metadata[b"api"] == b"v2"
    assert v2_result.checks == v3_result.checks
    assert v2_result.checks["greeks_all_zero"] == 4


def test_hand_made_body_values_land_in_dollars_and_new_york_time():
    table, _, _ = convert([GOLDEN_V3.read_bytes()], spec_for(api="v3"))
    row = table.slice(8, 1).to_pylist()[0]
    assert row["strike"] == 5612.5
    assert row["right"] == "C"
    assert row["expiration"] == JULY
    assert row["ms_of_day"] == 34_320_000
    assert row["ms_of_day2"] == 34_319_500  # 09:31:59.5 on the wire
    assert row["timestamp"].astimezone(UTC) == datetime(2024, 7, 15, 13, 32, tzinfo=UTC)
    assert (row["bid"], row["ask"], row["lambda"], row["underlying_price"]) == (27.10, 27.50, 156.3390, 5630.55)


@pytest.mark.parametrize("dataset", [d for d in DATASETS.values() if d.v2_columns and d.v3_columns and not d.is_index],
                         ids=lambda d: d.name)
def test_every_dataset_gives_equal_tables_from_v2_and_v3(dataset):
    rows = make_rows(dataset)
    v2, _, _ = convert([body(dataset, "v2", rows)], spec_for(dataset, "v2"))
    v3, _, _ = convert([body(dataset, "v3", rows)], spec_for(dataset, "v3"))
    assert v2.schema.equals(dataset.schema)
    assert v2.num_rows == len(rows)
    if dataset is OHLC:  # v2 has no vwap: kept, null
        assert v2["vwap"].null_count == v2.num_rows and v3["vwap"].null_count == 0
        v2, v3 = v2.drop_columns(["vwap"]), v3.drop_columns(["vwap"])
    assert v2.equals(v3)


def simulator_pages(url: str, params: dict):
    """The pages of one answer as streamed bodies, each fetched after the previous one was read."""
    with requests.Session() as session:
        while url and url != "null":
            with session.get(url, params=params, stream=True, timeout=30) as response:
                response.raise_for_status()
                yield response.raw
            url, params = response.headers.get("Next-Page"), None


def test_simulator_v2_pages_and_v3_stream_of_the_same_chain_give_equal_tables():
    day, expiration = date(2024, 7, 15), date(2024, 7, 19)
    window = dict(trade_date=day, expiration=expiration, end_ms=57_600_000, row_group_rows=1_000)
    with Simulator(profile="tiny", page_rows=1_500) as sim:
        v2_params = {"root": "SPXW", "exp": "20240719", "start_date": "20240715", "end_date": "20240715",
                     "ivl": "60000", "use_csv": "true"}
        v3_params = {"symbol": "SPXW", "expiration": "2024-07-19", "date": "2024-07-15", "interval": "1m",
                     "format": "csv"}
        v2, v2_result, _ = convert(simulator_pages(sim.url + GREEKS.v2_path, v2_params), spec_for(api="v2", **window))
        v3, v3_result, _ = convert(simulator_pages(sim.url + GREEKS.v3_path, v3_params), spec_for(api="v3", **window))
    assert v2_result.pages > 1 and v3_result.pages == 1
    assert v2.num_rows > 0 and v2.num_rows % 391 == 0
    assert v2.equals(v3)
    assert v2_result.checks == v3_result.checks
    assert all(count == 0 for name, count in v2_result.checks.items() if name not in ("greeks_all_zero", "no_quote_yet"))


def test_lf_line_ends_and_bare_text_fields_read_like_crlf_and_quoted():
    lf = GOLDEN_V3.read_bytes().replace(b"\r\n", b"\n").replace(b'"', b"")
    assert convert([lf], spec_for(api="v3"))[0].equals(convert([GOLDEN_V3.read_bytes()], spec_for(api="v3"))[0])


def test_short_reads_of_a_raw_page_give_the_same_table():
    data = GOLDEN_V2.read_bytes()
    assert convert([RawPage(data, most=7)], spec_for())[0].equals(convert([data], spec_for())[0])


def test_the_converter_tells_the_rows_of_each_batch_as_it_parses_them():
    # progress: the rows of a chain bigger than a batch arrive in several counts, before the file is done
    rows = make_rows(GREEKS, strikes=tuple(5000.0 + 5 * i for i in range(40)), minutes=30)  # 2,400 rows
    told: list[int] = []
    spec = spec_for(minutes=30, row_group_rows=1_000, block_size=16_384)
    result = write_parquet([io.BytesIO(body(GREEKS, "v2", rows))], io.BytesIO(), spec, on_rows=told.append)
    assert len(told) > 2 and all(0 < count <= 500 for count in told)  # gathered up to half a row group
    assert sum(told) == result.rows == len(rows)


def test_pages_each_with_their_own_header_concatenate_in_order():
    rows = make_rows(GREEKS)
    pages = [body(GREEKS, "v2", rows[:5]), body(GREEKS, "v2", rows[5:9]), body(GREEKS, "v2", rows[9:])]
    table, result, _ = convert(pages, spec_for())
    assert result.pages == 3
    assert table.equals(convert([body(GREEKS, "v2", rows)], spec_for())[0])


def test_header_only_page_gives_a_valid_empty_file():
    table, result, _ = convert([body(GREEKS, "v2", [])], spec_for())
    assert (table.num_rows, result.rows, result.row_groups) == (0, 0, 0)
    assert table.schema.equals(GREEKS.schema)


# ---------------------------------------------------------------------------------------------
# time zones


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize(
    "trade_date, utc_hour",
    [
        (date(2024, 7, 15), 13),  # EDT
        (date(2024, 1, 16), 14),  # EST
        (date(2024, 3, 8), 14),  # the Friday before the spring change
        (date(2024, 3, 10), 13),  # spring change day: EDT from 02:00
        (date(2024, 3, 11), 13),
        (date(2024, 11, 1), 13),
        (date(2024, 11, 3), 14),  # autumn change day: EST from 02:00
        (date(2024, 11, 4), 14),
    ],
)
def test_0930_new_york_is_the_right_utc_instant(api, trade_date, utc_hour):
    rows = make_rows(GREEKS, trade_date)
    table, _, _ = convert([body(GREEKS, api, rows)], spec_for(GREEKS, api, trade_date))
    first = table["timestamp"][0].as_py()
    assert first.astimezone(UTC) == datetime.combine(trade_date, time(utc_hour, 30), UTC)
    assert (first.hour, first.minute, first.tzinfo.key) == (9, 30, "America/New_York")
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="America/New_York")


def test_session_offset_is_taken_from_the_session_not_from_midnight():
    assert session_utc_offset_ms(date(2024, 3, 10)) == -4 * 3_600_000
    assert session_utc_offset_ms(date(2024, 11, 3)) == -5 * 3_600_000


# ---------------------------------------------------------------------------------------------
# streaming and row groups


def test_a_large_chain_is_streamed_and_never_buffers_more_than_a_row_group():
    rows = make_rows(GREEKS, strikes=[4000.0 + 5 * i for i in range(24)], minutes=391)
    data = body(GREEKS, "v2", rows)
    spec = spec_for(minutes=391, row_group_rows=2_500, block_size=16 << 10)
    page = RawPage(data)
    batches = iter_batches([page], spec)
    first = next(batches)
    assert page.bytes_read < len(data) / 2  # the first batch came before the body was read (pyarrow reads ahead a few dozen blocks)
    assert first.num_rows < spec.row_group_rows

    table, result, raw = convert([RawPage(data)], spec_for(minutes=391, row_group_rows=2_500, block_size=64 << 10))
    assert result.rows == table.num_rows == len(rows) == 18_768
    assert result.max_buffered_rows == spec.row_group_rows
    sizes = [pq.read_metadata(pa.BufferReader(raw)).row_group(i).num_rows for i in range(result.row_groups)]
    assert sizes == [2_500] * 7 + [1_268]
    assert result.checks["contracts_short"] == result.checks["contracts_long"] == 0


def test_the_readers_small_batches_are_gathered_in_order_up_to_a_bound():
    batches = [pa.record_batch({"x": pa.array(range(start, start + size))})
               for start, size in ((0, 3), (3, 3), (6, 3), (9, 10), (19, 2))]
    together = list(gathered(batches, 7))
    assert [b.num_rows for b in together] == [6, 3, 10, 2]  # at most 7, unless one batch alone is longer
    assert pa.Table.from_batches(together)["x"].to_pylist() == list(range(21))


def test_row_group_buffer_cuts_exact_groups_across_batch_boundaries():
    buffer = RowGroupBuffer(5)
    batch = pa.record_batch({"x": pa.array(range(7))})
    groups = [t for b in (batch, batch, batch) for t in buffer.add(b)]
    rest = buffer.flush()
    assert [g.num_rows for g in groups] == [5, 5, 5, 5]
    assert rest.num_rows == 1 and buffer.flush() is None
    assert buffer.max_buffered_rows == 5
    assert pa.concat_tables([*groups, rest])["x"].to_pylist() == list(range(7)) * 3


def test_an_error_part_way_leaves_neither_the_target_nor_a_temp_file(tmp_path):
    rows = make_rows(GREEKS, strikes=[5000.0 + 5 * i for i in range(20)], minutes=100)
    data = body(GREEKS, "v2", rows)
    target = storage.data_file_path(tmp_path, "greeks-1m", "SPXW", JULY, JULY)
    pages = [RawPage(data), RawPage(data, cut_at=len(data) // 2)]
    with pytest.raises(BodyTruncated):
        with storage.atomic_output(target) as sink:
            write_parquet(pages, sink, spec_for(minutes=100, block_size=16 << 10, row_group_rows=1_000))
    assert pages[1].error is not None
    assert list(target.parent.iterdir()) == []


def test_the_same_response_gives_the_same_bytes_and_sha256(tmp_path):
    data = GOLDEN_V2.read_bytes()
    infos = []
    for name in ("a", "b"):
        path = tmp_path / name / "spxw_exp_20240715.parquet"
        with storage.atomic_output(path) as sink:
            result = write_parquet([io.BytesIO(data)], sink, spec_for())
        infos.append(storage.verify_parquet(path, result.rows))
    assert infos[0].sha256 == infos[1].sha256
    assert infos[0].rows == 12


def test_file_metadata_names_the_source_without_host_or_time():
    spec = spec_for(metadata={"endpoint": "http://127.0.0.1:25510/v2/bulk_hist/option/greeks?root=SPXW",
                              "params": {"root": "SPXW", "ivl": 60000}, "rate": None, "annual_div": 0.5})
    _, _, data = convert([GOLDEN_V2.read_bytes()], spec)
    meta = {k.decode(): v.decode() for k, v in pq.read_metadata(pa.BufferReader(data)).metadata.items()}
    assert meta["endpoint"] == "/v2/bulk_hist/option/greeks?root=SPXW"
    assert meta["params"] == '{"ivl": 60000, "root": "SPXW"}'
    assert (meta["dataset"], meta["root"], meta["trade_date"], meta["api"]) == ("greeks", "SPXW", "2024-07-15", "v2")
    assert meta["schema_version"] == str(GREEKS.schema_version) and meta["spxdl_version"]
    assert meta["annual_div"] == "0.5" and "rate" not in meta  # unset settings are left out
    assert "127.0.0.1" not in data.decode("latin-1")


def test_parquet_is_zstd_with_dictionaries_for_contract_columns_and_statistics_for_contract_and_time():
    _, _, data = convert([GOLDEN_V2.read_bytes()], spec_for())
    group = pq.read_metadata(pa.BufferReader(data)).row_group(0)
    columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    assert all(c.compression == "ZSTD" for c in columns.values())
    assert "RLE_DICTIONARY" in columns["right"].encodings
    assert "RLE_DICTIONARY" not in columns["delta"].encodings
    assert columns["strike"].statistics.min == 5600.0 and columns["strike"].statistics.max == 5612.5
    with_statistics = {name for name, column in columns.items() if column.is_stats_set}
    assert with_statistics == {"expiration", "strike", "right", "timestamp", "ms_of_day"}


# ---------------------------------------------------------------------------------------------
# reading a whole archive


def test_duckdb_and_pyarrow_read_a_two_root_multi_day_archive_as_one_table(tmp_path):
    days = [date(2024, 1, 16), date(2024, 1, 17), date(2024, 7, 15)]
    for root in ("SPX", "SPXW"):
        for day in days:
            rows = make_rows(GREEKS, day)
            spec = spec_for(trade_date=day, root=root)
            with storage.atomic_output(storage.data_file_path(tmp_path, "greeks-1m", root, day, day)) as sink:
                write_parquet([io.BytesIO(body(GREEKS, "v2", rows))], sink, spec)
    per_file = len(make_rows(GREEKS))

    glob = f"{tmp_path}/greeks-1m/**/*.parquet"
    found = duckdb.sql(
        f"SELECT root, CAST(trade_date AS VARCHAR) AS day, count(*) AS n, "
        f"min(epoch_ms(timestamp)) AS first FROM read_parquet('{glob}', hive_partitioning=true) "
        f"GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert [(r, d, n) for r, d, n, _ in found] == [(r, d.isoformat(), per_file) for r in ("SPX", "SPXW") for d in days]
    first_instants = {d: f for _, d, _, f in found}
    assert first_instants["2024-01-16"] == datetime(2024, 1, 16, 14, 30, tzinfo=UTC).timestamp() * 1000

    table = ds.dataset(tmp_path / "greeks-1m", format="parquet", partitioning="hive").to_table(use_threads=False)
    assert table.num_rows == per_file * 6
    assert {"root", "trade_date", *GREEKS.schema.names} == set(table.schema.names)
    assert sorted(set(table["root"].to_pylist())) == ["SPX", "SPXW"]


# ---------------------------------------------------------------------------------------------
# schema drift and bad bodies


@pytest.mark.parametrize(
    "header, named",
    [
        (tuple(c if c != "implied_vol" else "iv" for c in GREEKS.v2_columns), ["implied_vol"]),
        (tuple(c for c in GREEKS.v2_columns if c != "rho"), ["rho"]),
    ],
    ids=["renamed", "missing"],
)
def test_a_header_without_a_pinned_column_raises_schema_mismatch_naming_it(header, named):
    rows = make_rows(GREEKS)
    with pytest.raises(SchemaMismatch) as raised:
        convert([body(GREEKS, "v2", rows, header=header)], spec_for())
    assert raised.value.columns == named
    assert all(name in str(raised.value) for name in named)
    assert ",".join(GREEKS.v2_columns) in str(raised.value)  # the header expected


@pytest.mark.parametrize(
    "answer, shown",
    [(b"", "an empty body"), (b"<!DOCTYPE html><html><body>Login</body></html>\n", "<!DOCTYPE html>"),
     (b'{"response": []}\n', '{"response": []}')],
    ids=["empty", "html", "json"],
)
def test_an_answer_that_is_not_csv_raises_schema_mismatch_showing_its_first_line(answer, shown):
    with pytest.raises(SchemaMismatch) as raised:
        convert([answer], spec_for(api="v3"))
    assert shown in str(raised.value)
    assert ",".join(GREEKS.v3_columns) in str(raised.value)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_extra_columns_are_left_out_and_named_in_the_result_and_the_metadata(api):
    rows = make_rows(GREEKS)
    header = (*GREEKS.columns(api)[:6], "gamma", *GREEKS.columns(api)[6:], "vendor_note")
    drifted = body(GREEKS, api, rows, header=header)
    table, result, data = convert([drifted], spec_for(api=api))
    assert table.equals(convert([body(GREEKS, api, rows)], spec_for(api=api))[0])
    assert result.extra_columns == ("gamma", "vendor_note")
    assert pq.read_metadata(pa.BufferReader(data)).metadata[b"extra_columns"] == b"gamma,vendor_note"


def test_a_reordered_header_reads_by_name():
    rows = make_rows(GREEKS)
    columns = list(GREEKS.v2_columns)
    columns[5], columns[6] = columns[6], columns[5]  # ask before bid
    table, result, data = convert([body(GREEKS, "v2", rows, header=tuple(columns))], spec_for())
    assert table.equals(convert([body(GREEKS, "v2", rows)], spec_for())[0])
    assert result.extra_columns == () and b"extra_columns" not in pq.read_metadata(pa.BufferReader(data)).metadata


def test_the_v2_header_on_a_v3_request_is_a_schema_mismatch():
    with pytest.raises(SchemaMismatch):
        convert([GOLDEN_V2.read_bytes()], spec_for(api="v3"))


def test_a_value_of_the_wrong_type_is_a_data_error_naming_the_page():
    data = GOLDEN_V2.read_bytes().replace(b"38.10", b"abc")
    with pytest.raises(DataError, match="page 1"):
        convert([data], spec_for())


def test_a_page_cut_inside_pyarrow_re_raises_the_pages_own_error():
    data = GOLDEN_V2.read_bytes()
    page = RawPage(data, cut_at=len(data) - 40)
    with pytest.raises(BodyTruncated) as raised:
        convert([page], spec_for())
    assert raised.value is page.error


def test_spec_refuses_an_unknown_mode_and_a_missing_endpoint():
    with pytest.raises(ConfigError):
        spec_for(validation="ignore")
    with pytest.raises(ConfigError):
        spec_for(dataclasses.replace(GREEKS, v3_path=None, v3_columns=None), "v3")


# ---------------------------------------------------------------------------------------------
# checks: each one counted in flag mode, dropped in drop mode, raised in fail mode


def _set(**values):
    def mutate(row):
        row.update(values)
    return mutate


ROW_CHECKS = {
    "null_required": _set(bid=None),
    "strike_nonpositive": _set(strike=0.0),
    "right_invalid": _set(right="X"),
    "negative_quote": _set(bid=-0.05),
    "crossed_quote": _set(bid=5.0, ask=4.0),
    "implied_vol_range": _set(implied_vol=12.0),
    "outside_window": _set(ms_of_day=START - IVL),
    "expiration_mismatch": _set(expiration=date(2024, 7, 16)),
}
OBSERVED = {"date_mismatch", "no_quote_yet", "greeks_all_zero"}


def _mutated_body(api: str, mutate) -> bytes:
    rows = make_rows(GREEKS)
    mutate(rows[4])
    return body(GREEKS, api, rows)


def test_a_clean_chain_flags_nothing():
    _, result, _ = convert([body(GREEKS, "v2", make_rows(GREEKS))], spec_for())
    assert set(result.checks) == {*ROW_CHECKS, *OBSERVED, "contracts_short", "contracts_long"}
    assert all(count == 0 for count in result.checks.values())


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("check", sorted(ROW_CHECKS))
def test_each_row_check_is_counted_in_flag_mode(check, api):
    table, result, _ = convert([_mutated_body(api, ROW_CHECKS[check])], spec_for(api=api))
    assert result.checks[check] == 1
    assert table.num_rows == len(make_rows(GREEKS)) and result.dropped == 0


@pytest.mark.parametrize("check", sorted(ROW_CHECKS))
def test_each_row_check_drops_its_row_in_drop_mode(check):
    table, result, _ = convert([_mutated_body("v2", ROW_CHECKS[check])], spec_for(validation="drop"))
    assert result.dropped == 1 and result.checks[check] == 1
    assert table.num_rows == result.rows == len(make_rows(GREEKS)) - 1


@pytest.mark.parametrize("check", sorted(ROW_CHECKS))
def test_each_row_check_raises_in_fail_mode(check):
    with pytest.raises(ValidationFailed) as raised:
        convert([_mutated_body("v2", ROW_CHECKS[check])], spec_for(validation="fail"))
    assert raised.value.counts[check] == 1


@pytest.mark.parametrize("validation", ["flag", "drop", "fail"])
def test_the_vendors_no_quote_yet_row_is_observed_and_kept_in_every_mode(validation):
    rows = make_rows(GREEKS)
    rows[1].update(bid=0.0, ask=0.0, delta=0.0, theta=0.0, vega=0.0, rho=0.0, epsilon=0.0, implied_vol=0.4)
    rows[1]["lambda"] = 3.5  # the vendor's row keeps lambda and implied_vol
    table, result, _ = convert([body(GREEKS, "v2", rows)], spec_for(validation=validation))
    assert (result.checks["no_quote_yet"], result.checks["greeks_all_zero"]) == (1, 1)
    assert table.num_rows == len(rows) and result.dropped == 0


@pytest.mark.parametrize("validation", ["flag", "drop", "fail"])
def test_a_row_of_another_date_is_observed_and_kept_in_every_mode(validation):
    table, result, _ = convert([_mutated_body("v3", _set(date=date(2024, 7, 12)))], spec_for(api="v3", validation=validation))
    assert result.checks["date_mismatch"] == 1
    assert table.num_rows == len(make_rows(GREEKS))
    kept = table.filter(pa.compute.equal(pa.compute.cast(table["timestamp"], pa.date32()), date(2024, 7, 12)))
    assert kept.num_rows == 1  # its own date, not the trade date


def test_drop_mode_counts_observations_on_the_rows_it_keeps():
    rows = make_rows(GREEKS)
    for row in rows[1:3]:  # two placeholder rows; the second is also crossed, so drop leaves it out
        row.update(bid=0.0, ask=0.0, delta=0.0, theta=0.0, vega=0.0, rho=0.0, epsilon=0.0)
    rows[2].update(bid=1.0)
    flagged = convert([body(GREEKS, "v2", rows)], spec_for(validation="flag"))[1]
    table, dropped, _ = convert([body(GREEKS, "v2", rows)], spec_for(validation="drop"))
    assert flagged.checks["greeks_all_zero"] == 2 and flagged.checks["crossed_quote"] == 1
    assert (dropped.dropped, dropped.checks["crossed_quote"]) == (1, 1)  # counted as received, left out
    assert table.num_rows == len(rows) - 1 and dropped.checks["greeks_all_zero"] == 1  # what the file holds


def test_each_file_names_the_validation_mode_it_was_written_in():
    for mode in ("flag", "drop"):
        _, _, data = convert([GOLDEN_V2.read_bytes()], spec_for(validation=mode))
        assert pq.read_metadata(pa.BufferReader(data)).metadata[b"validation"] == mode.encode()


@pytest.mark.parametrize(
    "change, short, long",
    [(lambda rows: rows.pop(4), 1, 0), (lambda rows: rows.insert(4, dict(rows[4])), 0, 1)],
    ids=["missing-row", "extra-row"],
)
def test_contracts_with_too_few_or_too_many_rows_are_counted(change, short, long):
    rows = make_rows(GREEKS)
    change(rows)
    _, result, _ = convert([body(GREEKS, "v2", rows)], spec_for())
    assert (result.checks["contracts_short"], result.checks["contracts_long"]) == (short, long)
    with pytest.raises(ValidationFailed):
        convert([body(GREEKS, "v2", rows)], spec_for(validation="fail"))


def test_rows_per_contract_are_counted_across_pages_and_batches():
    rows = make_rows(GREEKS, minutes=391)
    pages = [body(GREEKS, "v2", rows[:700]), body(GREEKS, "v2", rows[700:])]
    _, result, _ = convert(pages, spec_for(minutes=391, block_size=4 << 10))
    assert result.checks["contracts_short"] == result.checks["contracts_long"] == 0


@pytest.mark.parametrize("dataset", [QUOTE, OHLC, OPEN_INTEREST, EOD], ids=lambda d: d.name)
def test_checks_apply_only_where_the_dataset_has_the_columns(dataset):
    _, result, _ = convert([body(dataset, "v2", make_rows(dataset))], spec_for(dataset))
    assert ("crossed_quote" in result.checks) == ("ask" in dataset.schema.names)
    assert ("outside_window" in result.checks) == dataset.uses_interval
    assert "greeks_all_zero" not in result.checks and "implied_vol_range" not in result.checks
    assert all(count == 0 for count in result.checks.values())


# ---------------------------------------------------------------------------------------------
# time columns keep the wire's own date (docs/wire.md §6.3)

RECORDED_SNAPSHOT = DATA / "v3-option-snapshot-greeks-first-order-SPXW.csv"  # a real row, same columns


def test_an_underlying_time_of_the_previous_evening_keeps_its_date():
    spec = spec_for(api="v3", trade_date=date(2026, 3, 4), expiration=date(2026, 3, 13), start_ms=0, end_ms=86_399_999)
    table, result, _ = convert([RECORDED_SNAPSHOT.read_bytes()], spec)
    row = table.to_pylist()[0]
    assert row["underlying_timestamp"].replace(tzinfo=None) == datetime(2026, 3, 3, 16, 3, 53)
    assert row["underlying_timestamp"].astimezone(UTC) == datetime(2026, 3, 3, 21, 3, 53, tzinfo=UTC)
    assert row["ms_of_day2"] == 57_833_000
    assert row["timestamp"].replace(tzinfo=None) == datetime(2026, 3, 4, 9, 7, 13, 376000)
    assert result.checks["date_mismatch"] == 0  # the row's own time is on the trade date


def test_v2_fills_the_zoned_columns_from_the_trade_date_and_the_wires_ms():
    table, _, _ = convert([GOLDEN_V2.read_bytes()], spec_for(api="v2"))
    row = table.to_pylist()[8]
    assert row["underlying_timestamp"].replace(tzinfo=None) == datetime(2024, 7, 15, 9, 31, 59, 500000)
    eod_rows = make_rows(EOD)
    eod, _, _ = convert([body(EOD, "v2", eod_rows)], spec_for(EOD))
    first = eod.to_pylist()[0]
    assert first["last_trade"].replace(tzinfo=None) == datetime(2024, 7, 15, 9, 29, 59, 500000)


def test_an_eod_report_of_the_next_morning_keeps_its_own_date():
    rows = make_rows(EOD)
    text = body(EOD, "v3", rows).replace(b"2024-07-15T09:30:00", b"2024-07-16T00:05:00", 1)
    table, result, _ = convert([text], spec_for(EOD, "v3"))
    assert table.to_pylist()[0]["timestamp"].replace(tzinfo=None) == datetime(2024, 7, 16, 0, 5)
    assert result.checks["date_mismatch"] == 1 and table.num_rows == len(rows)
