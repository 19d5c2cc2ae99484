"""The simulator's wire formats against docs/wire.md and the recorded real bodies, byte for byte."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from spxdl.simulator import wire
from spxdl.simulator import columns
from spxdl.simulator.columns import DATASETS, EOD, FIELD_KINDS, GREEK, INT, OHLC, PRICE, QUOTE
from spxdl.simulator.rows import Block, iso_time

from documented_wire import V2_BULK_HEADERS, V2_FORMATS, V2_HEADERS, V3_HEADERS

DATA = Path(__file__).parent / "data"

DOC_V2_GREEKS = V2_BULK_HEADERS["greeks"]
DOC_V3_GREEKS = V3_HEADERS["greeks"]
DOC_V2_FORMATS = {name: fields for name, fields in V2_FORMATS.items() if name != "greeks"}
DOC_V3_COLUMNS = {name: header for name, header in V3_HEADERS.items() if name not in ("greeks", "index_price")}


def test_greeks_headers_are_the_documented_ones():
    assert ",".join(DATASETS["greeks"].v2_columns) == DOC_V2_GREEKS
    assert ",".join(DATASETS["greeks"].v3_columns) == DOC_V3_GREEKS


@pytest.mark.parametrize("name", sorted(DOC_V2_FORMATS))
def test_v2_formats_are_the_documented_ones(name):
    assert ",".join(DATASETS[name].v2_format) == DOC_V2_FORMATS[name]
    assert DATASETS[name].v2_columns[:4] == ("root", "expiration", "strike", "right")


@pytest.mark.parametrize("name", sorted(DOC_V3_COLUMNS))
def test_v3_columns_are_the_documented_ones(name):
    assert ",".join(DATASETS[name].v3_columns) == DOC_V3_COLUMNS[name]


def test_index_headers_are_the_documented_ones():
    assert ",".join(columns.INDEX_V2_FORMAT) == V2_HEADERS["index_price"]
    assert ",".join(columns.INDEX_V3_COLUMNS) == V3_HEADERS["index_price"]


def _recorded(name: str) -> tuple[bytes, list]:
    raw = (DATA / name).read_bytes()
    doc = json.loads(raw, object_pairs_hook=list, parse_float=str, parse_int=str)
    return raw, doc


def _canonical_row(ds, pairs: list[tuple[str, str]]) -> tuple:
    """A recorded data object as the simulator's row tuple (numbers parsed, text kept)."""
    values = {ds.canonical(k): v for k, v in pairs}
    kinds = {PRICE: float, GREEK: float, INT: int}
    return tuple(kinds.get(FIELD_KINDS.get(f), str)(values[f]) for f in ds.fields)


@pytest.mark.parametrize("ds,name,strike", [
    (QUOTE, "v3-option-history-quote-AAPL.json", 150),
    (OHLC, "v3-option-history-ohlc-AAPL.json", 275),
    (EOD, "v3-option-history-eod-AAPL.json", 220),
])
def test_v3_json_history_matches_recorded_body_byte_for_byte(ds, name, strike):
    raw, doc = _recorded(name)
    item = dict(dict(doc)["response"][0])
    contract = dict(item["contract"])
    assert [k for k, _ in item["data"][0]] == list(ds.v3_json_keys)   # the recorded key order
    rows = [_canonical_row(ds, pairs) for pairs in item["data"]]
    block = Block(contract["symbol"], date.fromisoformat(contract["expiration"]), strike, "C", rows)
    assert contract["strike"] == "%d.000" % strike
    assert wire.v3_json(ds, [block]) == raw


def test_v3_json_lists_match_recorded_bodies_byte_for_byte():
    raw, doc = _recorded("v3-option-list-dates-quote-AAPL.json")
    days = [date.fromisoformat(dict(o)["date"]) for o in dict(doc)["response"]]
    assert wire.dates_body("v3", "json", days) == raw
    raw, doc = _recorded("v3-option-list-expirations-SPY.json")
    exps = [date.fromisoformat(dict(o)["expiration"]) for o in dict(doc)["response"]]
    assert wire.expirations_body("v3", "json", "SPY", exps) == raw


def test_v2_csv_rows_prepend_the_contract_in_tenths_of_a_cent_with_crlf():
    rows = [(34_200_000, 114.95, 115.05, 0.99884, -0.03931, 0.0708, 0.7094, -1.9697, 1.5629, 3.3828, 0.0,
             34_200_000, 5179.94, 20240314)]
    body = wire.v2_csv(DATASETS["greeks"], [Block("SPXW", date(2024, 3, 15), 5065, "C", rows)])
    assert body == (DOC_V2_GREEKS + "\r\n" + "SPXW,20240315,5065000,C,34200000,114.95,115.05,0.9988,-0.0393,"
                    "0.0708,0.7094,-1.9697,1.5629,3.3828,0.0000,34200000,5179.94,20240314\r\n").encode()


def test_v3_csv_uses_iso_times_dollar_strikes_and_right_words():
    ts = iso_time(date(2024, 11, 4), 34_500_000)
    rows = [(ts, 0.0, 0.02, 0.0026, -0.0141, 0.1913, 0.0063, -0.0064, 55.293, 0.5874, 0.0721, ts, 220.66)]
    body = wire.v3_csv(DATASETS["greeks"], [Block("AAPL", date(2024, 11, 8), 262, "C", rows)])
    # The vendor's sample row (docs/wire.md 6.3), with the strike the simulator can list.
    assert body.split(b"\r\n")[1] == (b"AAPL,2024-11-08,262.000,CALL,2024-11-04T09:35:00,0.00,0.02,0.0026,"
                                      b"-0.0141,0.1913,0.0063,-0.0064,55.2930,0.5874,0.0721,"
                                      b"2024-11-04T09:35:00,220.66")
    assert body.endswith(b"\r\n") and body.count(b"\n") == body.count(b"\r\n") == 2


def test_iso_time_trims_the_fraction_like_the_terminal():
    assert iso_time(date(2024, 11, 1), 62_155_428) == "2024-11-01T17:15:55.428"
    assert iso_time(date(2024, 1, 4), 62_226_020) == "2024-01-04T17:17:06.02"
    assert iso_time(date(2024, 12, 24), 34_200_000) == "2024-12-24T09:30:00"


def test_v2_json_envelope_has_header_and_bulk_items():
    rows = [(34_200_000, 1, 5, 5892.3, 50, 1, 5, 5909.2, 50, 20250220)]
    block = Block("SPX", date(2025, 2, 21), 200, "C", rows)
    body = wire.v2_json_head(QUOTE.v2_format, "null", 3) + wire.v2_json_tail(wire.v2_json_items(QUOTE, [block]))
    doc = json.loads(body)
    assert doc["header"] == {"latency_ms": 3, "next_page": "null", "format": list(QUOTE.v2_format)}
    assert doc["response"] == [{"ticks": [[34200000, 1, 5, 5892.3, 50, 1, 5, 5909.2, 50, 20250220]],
                                "contract": {"root": "SPX", "expiration": 20250221, "strike": 200000,
                                             "right": "C"}}]
    assert b'"format": ["ms_of_day","bid_size",' in body and b"5892.30" in body


def test_paginate_splits_rows_across_contracts_and_keeps_order():
    blocks = [Block("SPXW", date(2024, 3, 15), k, "C", [(k, i) for i in range(5)]) for k in (1, 2, 3)]
    pages = wire.paginate(blocks, 4)
    assert [sum(len(b.rows) for b in p) for p in pages] == [4, 4, 4, 3]
    flat = [r for p in pages for b in p for r in b.rows]
    assert flat == [r for b in blocks for r in b.rows]
    assert wire.paginate(blocks, None) == [blocks]
