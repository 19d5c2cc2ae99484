"""The ledger's copies next to the data when the data lives elsewhere (spxdl.ledger.mirror, through Ledger).

Most cases use a second local directory as the data's place (the same code path as an object
store, without one); the last ones use moto's S3 API on loopback.
"""

from __future__ import annotations

import json
import logging
import pickle
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spxdl import storage
from spxdl.archive_fs import LocalArchive, ObjectArchive
from spxdl.ledger import ExpirationState, Ledger, Task, TaskState

TASK = Task("greeks-1m", "SPXW", date(2024, 3, 14))
EXPIRATION = date(2024, 3, 15)


def write(archive, task: Task = TASK, rows: int = 100) -> storage.FileInfo:
    location = archive.data_file(task.archive, task.root, task.trade_date, EXPIRATION)

    def fill(handle) -> int:
        pq.write_table(pa.table({"strike": [float(i) for i in range(rows)]}), handle)
        return rows

    return archive.write_verified_parquet(location, fill)


def download(ledger: Ledger, task: Task = TASK, state: str = TaskState.SUCCESS) -> storage.FileInfo:
    """What a worker does: claim, one expiration stored and recorded, finish."""
    assert ledger.claim(task, min_dte=0, max_dte=3)
    info = write(ledger.archive, task)
    ledger.record_expiration(task, EXPIRATION, ExpirationState.COMPLETE, info=info, attempts=1)
    assert ledger.finish(task, state, min_dte=0, max_dte=3)
    return info


def published(data: Path, ledger_dir: Path, relative: str) -> tuple[bytes | None, bytes]:
    copy = data / relative
    return (copy.read_bytes() if copy.exists() else None), (ledger_dir / relative).read_bytes()


@pytest.fixture(name="dirs")
def fixture_dirs(tmp_path):
    return tmp_path / "ledger", tmp_path / "data"


@pytest.fixture(name="ledger")
def fixture_ledger(dirs):
    ledger_dir, data = dirs
    return Ledger(ledger_dir, archive=LocalArchive(data))


DAY_JSON = "greeks-1m/root=SPXW/trade_date=2024-03-14/_day.json"


def test_a_ledger_without_an_archive_of_its_own_publishes_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    assert ledger.mirror is None and ledger.archive.holds(tmp_path)
    assert Ledger(tmp_path, archive=LocalArchive(tmp_path / ".")).mirror is None
    download(ledger)
    ledger.publish_summaries()
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == ["_day.json", "inventory.json", "status.json"]


def test_a_finished_task_publishes_its_record_next_to_its_data(ledger, dirs):
    ledger_dir, data = dirs
    info = download(ledger)
    copy, own = published(data, ledger_dir, DAY_JSON)
    assert copy == own and json.loads(copy)["expirations"]["2024-03-15"]["sha256"] == info.sha256
    assert (data / DAY_JSON).parent / info.path.name == info.path  # beside the file it describes
    assert not (data / "status.json").exists()  # summaries go at a run's end
    ledger.publish_summaries()
    for name in ("status.json", "inventory.json"):
        copy, own = published(data, ledger_dir, name)
        assert copy == own
    assert json.loads((data / "status.json").read_bytes())["tasks"][TASK.key]["state"] == TaskState.SUCCESS
    assert not (data / storage.LOCK_FILE).exists() and not (data / "runs").exists()


def test_a_released_task_publishes_what_landed(ledger, dirs):
    ledger_dir, data = dirs
    assert ledger.claim(TASK, min_dte=0, max_dte=3)
    ledger.record_expiration(TASK, EXPIRATION, ExpirationState.COMPLETE, info=write(ledger.archive))
    assert not (data / DAY_JSON).exists()  # records per expiration stay in the ledger
    assert ledger.release(TASK)
    copy, own = published(data, ledger_dir, DAY_JSON)
    assert copy == own and json.loads(copy)["claim"] is None


def test_a_ledger_dir_started_afresh_takes_the_published_records_on_repair(ledger, dirs, tmp_path):
    ledger_dir, data = dirs
    download(ledger)
    fresh = Ledger(tmp_path / "fresh", archive=LocalArchive(data))
    assert fresh.day(TASK) is None  # the archive is read for unknown tasks only when rebuilding
    result = fresh.rebuild()
    assert result["files"] == 1 and result["problems"] == []
    assert fresh.is_done(TASK, min_dte=0, max_dte=3)  # the coverage came with the published record


def test_files_without_any_record_are_adopted_by_a_rebuild(dirs, tmp_path):
    _, data = dirs
    info = write(LocalArchive(data))
    fresh = Ledger(tmp_path / "fresh", archive=LocalArchive(data))
    fresh.rebuild()
    day = fresh.day(TASK)
    assert day["state"] == TaskState.PARTIAL and day["expirations"]["2024-03-15"]["sha256"] == info.sha256
    assert json.loads((data / DAY_JSON).read_bytes())["state"] == TaskState.PARTIAL  # and published


def test_a_ledger_with_its_archive_pickles_for_worker_processes(ledger, s3, tmp_path):
    restored = pickle.loads(pickle.dumps(ledger))
    assert restored.archive.root == ledger.archive.root and restored.mirror is not None
    remote = Ledger(tmp_path / "l", archive=ObjectArchive(s3.uri("bucket", "p", userinfo="K:S"), tmp_path / "spool"))
    assert pickle.loads(pickle.dumps(remote)).archive.uri == remote.archive.uri


# ------------------------------------------------------------------ an object store


@pytest.fixture(name="remote_ledger")
def fixture_remote_ledger(s3, tmp_path):
    bucket = s3.new_bucket()
    archive = ObjectArchive(s3.uri(bucket, "spx"), storage.spool_dir(tmp_path / "ledger"))
    archive.prepare()
    return Ledger(tmp_path / "ledger", archive=archive), bucket


def test_records_and_summaries_are_published_into_the_bucket(s3, remote_ledger, tmp_path):
    ledger, bucket = remote_ledger
    download(ledger)
    ledger.publish_summaries()
    keys = {key for key in s3.keys(bucket) if not key.endswith("/")}
    assert keys == {f"spx/{DAY_JSON}", "spx/status.json", "spx/inventory.json",
                    "spx/greeks-1m/root=SPXW/trade_date=2024-03-14/spxw_exp_20240315.parquet"}
    assert ledger.archive.read_bytes(ledger.archive.at(DAY_JSON)) == (tmp_path / "ledger" / DAY_JSON).read_bytes()


def test_a_failed_publish_is_logged_and_the_ledger_stays_right(s3, remote_ledger, caplog):
    ledger, bucket = remote_ledger
    s3.refuse_uploads("_day.json")
    with caplog.at_level(logging.WARNING, logger="spxdl"):
        download(ledger)
    assert "could not publish _day.json next to the data" in caplog.text
    assert ledger.is_done(TASK, min_dte=0, max_dte=3)
    assert not any(key.endswith("_day.json") for key in s3.keys(bucket))
    s3.clear_faults()
    ledger.rebuild()  # a repair publishes what is missing or differs, and the summaries
    keys = s3.keys(bucket)
    assert f"spx/{DAY_JSON}" in keys and "spx/status.json" in keys
