"""The archive's shape: recorded on first use, the same shape passes, another is refused, schema versions upgrade."""

from __future__ import annotations

import json

import pytest

from spxdl import shapes, storage
from spxdl.archive_fs import LocalArchive
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


SIMULATED = {**SHAPE, "sim_profile": "tiny", "sim_seed": 0, "window": [0, 7]}


def test_a_simulated_archive_refuses_another_profile_or_seed_but_not_another_window(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SIMULATED)
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SIMULATED, "window": [0, 60]})  # a wider run is fine
    assert shapes.recorded_shape(tmp_path, "greeks-1m")["window"] == [0, 7]  # the window it was made with stays
    with pytest.raises(ArchiveMismatch, match="sim_profile: 'tiny' in the archive, 'realistic' asked"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SIMULATED, "sim_profile": "realistic"})
    with pytest.raises(ArchiveMismatch, match="sim_seed: 0 in the archive, 5 asked"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SIMULATED, "sim_seed": 5})


def test_a_simulated_archive_recorded_before_profiles_gets_them_from_the_next_run(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)  # as an older spxdl recorded it
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SIMULATED)
    assert shapes.recorded_shape(tmp_path, "greeks-1m") == SIMULATED
    with pytest.raises(ArchiveMismatch, match="sim_profile"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SIMULATED, "sim_profile": "realistic"})
    real = tmp_path / "real"
    shapes.ensure_archive_shape(real, "greeks-1m", {**SHAPE, "source": "terminal"})
    with pytest.raises(ArchiveMismatch, match="source"):  # a real archive never takes simulated keys
        shapes.ensure_archive_shape(real, "greeks-1m", SIMULATED)
    assert shapes.recorded_shape(real, "greeks-1m") == {**SHAPE, "source": "terminal"}


def test_the_recorded_shape_is_none_before_the_first_run(tmp_path):
    assert shapes.recorded_shape(tmp_path, "greeks-1m") is None


def test_the_shape_of_a_simulated_run_names_profile_seed_and_window():
    from spxdl.config import Settings
    from spxdl.datasets import get_dataset

    settings = Settings(max_dte=7)
    simulated = shapes.archive_shape(get_dataset("greeks"), settings, {"profile": "tiny", "seed": "0"})
    assert (simulated["source"], simulated["sim_profile"], simulated["sim_seed"], simulated["window"]) == (
        "simulator", "tiny", 0, [0, 7])
    real = shapes.archive_shape(get_dataset("greeks"), settings, None)
    assert real["source"] == "terminal" and not {"sim_profile", "sim_seed", "window"} & set(real)


def test_the_validation_mode_is_part_of_the_shape_and_another_mode_is_refused(tmp_path):
    from spxdl.config import Settings
    from spxdl.datasets import get_dataset

    greeks = get_dataset("greeks")
    assert shapes.archive_shape(greeks, Settings(validation_mode="drop"), None)["validation"] == "drop"
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", shapes.archive_shape(greeks, Settings(), None))
    with pytest.raises(ArchiveMismatch, match="validation: 'flag' in the archive, 'drop' asked"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", shapes.archive_shape(greeks, Settings(validation_mode="drop"), None))


def test_an_archive_recorded_before_validation_modes_gets_the_next_runs_mode(tmp_path):
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", SHAPE)  # as an older spxdl recorded it
    shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "validation": "drop"})
    assert shapes.recorded_shape(tmp_path, "greeks-1m")["validation"] == "drop"
    with pytest.raises(ArchiveMismatch, match="validation"):
        shapes.ensure_archive_shape(tmp_path, "greeks-1m", {**SHAPE, "validation": "flag"})


# ------------------------------------------------------------------ the data elsewhere (an object store)


def test_the_shape_is_published_next_to_data_that_lives_elsewhere(tmp_path):
    data = LocalArchive(tmp_path / "data")
    shapes.ensure_archive_shape(tmp_path / "ledger", "greeks-1m", SHAPE, mirror=data)
    recorded = storage.archive_json_path(tmp_path / "ledger", "greeks-1m").read_bytes()
    assert data.read_bytes(data.at("greeks-1m/_archive.json")) == recorded


def test_a_fresh_ledger_takes_the_published_shape_and_refuses_another(tmp_path):
    data = LocalArchive(tmp_path / "data")
    shapes.ensure_archive_shape(tmp_path / "first", "greeks-1m", SHAPE, mirror=data)
    with pytest.raises(ArchiveMismatch, match=r"data/greeks-1m holds data of another shape \(rate: 'SOFR'"):
        shapes.ensure_archive_shape(tmp_path / "fresh", "greeks-1m", {**SHAPE, "rate": "TREASURY_M1"}, mirror=data)
    assert json.loads(storage.archive_json_path(tmp_path / "fresh", "greeks-1m").read_text()) == SHAPE
