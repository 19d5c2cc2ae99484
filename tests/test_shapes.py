"""The archive's shape: recorded on first use, the same shape passes, another is refused, schema versions upgrade."""

from __future__ import annotations

import json

import pytest

from spxdl import shapes, storage
from spxdl.errors import ArchiveMismatch, StorageError

SHAPE = {
    "dataset": "greeks",
    "interval": "1m",
    "start_ms": 34_200_000,
    "end_ms": 57_600_000,
    "rate": "SOFR",
    "annual_div": 0.0,
    "schema_version": 1,
    "source": "simulator",
}


def test_the_first_use_records_the_shape_and_the_same_shape_passes(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)
    assert json.loads(storage.archive_json_path(tmp_path, "greeks-1m").read_text()) == SHAPE
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", dict(SHAPE))


def test_a_different_shape_is_refused_and_told_to_use_another_data_dir(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)
    with pytest.raises(ArchiveMismatch) as raised:
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "rate": "TREASURY_M1", "source": "terminal"})
    message = str(raised.value)
    assert "another data dir" in message
    assert "rate: 'SOFR' in the archive, 'TREASURY_M1' asked" in message and "source" in message
    assert json.loads(storage.archive_json_path(tmp_path, "greeks-1m").read_text()) == SHAPE


def test_an_archive_of_an_older_schema_version_is_upgraded_and_a_newer_one_refused(tmp_path, caplog):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "schema_version": 1})
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "schema_version": 2})
    assert json.loads(storage.archive_json_path(tmp_path, "greeks-1m").read_text())["schema_version"] == 2
    assert "union_by_name" in caplog.text and "--force" in caplog.text
    with pytest.raises(ArchiveMismatch, match="schema_version: 2 in the archive, 1 asked"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "schema_version": 1})
    with pytest.raises(ArchiveMismatch, match="rate"):  # another difference is never upgraded away
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "schema_version": 3, "rate": "TREASURY_M1"})


def test_each_archive_directory_has_its_own_shape(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)
    shapes.ensure_archive_shape(tmp_path, "greeks-5m", {**SHAPE, "interval": "5m"})
    assert json.loads(storage.archive_json_path(tmp_path, "greeks-5m").read_text())["interval"] == "5m"


def test_an_unreadable_shape_file_is_a_storage_error(tmp_path):
    path = storage.archive_json_path(tmp_path, "greeks-1m")
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    with pytest.raises(StorageError, match="another data dir"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)
