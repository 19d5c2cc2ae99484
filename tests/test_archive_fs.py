"""Where the data lives (spxdl.archive_fs): the local archive is storage's, an object store's files appear only whole.

The object store is moto's S3 API in its own process on loopback (the ``s3`` fixture); faults are
injected inside that process (a part upload that fails, or arrives short).
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import pickle
from datetime import date
from pathlib import PurePosixPath
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from moto_server import MotoS3
from spxdl import storage
from spxdl.archive_fs import LocalArchive, ObjectArchive, open_archive, remote
from spxdl.errors import (
    BucketMissing,
    ConfigError,
    DiskFull,
    ObjectStoreDenied,
    ObjectStoreError,
    ObjectStoreUnreachable,
    StorageError,
)

DAY = date(2024, 3, 14)
EXPIRATION = date(2024, 3, 15)
SECRET = "wJalr/XUtnFEMI+K7MDENGbPxRfiCY"


def parquet_writer(rows: int = 1000):
    """A ``write`` for write_verified_parquet: a small table, its row count returned."""

    def write(handle) -> int:
        pq.write_table(pa.table({"strike": [5000.0 + i for i in range(rows)]}), handle)
        return rows

    return write


def parquet_bytes(rows: int = 1000) -> bytes:
    buffer = io.BytesIO()
    parquet_writer(rows)(buffer)
    return buffer.getvalue()


@pytest.fixture(name="bucket")
def fixture_bucket(s3):
    return s3.new_bucket()


@pytest.fixture(name="remote_archive")
def fixture_remote_archive(s3, bucket, tmp_path):
    archive = ObjectArchive(s3.uri(bucket, "data"), tmp_path / "spool")
    archive.prepare()
    return archive


def visible(s3: MotoS3, bucket: str) -> dict[str, int]:
    """The bucket's objects, without the empty markers pyarrow keeps for the "directories" it wrote into
    (``.../trade_date=2024-03-14/``, 0 bytes: every reader skips them)."""
    keys = s3.keys(bucket)
    assert all(keys[key] == 0 for key in keys if key.endswith("/"))
    return {key: size for key, size in keys.items() if not key.endswith("/")}


# ------------------------------------------------------------------ the local archive: storage, as before


def test_a_path_opens_the_local_archive_whose_layout_is_storages(tmp_path):
    archive = open_archive(tmp_path)
    assert isinstance(archive, LocalArchive) and archive.local and archive.holds(tmp_path)
    assert archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION) == storage.data_file_path(
        tmp_path, "greeks-1m", "SPXW", DAY, EXPIRATION)
    assert archive.day_file("index_price-1m", "SPX", DAY) == storage.day_file_path(tmp_path, "index_price-1m", "SPX", DAY)
    assert archive.at("greeks-1m/_archive.json") == storage.archive_json_path(tmp_path, "greeks-1m")


def test_the_local_archive_writes_reads_and_lists_as_storage_does(tmp_path):
    archive = LocalArchive(tmp_path)
    path = archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    info = archive.write_verified_parquet(path, parquet_writer())
    assert info == storage.verify_parquet(path) == archive.verify_parquet(path)
    assert archive.exists(path) and archive.parquet_metadata(path).num_rows == 1000
    assert archive.data_files("greeks-1m", "SPXW", DAY) == storage.data_files(tmp_path, "greeks-1m", "SPXW", DAY)
    assert list(archive.iter_task_dirs()) == list(storage.iter_task_dirs(tmp_path))
    assert archive.names(path.parent) == [path.name]
    assert not storage.sweep_temp_files(tmp_path) and archive.read_bytes(path.parent / "nothing") is None


# ------------------------------------------------------------------ an object store: whole objects or nothing


def test_a_uri_opens_an_object_archive_rooted_at_its_bucket_and_prefix(s3, tmp_path):
    archive = open_archive(s3.uri("bucket", "a/b", userinfo=f"KEY:{quote(SECRET, safe='')}"), tmp_path)
    assert isinstance(archive, ObjectArchive) and not archive.local and not archive.holds(tmp_path)
    assert archive.root == PurePosixPath("bucket/a/b")
    assert str(archive) == "s3://bucket/a/b" and SECRET not in repr(archive)
    location = archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    assert archive.show(location) == "s3://bucket/a/b/greeks-1m/root=SPXW/trade_date=2024-03-14/spxw_exp_20240315.parquet"
    assert archive.location(archive.show(location)) == location
    with pytest.raises(ValueError, match="spool"):
        open_archive("s3://bucket/p")


def test_a_data_file_lands_whole_with_the_checksum_of_its_bytes(s3, bucket, remote_archive, tmp_path):
    location = remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    info = remote_archive.write_verified_parquet(location, parquet_writer())
    expected = parquet_bytes()
    assert (info.rows, info.bytes, info.sha256) == (1000, len(expected), hashlib.sha256(expected).hexdigest())
    assert visible(s3, bucket) == {"data/greeks-1m/root=SPXW/trade_date=2024-03-14/spxw_exp_20240315.parquet": len(expected)}
    assert remote_archive.verify_parquet(location) == info
    assert remote_archive.exists(location) and remote_archive.parquet_metadata(location).num_rows == 1000
    assert remote_archive.data_files("greeks-1m", "SPXW", DAY) == {EXPIRATION: location}
    assert list(remote_archive.iter_task_dirs()) == [("greeks-1m", "SPXW", DAY, location.parent)]
    assert not list((tmp_path / "spool").iterdir())  # the spool file went once uploaded


def test_a_failed_part_upload_leaves_no_object_visible_and_the_previous_one_as_it_was(s3, bucket, remote_archive):
    location = remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    remote_archive.write_verified_parquet(location, parquet_writer(10))
    before = visible(s3, bucket)
    s3.refuse_uploads("spxw_exp_20240315")  # the temp key carries the target's name
    with pytest.raises(ObjectStoreError) as caught:
        remote_archive.write_verified_parquet(location, parquet_writer(2000))
    assert not isinstance(caught.value, (ObjectStoreUnreachable, ObjectStoreDenied, BucketMissing))
    assert visible(s3, bucket) == before  # no temp key, no partial object; the old file stands
    assert remote_archive.verify_parquet(location).rows == 10
    assert s3.open_uploads(bucket)  # invisible and billable: the bucket's lifecycle rule aborts it (README)


def test_an_upload_that_arrives_short_is_caught_before_it_is_published(s3, bucket, remote_archive):
    location = remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    s3.truncate_uploads("spxw_exp_20240315")
    with pytest.raises(ObjectStoreError, match="bytes arrived; nothing was published"):
        remote_archive.write_verified_parquet(location, parquet_writer())
    assert visible(s3, bucket) == {}  # the short temp object was deleted


def test_an_upload_whose_footer_does_not_read_back_is_never_published(s3, bucket, remote_archive):
    location = remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    s3.garble_uploads("spxw_exp_20240315")  # the same size, a broken footer
    with pytest.raises(StorageError, match="is not a readable Parquet file"):
        remote_archive.write_verified_parquet(location, parquet_writer())
    assert visible(s3, bucket) == {}


def test_no_room_in_the_spool_is_disk_full(s3, bucket, remote_archive):
    def no_room(handle) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match="nothing partial was kept"):
        remote_archive.write_verified_parquet(remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION), no_room)
    assert visible(s3, bucket) == {} and not list(remote_archive.spool.iterdir())


def test_a_write_that_fails_before_its_upload_sends_nothing(s3, bucket, remote_archive):
    def broken(handle) -> int:
        handle.write(b"PAR1 half a file")
        raise OSError("the terminal went away")

    with pytest.raises(OSError, match="went away"):
        remote_archive.write_verified_parquet(remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION), broken)
    with pytest.raises(StorageError, match="rows where 5 were written"):
        remote_archive.write_verified_parquet(remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION),
                                              lambda handle: parquet_writer(4)(handle) + 1)
    assert visible(s3, bucket) == {} and s3.open_uploads(bucket) == []


def test_published_bytes_replace_the_object_whole(s3, bucket, remote_archive):
    location = remote_archive.at("status.json")
    remote_archive.publish(location, b'{"version": 1}\n')
    remote_archive.publish(location, b'{"version": 2}\n')
    assert remote_archive.read_bytes(location) == b'{"version": 2}\n'
    assert visible(s3, bucket) == {"data/status.json": 15}
    assert remote_archive.read_bytes(remote_archive.at("inventory.json")) is None


def test_a_bad_file_is_moved_aside_hidden_and_listings_skip_what_is_not_a_partition(s3, bucket, remote_archive):
    location = remote_archive.data_file("greeks-1m", "SPXW", DAY, EXPIRATION)
    remote_archive.write_verified_parquet(location, parquet_writer())
    remote_archive.publish(remote_archive.at("greeks-1m/_archive.json"), b"{}")
    remote_archive.publish(remote_archive.at("greeks-1m/root=SPXW/notadate/x.parquet"), b"x")
    moved = remote_archive.move_aside(location, hidden=True)
    assert moved.name.startswith(".spxw_exp_20240315.parquet.corrupt-") and not remote_archive.exists(location)
    assert remote_archive.names(location.parent) == [moved.name]
    assert remote_archive.data_files("greeks-1m", "SPXW", DAY) == {}
    assert list(remote_archive.iter_task_dirs()) == [("greeks-1m", "SPXW", DAY, location.parent)]


def test_temp_objects_are_swept_by_age_not_by_pid(s3, bucket, remote_archive, caplog):
    directory = remote_archive.task_dir("greeks-1m", "SPXW", DAY)
    temp = directory / ".spxw_exp_20240315.parquet.tmp-1-abcd1234"  # pid 1 lives here: meaningless elsewhere
    remote_archive.publish(temp, b"PAR1 partial")
    assert remote_archive.sweep_temp_files() == []  # younger than an hour: an upload may still own it
    with caplog.at_level(logging.INFO, logger="spxdl"):
        assert remote_archive.sweep_temp_files(older_than=0) == [temp]
    assert visible(s3, bucket) == {} and "removed stale temp object s3://" in caplog.text


def test_prepare_finds_a_missing_bucket_and_says_what_to_do(s3, tmp_path):
    archive = ObjectArchive(s3.uri("spxdl-no-such-bucket", "p"), tmp_path / "spool")
    with pytest.raises(BucketMissing, match="the bucket spxdl-no-such-bucket of s3://spxdl-no-such-bucket/p does not exist; create it"):
        archive.prepare()
    assert not (tmp_path / "spool").exists()


@pytest.fixture(scope="module", name="refusing_s3")
def fixture_refusing_s3():
    """An S3 API that knows no credentials of ours: every request is refused (403)."""
    server = MotoS3.start(auth=True)
    yield server
    server.stop()


def test_refused_credentials_are_told_apart_and_name_where_credentials_come_from(s3, refusing_s3, tmp_path):
    archive = ObjectArchive(refusing_s3.uri("bucket", "p"), tmp_path / "spool")
    with pytest.raises(ObjectStoreDenied, match=r"refused access to s3://bucket/p .*AWS_ACCESS_KEY_ID"):
        archive.check()


def test_an_unreadable_uri_is_a_config_error_without_its_credentials():
    with pytest.raises(ConfigError, match="cannot be used") as caught:
        remote.resolve(f"s3://KEY:{quote(SECRET, safe='')}@bucket/p?no_such_option=1")
    assert quote(SECRET, safe="") not in str(caught.value) and "s3://***@bucket/p" in str(caught.value)
    with pytest.raises(ConfigError, match="must be percent-encoded") as caught:
        remote.resolve(f"s3://AKIAEXAMPLE:{SECRET}@bucket/p")  # '/' unencoded: pyarrow cannot parse it
    assert SECRET not in str(caught.value) and "AKIAEXAMPLE" not in str(caught.value)


@pytest.mark.parametrize("message, kind", [
    ("When getting information for key 'p/x' in bucket 'b': AWS Error NETWORK_CONNECTION during HeadObject "
     "operation: curlCode: 7, Could not connect to server", ObjectStoreUnreachable),
    ("When listing objects under key 'p/' in bucket 'b': AWS Error ACCESS_DENIED during ListObjectsV2 operation",
     ObjectStoreDenied),
    ("AWS Error INVALID_ACCESS_KEY_ID during CreateMultipartUpload operation: The AWS Access Key Id you provided "
     "does not exist in our records.", ObjectStoreDenied),
    ("When initiating multiple part upload for key 'p/x' in bucket 'b': AWS Error NO_SUCH_BUCKET during "
     "CreateMultipartUpload operation: The specified bucket does not exist", BucketMissing),
    ("When uploading part for key 'p/x' in bucket 'b': AWS Error INTERNAL_FAILURE during UploadPart operation",
     ObjectStoreError),
])
def test_pyarrows_errors_become_spxdls_and_pickle(message, kind, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    error = remote.classify(OSError(f"{message} ({SECRET})"), "s3://b/p", "reading")
    assert type(error) is kind and SECRET not in str(error)
    assert type(pickle.loads(pickle.dumps(error))) is kind
