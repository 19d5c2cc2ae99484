"""End to end: the archive in an object store (``--data-dir s3://...``), against moto's S3 API on loopback.

moto runs in a process of its own (``moto_server.py``); spxdl runs as users run it, with the
simulator, real worker processes and AWS credentials in the environment. Two days of the tiny
profile (three expirations) keep each run to a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from moto_server import MotoS3, run_spxdl, use_test_aws_environment
from spxdl import cli

FIRST, LAST = "2024-03-14", "2024-03-15"
RUN = ["run", "--simulate", "--sim-profile", "tiny", "--start", FIRST, "--end", LAST, "--max-dte", "7",
       "--workers", "2", "--yes"]
PARTITIONING = ds.partitioning(pa.schema([("root", pa.string()), ("trade_date", pa.date32())]), flavor="hive")


def invoke(*args: str):
    """``spxdl ARGS`` in this process (Click's runner); stderr kept apart."""
    return CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)


def local_digests(data: Path) -> dict[str, str]:
    return {path.relative_to(data).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(data.rglob("*.parquet"))}


def remote_digests(s3: MotoS3, bucket: str, prefix: str) -> dict[str, str]:
    """sha256 of every visible Parquet object under ``prefix`` (hidden names, as readers skip them, left out)."""
    fs = s3.filesystem()
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(f"{bucket}/{prefix}", recursive=True)):
        if info.path.endswith(".parquet") and not info.base_name.startswith((".", "_")):
            with fs.open_input_stream(info.path) as handle:
                found[info.path[len(f"{bucket}/{prefix}/"):]] = hashlib.sha256(handle.read()).hexdigest()
    return found


def temp_keys(s3: MotoS3, bucket: str) -> list[str]:
    return [key for key in s3.keys(bucket) if ".tmp-" in key]


@pytest.fixture(scope="module", name="archives")
def fixture_archives(moto_s3, tmp_path_factory):
    """The same two days run by ``spxdl run --simulate`` into a bucket and into a local data dir."""
    home = tmp_path_factory.mktemp("s3-archives")
    with pytest.MonkeyPatch.context() as patch:
        use_test_aws_environment(patch)
        bucket = moto_s3.new_bucket()
        uri = moto_s3.uri(bucket, "spx")
        into_s3 = run_spxdl(*RUN, "--data-dir", uri, "--ledger-dir", str(home / "ledger"), cwd=home)
        local = run_spxdl(*RUN, "--data-dir", str(home / "local"), cwd=home)
        yield {"bucket": bucket, "uri": uri, "ledger": home / "ledger", "local": home / "local", "home": home,
               "runs": (into_s3, local)}


def test_a_run_into_s3_gives_the_same_archive_file_for_file_as_on_local_disk(archives, moto_s3):
    into_s3, local = archives["runs"]
    assert into_s3.returncode == 0 and local.returncode == 0, into_s3.stderr + local.stderr
    assert "Traceback" not in into_s3.stderr and f"into s3://{archives['bucket']}/spx?" in into_s3.stderr
    expected = local_digests(archives["local"])
    assert len(expected) == 3
    assert remote_digests(moto_s3, archives["bucket"], "spx") == expected
    assert temp_keys(moto_s3, archives["bucket"]) == [] and moto_s3.open_uploads(archives["bucket"]) == []


def test_the_ledger_lives_in_the_ledger_dir_and_its_summaries_are_published_next_to_the_data(archives, moto_s3):
    ledger, fs, bucket = archives["ledger"], moto_s3.filesystem(), archives["bucket"]
    assert (ledger / ".spxdl.lock").exists() and (ledger / "logs" / "spxdl.log").stat().st_size > 0
    assert "kind,key,state" in (ledger / "logs" / "metrics.csv").read_text()
    published = [path.relative_to(ledger).as_posix() for path in sorted(ledger.rglob("*.json"))
                 if "runs" not in path.parts and path.name != "last_run.json"]  # notify's memory stays local
    assert (ledger / "last_run.json").exists()
    assert {"status.json", "inventory.json", "greeks-1m/_archive.json",
            "greeks-1m/root=SPXW/trade_date=2024-03-15/_day.json"} <= set(published)
    for name in published:
        with fs.open_input_stream(f"{bucket}/spx/{name}") as handle:
            assert handle.read() == (ledger / name).read_bytes(), name
    status = json.loads((ledger / "status.json").read_text())
    assert status["states"]["success"] == 2
    assert not list(ledger.rglob("*.parquet")) and not list((ledger / "spool").iterdir())


def test_pyarrow_dataset_reads_the_bucket_as_one_table_with_partition_pruning(archives, moto_s3):
    local = ds.dataset(archives["local"] / "greeks-1m", format="parquet", partitioning=PARTITIONING)
    filesystem, root = pafs.FileSystem.from_uri(archives["uri"])
    remote = ds.dataset(f"{root}/greeks-1m", filesystem=filesystem, format="parquet", partitioning=PARTITIONING)
    assert len(remote.files) == 3 and all("/_" not in path and "/." not in path for path in remote.files)
    assert remote.count_rows() == local.count_rows() > 0
    day = ds.field("trade_date") == date(2024, 3, 14)
    assert len(list(remote.get_fragments(filter=day))) == 1  # of 3: only that day's partition is opened
    assert remote.to_table(filter=day).equals(local.to_table(filter=day))


def test_duckdb_reads_the_bucket_through_fsspec_and_through_arrow_with_partition_pruning(archives, moto_s3):
    import duckdb
    import s3fs

    con = duckdb.connect()
    con.register_filesystem(s3fs.S3FileSystem(key="test-key", secret="test-secret", endpoint_url=f"http://{moto_s3.endpoint}",
                                              client_kwargs={"region_name": "us-east-1"}))
    greeks = f"read_parquet('s3://{archives['bucket']}/spx/greeks-1m/**/*.parquet', hive_partitioning = true)"
    local = f"read_parquet('{archives['local']}/greeks-1m/**/*.parquet', hive_partitioning = true)"
    by_day = "SELECT trade_date, count(*), sum(delta) FROM {} GROUP BY ALL ORDER BY ALL"
    assert con.execute(by_day.format(greeks)).fetchall() == con.execute(by_day.format(local)).fetchall()
    one_day = f"SELECT count(*) FROM {greeks} WHERE trade_date = DATE '2024-03-15'"
    plan = con.execute(f"EXPLAIN SELECT strike, delta FROM {greeks} WHERE trade_date = DATE '2024-03-15'").fetchall()
    assert "Scanning Files: 2/3" in plan[0][1]  # the other day's file is pruned by its trade_date= directory
    filesystem, root = pafs.FileSystem.from_uri(archives["uri"])
    dataset = ds.dataset(f"{root}/greeks-1m", filesystem=filesystem, format="parquet", partitioning=PARTITIONING)
    con.register("greeks", dataset)
    assert con.execute("SELECT count(*) FROM greeks WHERE trade_date = DATE '2024-03-15'").fetchall() == \
        con.execute(one_day).fetchall()


def test_the_readmes_object_storage_examples_run_against_the_bucket(archives, moto_s3):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("\n## Object storage\n"):]
    section = section[:section.index("\n## ", 1)]
    examples = [block for block in re.findall(r"```python\n(.*?)```", section, flags=re.S)
                if "polars" not in block and "spark" not in block]
    assert len(examples) == 2 and all("s3://my-bucket/spx" in example for example in examples)
    with pytest.MonkeyPatch.context() as patch:
        use_test_aws_environment(patch)
        patch.setenv("AWS_ENDPOINT_URL", f"http://{moto_s3.endpoint}")  # as the README's sh block sets it
        outputs = []
        for example in examples:
            code = example.replace("my-bucket/spx", f"{archives['bucket']}/spx")
            ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                                 cwd=archives["home"])
            assert ran.returncode == 0, example + ran.stderr
            outputs.append(ran.stdout)
    assert "1 file(s) of 3 to read" in outputs[0]  # 2024-03-14 holds one expiration in DTE 0..7 of the tiny profile
    assert "Scanning Files: 1/3" in outputs[1]


def test_a_failure_mid_upload_leaves_no_partial_object_and_a_rerun_completes(archives, s3, isolated):
    bucket = s3.new_bucket()
    args = [*RUN, "--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(isolated / "ledger"), "--workers", "1"]
    s3.refuse_uploads("spxw_exp_20240322")  # 2024-03-15's DTE 7 expiration, as its parts go up
    first = invoke(*args)
    assert first.exit_code == 1, first.stderr
    assert "spxw_exp_20240322" in first.stderr and "Traceback" not in first.stderr
    keys = s3.keys(bucket)
    assert not [key for key in keys if "spxw_exp_20240322" in key]  # neither the object nor its temp key
    assert len([key for key in keys if key.endswith(".parquet")]) == 2
    s3.clear_faults()
    again = invoke(*args)
    assert again.exit_code == 0, again.stderr
    assert remote_digests(s3, bucket, "spx") == local_digests(archives["local"])
    assert temp_keys(s3, bucket) == []


def test_an_object_store_that_starts_refusing_mid_run_stops_the_run_for_resume(archives, s3, isolated):
    bucket = s3.new_bucket()
    args = [*RUN, "--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(isolated / "ledger"), "--workers", "1"]
    s3.deny_uploads("spxw_exp_20240322")  # as if the credentials lost their permission mid-run
    stopped = invoke(*args)
    assert stopped.exit_code == 2, stopped.stderr
    assert "STOPPED: the object store refused access to s3://" in stopped.stderr
    assert not [key for key in s3.keys(bucket) if "spxw_exp_20240322" in key]
    s3.clear_faults()
    resumed = invoke("resume", "--simulate", "--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(isolated / "ledger"))
    assert resumed.exit_code == 0, resumed.stderr
    assert remote_digests(s3, bucket, "spx") == local_digests(archives["local"])


def copy_of(archives, s3: MotoS3, ledger: Path) -> str:
    """A copy of the module's bucket archive (server-side) with its ledger: a bucket of the test's own."""
    bucket, fs = s3.new_bucket(), s3.filesystem()
    for info in fs.get_file_info(pafs.FileSelector(f"{archives['bucket']}/spx", recursive=True)):
        if info.type == pafs.FileType.File:
            fs.copy_file(info.path, bucket + info.path[len(archives["bucket"]):])
    shutil.copytree(archives["ledger"], ledger)
    return bucket


def test_verify_and_gaps_find_a_corrupted_and_a_missing_object_and_repair_and_resume_fix_them(archives, s3, isolated):
    bucket = copy_of(archives, s3, isolated / "ledger")
    where = ["--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(isolated / "ledger")]
    fs, day14 = s3.filesystem(), f"{bucket}/spx/greeks-1m/root=SPXW/trade_date=2024-03-14"
    other = pa.BufferOutputStream()
    pq.write_table(pa.table({"strike": [1.0]}), other)
    with fs.open_output_stream(f"{day14}/spxw_exp_20240315.parquet") as out:  # another file's bytes: sha256 differs
        out.write(other.getvalue())
    fs.delete_file(f"{bucket}/spx/greeks-1m/root=SPXW/trade_date=2024-03-15/spxw_exp_20240322.parquet")
    with fs.open_output_stream(f"{day14}/.spxw_exp_20240315.parquet.tmp-1-0badf00d") as out:  # a killed upload's
        out.write(b"PAR1")

    verify = invoke("verify", *where)
    assert verify.exit_code == 1
    assert f"CHECKSUM   s3://{day14}/spxw_exp_20240315.parquet: sha256 differs" in verify.output
    assert "MISSING    s3://" in verify.output and "spxw_exp_20240322.parquet: recorded" in verify.output
    assert f"TEMP       s3://{day14}/.spxw_exp_20240315.parquet.tmp-1-0badf00d" in verify.output
    gaps = invoke("gaps", "--start", FIRST, "--end", LAST, *where)
    assert gaps.exit_code == 0  # the ledger still says complete: verify is what reads the files

    repair = invoke("verify", "--repair", *where)
    assert "repair: moved 1 bad file(s) aside, removed 0 temp file(s)" in repair.output  # younger than an hour
    assert any(".spxw_exp_20240315.parquet.corrupt-" in key for key in s3.keys(bucket))
    gaps = invoke("gaps", "--start", FIRST, "--end", LAST, *where)
    assert gaps.exit_code == 1 and "2 gap(s)" in gaps.stderr
    resume = invoke("resume", "--simulate", *where)
    assert resume.exit_code == 0, resume.stderr
    fs.delete_file(f"{day14}/.spxw_exp_20240315.parquet.tmp-1-0badf00d")  # what a run an hour later sweeps
    assert invoke("verify", *where).exit_code == 0
    assert invoke("gaps", "--start", FIRST, "--end", LAST, *where).exit_code == 0
    assert remote_digests(s3, bucket, "spx") == local_digests(archives["local"])


def test_a_ledger_dir_started_afresh_is_made_whole_from_the_bucket_by_verify_repair(archives, s3, isolated, tmp_path):
    bucket = copy_of(archives, s3, tmp_path / "old-ledger")  # the old ledger is lost: only the bucket is left
    where = ["--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(isolated / "new-ledger")]
    assert "spxdl verify --repair" in one_error_line(invoke("status", *where))
    repair = invoke("verify", "--repair", *where)
    assert "rebuilt the ledger" in repair.output, repair.output + repair.stderr
    status = json.loads(invoke("status", "--json", *where).output)
    assert status["totals"]["states"] == {"success": 2}  # the published records, their coverage included
    assert (isolated / "new-ledger" / "greeks-1m" / "_archive.json").read_bytes() == \
        (archives["ledger"] / "greeks-1m" / "_archive.json").read_bytes()
    assert invoke("verify", *where).exit_code == 0
    again = invoke(*RUN, *where)
    assert again.exit_code == 0 and "Nothing to do for 2024-03-14 .. 2024-03-15: 2 task(s) already complete" in again.stderr


def test_status_and_health_read_the_object_store(archives, moto_s3, isolated):
    with pytest.MonkeyPatch.context() as patch:
        use_test_aws_environment(patch)
        where = ["--data-dir", archives["uri"], "--ledger-dir", str(archives["ledger"])]
        status = json.loads(invoke("status", "--json", *where).output)
        assert status["totals"]["states"] == {"success": 2} and status["data_dir"] == archives["uri"]
        health = invoke("health", "--simulate", *where)
        assert health.exit_code == 0, health.output
        assert f"ok   data dir  s3://{archives['bucket']}/spx answers, its bucket is there; ledger:" in health.output
        missing = invoke("health", "--simulate", "--data-dir", moto_s3.uri("spxdl-no-such-bucket", "p"),
                         "--ledger-dir", str(isolated / "ledger"))
        assert missing.exit_code == 75 and "FAIL data dir  the bucket spxdl-no-such-bucket" in missing.output


# ------------------------------------------------------------------ credentials never leave the environment

KEY_ID, SECRET = "AKIASPXDLTESTKEYID42", "Zm9vYmFyc2VjcmV0/dGVzdC1zZWNyZXQ+key"


def test_no_credential_reaches_logs_metrics_ledger_output_or_file_metadata(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    bucket = s3.new_bucket()
    uri = s3.uri(bucket, "spx", userinfo=f"{KEY_ID}:{SECRET.replace('/', '%2F').replace('+', '%2B')}")
    ledger = tmp_path / "ledger"
    run = run_spxdl(*RUN, "--data-dir", uri, "--ledger-dir", str(ledger), cwd=tmp_path)  # a process of its own
    outputs = [run.stdout + run.stderr]
    for args in (["status", "--json"], ["verify"], ["gaps", "--start", "2024-03-13", "--end", LAST], ["config", "show"],
                 [*RUN, "--force", "--data-dir", uri.replace(bucket, "spxdl-none")]):
        where = [] if "--data-dir" in args else ["--data-dir", uri]
        result = invoke(*args, *where, "--ledger-dir", str(ledger))
        outputs.append(result.stdout + result.stderr)
    assert "s3://***@" in outputs[0] and "tasks: 2 success" in outputs[0]
    assert "spxdl: error: the bucket spxdl-none of s3://spxdl-none/spx does not exist" in outputs[-1]
    assert "fill them with: spxdl backfill --from 2024-03-13 --to 2024-03-13 --data-dir 's3://***@" in outputs[3]
    fs = s3.filesystem()
    objects = [fs.open_input_stream(info.path).read() for info in
               fs.get_file_info(pafs.FileSelector(bucket, recursive=True)) if info.type == pafs.FileType.File]
    assert len(objects) >= 7  # 3 Parquet files (their key-value metadata included), 4 published summaries
    files = [path.read_bytes() for path in ledger.rglob("*") if path.is_file()]
    assert any(b"kind,key,state" in data for data in files)  # metrics.csv is among them
    for secret in (KEY_ID, SECRET, SECRET.replace("/", "%2F").replace("+", "%2B")):
        assert not [text for text in outputs if secret in text]
        assert not [data for data in files + objects if secret.encode() in data]


# ------------------------------------------------------------------ one line and a documented exit code


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_an_object_store_without_a_ledger_dir_is_refused_naming_the_fix(s3):
    result = invoke(*RUN, "--data-dir", s3.uri("bucket", "spx"))
    assert result.exit_code == 2
    assert "set [storage] ledger_dir (or --ledger-dir" in one_error_line(result)


def test_a_missing_bucket_stops_the_run_before_it_starts_and_verify_says_so(s3, isolated):
    where = ["--data-dir", s3.uri("spxdl-no-such-bucket", "spx"), "--ledger-dir", str(isolated / "l")]
    result = invoke(*RUN, *where)
    assert result.exit_code == 2
    assert "the bucket spxdl-no-such-bucket of s3://spxdl-no-such-bucket/spx does not exist; create it" in one_error_line(result)
    verify = invoke("verify", *where)
    assert verify.exit_code == 2 and "does not exist" in one_error_line(verify)


def test_refused_credentials_stop_the_run_naming_where_credentials_come_from(s3, isolated):
    refusing = MotoS3.start(auth=True)
    try:
        result = invoke(*RUN, "--data-dir", refusing.uri("bucket", "spx"), "--ledger-dir", str(isolated / "l"))
    finally:
        refusing.stop()
    assert result.exit_code == 2
    assert "refused access to s3://bucket/spx" in one_error_line(result) and "AWS_ACCESS_KEY_ID" in result.stderr


def test_an_unreachable_endpoint_is_try_later(s3, isolated):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"s3://bucket/spx?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    result = invoke(*RUN, "--data-dir", uri, "--ledger-dir", str(isolated / "l"))
    assert result.exit_code == 75
    assert "the object store of s3://bucket/spx does not answer" in one_error_line(result)
