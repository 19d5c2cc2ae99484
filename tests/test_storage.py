"""The on-disk layout, atomic writes, Parquet verification, the temp-file sweep and the archive shape."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spxdl import storage
from spxdl.errors import DiskFull, StorageError

DAY = date(2024, 1, 15)
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


def write_parquet_file(path: Path, rows: int) -> None:
    with storage.atomic_output(path) as sink:
        pq.write_table(pa.table({"x": pa.array(range(rows), pa.int64())}), sink)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# ---------------------------------------------------------------------------------------------
# layout


def test_layout_paths_follow_the_design(tmp_path):
    assert storage.data_file_path(tmp_path, "greeks-1m", "SPXW", DAY, date(2024, 1, 16)) == (
        tmp_path / "greeks-1m" / "root=SPXW" / "trade_date=2024-01-15" / "spxw_exp_20240116.parquet"
    )
    assert storage.archive_json_path(tmp_path, "greeks-1m") == tmp_path / "greeks-1m" / "_archive.json"
    assert storage.day_json_path(tmp_path, "eod", "SPX", DAY).name == "_day.json"


def test_expiration_of_is_the_inverse_of_data_file_name():
    expiration = date(2024, 1, 16)
    assert storage.expiration_of(Path("/x") / storage.data_file_name("SPXW", expiration), "SPXW") == expiration
    for name in ("spx_exp_20240116.parquet", "spxw_exp_20240116.parquet.corrupt-x", "spxw_exp_2024011.parquet",
                 "spxw_exp_20241316.parquet", ".spxw_exp_20240116.parquet", "spxw_exp_20240116.json", "_day.json"):
        assert storage.expiration_of(Path(name), "SPXW") is None, name


def test_data_files_lists_a_task_dirs_data_files_by_expiration_and_nothing_else(tmp_path):
    assert storage.data_files(tmp_path, "greeks-1m", "SPXW", DAY) == {}
    expirations = [date(2024, 1, 16), date(2024, 1, 19)]
    paths = [storage.data_file_path(tmp_path, "greeks-1m", "SPXW", DAY, e) for e in expirations]
    paths[0].parent.mkdir(parents=True)
    for path in paths:
        write_parquet_file(path, 1)
    for name in ("spx_exp_20240116.parquet", f"{paths[0].name}.corrupt-20240101T000000.000000Z", "_day.json"):
        (paths[0].parent / name).write_bytes(b"x")
    assert storage.data_files(tmp_path, "greeks-1m", "SPXW", DAY) == dict(zip(expirations, paths))


def test_iter_task_dirs_finds_partitions_and_skips_everything_else(tmp_path):
    for archive, root, day in [("greeks-1m", "SPXW", DAY), ("greeks-1m", "SPX", DAY),
                               ("greeks-1m", "SPXW", date(2024, 1, 12)), ("eod", "SPX", DAY)]:
        storage.task_dir(tmp_path, archive, root, day).mkdir(parents=True)
    (tmp_path / "greeks-1m" / "root=SPXW" / "trade_date=garbage").mkdir()
    (tmp_path / "greeks-1m" / "root=SPXW" / ".hidden").mkdir()
    (tmp_path / "greeks-1m" / "_tmp").mkdir()
    (tmp_path / "logs").mkdir()
    storage.write_json_atomic(storage.archive_json_path(tmp_path, "greeks-1m"), SHAPE)

    found = [(a, r, d) for a, r, d, _ in storage.iter_task_dirs(tmp_path)]
    assert found == [
        ("eod", "SPX", DAY),
        ("greeks-1m", "SPX", DAY),
        ("greeks-1m", "SPXW", date(2024, 1, 12)),
        ("greeks-1m", "SPXW", DAY),
    ]
    assert list(storage.iter_task_dirs(tmp_path / "missing")) == []


# ---------------------------------------------------------------------------------------------
# atomic writes


def test_atomic_output_keeps_the_old_file_and_no_temp_on_error(tmp_path):
    target = tmp_path / "d" / "f.json"
    storage.write_json_atomic(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": 1\n}\n'
    with pytest.raises(RuntimeError):
        with storage.atomic_output(target) as handle:
            handle.write(b"half")
            raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


# A real kernel limit: the child lowers its file-size limit (ulimit -f), so a write past it fails
# with EFBIG, as a write to a full disk fails with ENOSPC (CPython ignores SIGXFSZ from start-up,
# as it does SIGPIPE, so the signal does not kill it).
PAST_THE_FILE_SIZE_LIMIT = """
import json, os, resource, signal, sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from spxdl import storage
from spxdl.errors import DiskFull
assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
target = Path(sys.argv[1])
outcomes = {}
for name, write in (
    ("bytes", lambda: storage.write_bytes_atomic(target, os.urandom(80_000))),
    ("parquet", lambda: storage.write_verified_parquet(target, lambda sink: (pq.write_table(
        pa.table({"x": pa.array(range(200_000), pa.int64())}), sink, compression="none"), 200_000)[1])),
    ("once", lambda: storage.create_bytes_once(target.with_name("new.json"), os.urandom(80_000))),
):
    try:
        write()
        outcomes[name] = "written"
    except DiskFull as exc:
        outcomes[name] = str(exc)
print(json.dumps(outcomes))
"""


def test_a_write_past_the_file_size_limit_is_disk_full_and_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "day" / "spxw_exp_20240116.parquet"
    target.parent.mkdir()
    target.write_bytes(b"the previous file")
    done = subprocess.run([sys.executable, "-c", PAST_THE_FILE_SIZE_LIMIT, str(target)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert set(outcomes) == {"bytes", "parquet", "once"}
    for message in outcomes.values():
        assert message.startswith(f"cannot write {target.parent}") and "file-size limit (ulimit -f)" in message
        assert "nothing partial was kept" in message
    assert target.read_bytes() == b"the previous file"
    assert sorted(path.name for path in target.parent.iterdir()) == [target.name]  # no temp file, no new.json


def test_no_space_on_the_device_is_disk_full_and_other_errors_pass_through(tmp_path):
    with pytest.raises(DiskFull, match="no space left on device"):
        with storage.no_space_is_disk_full(tmp_path / "x"):
            with open("/dev/full", "wb") as full:  # the kernel answers every write with ENOSPC
                full.write(b"x")
    with pytest.raises(PermissionError):
        with storage.no_space_is_disk_full(tmp_path / "x"):
            raise PermissionError(13, "Permission denied")


def test_create_bytes_once_never_replaces_an_existing_file(tmp_path):
    target = tmp_path / "x" / "_archive.json"
    assert storage.create_bytes_once(target, b"first")
    assert not storage.create_bytes_once(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["_archive.json"]


# ---------------------------------------------------------------------------------------------
# verification


def test_verify_parquet_returns_rows_bytes_and_sha256(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet_file(path, 10)
    info = storage.verify_parquet(path, expected_rows=10)
    assert (info.path, info.rows, info.bytes) == (path, 10, path.stat().st_size)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == storage.sha256_file(path)


def table_writer(rows: int, claimed: int):
    """A ``write`` for write_verified_parquet that writes ``rows`` rows and says it wrote ``claimed``."""

    def write(sink) -> int:
        pq.write_table(pa.table({"x": pa.array(range(rows), pa.int64())}), sink)
        return claimed

    return write


def test_write_verified_parquet_puts_a_checked_file_in_place(tmp_path):
    path = tmp_path / "d" / "a.parquet"
    info = storage.write_verified_parquet(path, table_writer(7, 7))
    assert (info.path, info.rows, info.bytes) == (path, 7, path.stat().st_size)
    assert info.sha256 == storage.sha256_file(path)
    assert [p.name for p in path.parent.iterdir()] == ["a.parquet"]


def test_a_file_that_fails_its_check_never_stands_in_place_of_the_old_one(tmp_path):
    path = tmp_path / "a.parquet"
    storage.write_verified_parquet(path, table_writer(5, 5))
    before = path.read_bytes()
    with pytest.raises(StorageError, match="9 rows where 10"):
        storage.write_verified_parquet(path, table_writer(9, 10))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"]


def test_files_are_readable_as_the_umask_allows_not_only_by_their_owner(tmp_path):
    path = tmp_path / "a.parquet"
    storage.write_verified_parquet(path, table_writer(1, 1))
    storage.write_json_atomic(tmp_path / "b.json", {})
    expected = 0o666 & ~storage.UMASK
    assert path.stat().st_mode & 0o777 == expected
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == expected


def test_verify_parquet_refuses_a_wrong_row_count(tmp_path):
    path = tmp_path / "a.parquet"
    write_parquet_file(path, 10)
    with pytest.raises(StorageError, match="10 rows where 11"):
        storage.verify_parquet(path, expected_rows=11)


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"not parquet at all"], ids=["cut", "junk"])
def test_verify_parquet_refuses_an_unreadable_file(tmp_path, damage):
    path = tmp_path / "a.parquet"
    write_parquet_file(path, 10)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StorageError) as raised:
        storage.verify_parquet(path)
    assert raised.value.path == str(path)


# ---------------------------------------------------------------------------------------------
# sweep


def test_sweep_removes_temp_files_of_dead_processes_only(tmp_path):
    target = tmp_path / "root=SPXW" / "trade_date=2024-01-15" / "spxw_exp_20240116.parquet"
    target.parent.mkdir(parents=True)
    dead = target.parent / f".{target.name}.tmp-{dead_pid()}-abc123"
    live = target.parent / f"{storage.temp_prefix(target)}def456"
    unrelated = [target.parent / ".hidden", target.parent / f"{target.name}.tmp-1-x", target]
    for path in (dead, live, *unrelated):
        path.write_bytes(b"x")

    removed = storage.sweep_temp_files(tmp_path)

    assert removed == [dead]
    assert not dead.exists()
    assert live.exists() and all(path.exists() for path in unrelated)


class FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc).astimezone(tz)


@pytest.mark.parametrize("hidden, prefix", [(False, ""), (True, ".")], ids=["ledger-file", "data-file"])
def test_move_aside_keeps_every_copy_under_a_corrupt_name(tmp_path, monkeypatch, hidden, prefix):
    monkeypatch.setattr(storage.writes, "datetime", FrozenClock)  # three moves within one microsecond
    path = tmp_path / "spxw_exp_20240116.parquet"
    moved = []
    for content in (b"first", b"second", b"third"):
        path.write_bytes(content)
        moved.append(storage.move_aside(path, hidden=hidden))
    assert not path.exists()
    assert [p.read_bytes() for p in moved] == [b"first", b"second", b"third"]
    stamp = f"{prefix}{path.name}.corrupt-20240102T030405.678901Z"
    assert moved == [tmp_path / stamp, tmp_path / f"{stamp}-1", tmp_path / f"{stamp}-2"]


def test_sweep_knows_the_names_that_temp_prefix_makes():
    name = storage.temp_prefix(Path("/x/spxw_exp_20240116.parquet")) + "k2j3"
    assert storage.temp_file_pid(name) == os.getpid()
    assert storage.temp_file_pid("spxw_exp_20240116.parquet") is None




# ---------------------------------------------------------------------------------------------
# CSV appends (metrics.csv)

OLD_HEADER = "kind,key,rows\n"


def append_widened_rows(path: Path, writer: int, start) -> None:
    start.wait()
    for n in range(20):
        storage.append_csv_rows(path, [{"kind": "task", "key": f"w{writer}/{n}", "rows": n, "dropped": 1}],
                                ("kind", "key", "rows", "dropped"))


def test_csv_rows_get_a_header_once_and_follow_the_files_own_column_order(tmp_path):
    path = tmp_path / "logs" / "m.csv"
    storage.append_csv_rows(path, [{"a": 1, "b": 2}], ("a", "b"))
    storage.append_csv_rows(path, [{"a": 3, "b": 4, "unknown": 5}], ("a", "b"))
    assert path.read_text() == "a,b\n1,2\n3,4\n"


def test_an_older_header_is_widened_and_its_rows_padded_keeping_every_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(OLD_HEADER + "task,x,5\nrun,y,7\n")
    storage.append_csv_rows(path, [{"kind": "task", "key": "z", "rows": 9, "dropped": 2}], ("kind", "key", "rows", "dropped"))
    assert path.read_text() == "kind,key,rows,dropped\ntask,x,5,\nrun,y,7,\ntask,z,9,2\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "m.csv"]  # no temp file left


def test_writers_waiting_while_the_header_is_widened_lose_no_row(tmp_path):
    import multiprocessing

    path = tmp_path / "m.csv"
    path.write_text(OLD_HEADER + "task,old,1\n")
    context = multiprocessing.get_context("fork")
    start = context.Event()
    writers = [context.Process(target=append_widened_rows, args=(path, w, start)) for w in range(4)]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(timeout=60)
    lines = path.read_text().splitlines()
    assert lines[0] == "kind,key,rows,dropped" and lines[1] == "task,old,1,"
    assert sorted(lines[2:]) == sorted(f"task,w{w}/{n},{n},1" for w in range(4) for n in range(20))
