"""The row checks: every name described, contract counts merged right, thresholds of early-close days."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from spxdl import checks
from spxdl.checks import ContractCounter
from spxdl.convert import iter_batches
from spxdl.datasets import DATASETS
from test_convert import GREEKS, an_api, body, convert, make_rows, spec_for


def test_every_check_a_conversion_counts_is_described():
    counted = set()
    for dataset in DATASETS.values():
        api = an_api(dataset)
        _, result, _ = convert([body(dataset, api, make_rows(dataset))], spec_for(dataset, api))
        counted |= set(result.checks)
    assert counted == set(checks.CHECKS)
    assert checks.OBSERVATIONS <= set(checks.CHECKS)


def test_contract_counts_merge_across_many_group_bys():
    rows = make_rows(GREEKS, minutes=391)
    rows.pop(1000)  # one contract short
    batches = list(iter_batches([io.BytesIO(body(GREEKS, "v2", rows))], spec_for(minutes=391, block_size=4 << 10)))
    counter = ContractCounter()
    counter.GROUP_ROWS = 150  # a group-by every few batches, so that partial counts are merged
    for batch in batches:
        counter.add(batch)
    totals = counter.totals()
    assert sorted(totals["count_all"].to_pylist()) == [390, 391, 391, 391]
    assert counter.short_and_long(391) == (1, 0)
    assert counter.short_and_long(390) == (0, 3)
    assert counter.short_and_long(226, 391) == (0, 0)


EARLY_CLOSE_MS = 47_700_000  # 13:15 New York
FULL_DAY_MS = 57_600_000  # 16:00


@pytest.mark.parametrize("last_ms", [EARLY_CLOSE_MS, FULL_DAY_MS], ids=["stops-at-the-early-close", "runs-to-16:00"])
def test_an_early_close_day_flags_neither_length_of_session(last_ms):
    minutes = (last_ms - 34_200_000) // 60_000 + 1
    rows = make_rows(GREEKS, minutes=minutes)
    spec = spec_for(minutes=391, validation="fail", early_close_ms=EARLY_CLOSE_MS)
    table, result, _ = convert([body(GREEKS, "v2", rows)], spec)
    assert table.num_rows == len(rows)
    assert result.checks["contracts_short"] == result.checks["contracts_long"] == 0


def test_an_early_close_day_still_flags_a_contract_that_stops_before_the_early_close():
    rows = [row for row in make_rows(GREEKS, minutes=226) if not (row["strike"] == 5600.0 and row["ms_of_day"] >= 47_000_000)]
    _, result, _ = convert([body(GREEKS, "v2", rows)], spec_for(minutes=391, early_close_ms=EARLY_CLOSE_MS))
    assert (result.checks["contracts_short"], result.checks["contracts_long"]) == (2, 0)


def test_without_an_early_close_a_session_that_stops_at_13_15_is_short():
    _, result, _ = convert([body(GREEKS, "v2", make_rows(GREEKS, minutes=226))], spec_for(minutes=391))
    assert result.checks["contracts_short"] == 4


def test_observations_count_only_where_the_dataset_has_the_columns():
    columns = {"bid": pa.array([0.0, 1.0]), "ask": pa.array([0.0, 1.1])}
    assert checks.observations(DATASETS["quote"], columns) == {}
    greeks = {name: pa.array([0.0, 0.5]) for name in GREEKS.greek_columns}
    assert checks.observations(GREEKS, {**columns, **greeks}) == {"no_quote_yet": 1, "greeks_all_zero": 1}
