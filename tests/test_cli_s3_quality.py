"""Issue 14's archive commands on an archive in an object store (``--data-dir s3://...``): status with its checks,
verify --content and its selections, the dry run's estimate, and notify; moto's S3 API on loopback.

The ledger (its shapes, metrics.csv, how the last run ended) lives in the ledger dir; the data
files are read through the archive, so every path shown is the object's URI.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from moto_server import run_spxdl, use_test_aws_environment
from spxdl import cli, storage
from spxdl.simulator import Quirks, Simulator

FIRST, LAST = "2024-03-14", "2024-03-15"
RUN = ["run", "--simulate", "--sim-profile", "tiny", "--max-dte", "7", "--workers", "1", "--yes"]
DAY14 = "greeks-1m/root=SPXW/trade_date=2024-03-14"


def invoke(*args: str):
    return CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module", name="made")
def fixture_made(moto_s3, tmp_path_factory):
    """Two days of the tiny profile run into a bucket once (its ledger in a local dir); tests copy both."""
    home = tmp_path_factory.mktemp("s3-quality")
    with pytest.MonkeyPatch.context() as patch:
        use_test_aws_environment(patch)
        bucket = moto_s3.new_bucket()
        run = run_spxdl(*RUN, "--start", FIRST, "--end", LAST, "--data-dir", moto_s3.uri(bucket, "spx"),
                        "--ledger-dir", str(home / "ledger"), cwd=home)
    assert run.returncode == 0, run.stderr
    return {"bucket": bucket, "ledger": home / "ledger"}


@pytest.fixture(name="archive")
def fixture_archive(made, s3, isolated):
    """This test's own bucket (a server-side copy) and ledger dir; ``where`` names both."""
    bucket, fs = s3.new_bucket(), s3.filesystem()
    for info in fs.get_file_info(pafs.FileSelector(f"{made['bucket']}/spx", recursive=True)):
        if info.type == pafs.FileType.File:
            fs.copy_file(info.path, bucket + info.path[len(made["bucket"]):])
    ledger = Path(shutil.copytree(made["ledger"], isolated / "ledger"))
    return {"bucket": bucket, "fs": fs, "ledger": ledger, "uri": s3.uri(bucket, "spx"),
            "where": ["--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(ledger)]}


def rewrite_behind_the_ledgers_back(archive: dict, relative: str, change: Callable[[pa.Table], pa.Table]) -> str:
    """Rewrite an object as ``change`` makes its table and give the ledger its new sha256 and size, so that only
    what is in it tells; the object's key."""
    fs, key = archive["fs"], f"{archive['bucket']}/spx/{relative}"
    with fs.open_input_file(key) as handle:
        table = pq.read_table(handle)
    sink = pa.BufferOutputStream()
    pq.write_table(change(table), sink)
    data = sink.getvalue().to_pybytes()
    with fs.open_output_stream(key) as out:
        out.write(data)
    day_json = archive["ledger"] / Path(relative).parent / storage.DAY_JSON
    day = json.loads(day_json.read_text())
    entry = next(entry for entry in day["expirations"].values() if entry["file"] == Path(relative).name)
    entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    day_json.write_text(json.dumps(day))
    return key


def cross_quotes(table: pa.Table, count: int = 4) -> pa.Table:
    """The first ``count`` quotes crossed; metadata and rows kept."""
    bid = pc.if_else(pc.less(pa.array(range(table.num_rows)), count), pc.add(table["ask"], 1.0), table["bid"])
    return table.set_column(table.schema.get_field_index("bid"), "bid", bid).replace_schema_metadata(
        table.schema.metadata)


def cross_quotes_behind_the_ledgers_back(archive: dict, relative: str) -> str:
    return rewrite_behind_the_ledgers_back(archive, relative, cross_quotes)


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_verify_content_finds_a_corrupted_object_on_the_date_asked_and_repair_moves_it_aside(archive, s3):
    names = [name for name in sorted(s3.keys(archive["bucket"])) if DAY14 in name and name.endswith(".parquet")]
    assert len(names) == 1  # 2024-03-14 holds one expiration in DTE 0..7 of the tiny profile
    key = cross_quotes_behind_the_ledgers_back(archive, f"{DAY14}/{Path(names[0]).name}")
    plain = invoke("verify", "--date", FIRST, *archive["where"])
    assert plain.exit_code == 0, plain.output  # sha256, footer and rows all agree with the ledger
    found = invoke("verify", "--content", "--date", FIRST, *archive["where"])
    assert found.exit_code == 1, found.output + found.stderr
    content = [line for line in found.output.splitlines() if line.startswith("CONTENT")]
    assert len(content) == 1 and f"s3://{key}: crossed_quote: " in content[0]
    assert "checked 1 task(s), 1 file(s), rows of 1 checked again" in found.output
    other = invoke("verify", "--content", "--date", LAST, *archive["where"])
    assert other.exit_code == 0 and "rows of 2 checked again" in other.output
    repair = invoke("verify", "--content", "--repair", "--date", FIRST, *archive["where"])
    assert repair.exit_code == 1 and "moved 1 bad file(s) aside" in repair.output
    keys = s3.keys(archive["bucket"])
    assert key.partition("/")[2] not in keys and any(".corrupt-" in name and DAY14 in name for name in keys)


def test_verify_takes_objects_and_prefixes_of_the_bucket_as_its_selection(archive, s3):
    cross_quotes_behind_the_ledgers_back(archive, f"{DAY14}/spxw_exp_20240315.parquet")
    day = f"s3://{archive['bucket']}/spx/{DAY14}"
    report = json.loads(invoke("verify", "--content", "--json", day, *archive["where"]).output)
    assert (report["tasks"], report["files"], report["rechecked"]) == (1, 1, 1)
    assert [problem["kind"] for problem in report["problems"]] == ["content"]
    whole = json.loads(invoke("verify", "--content", "--json", *archive["where"]).output)
    assert (whole["files"], whole["rechecked"]) == (3, 3)
    outside = invoke("verify", f"s3://{archive['bucket']}/elsewhere", *archive["where"])
    assert outside.exit_code == 2 and "is not in the data dir" in one_error_line(outside)
    absent = invoke("verify", f"{day}/spxw_exp_20991231.parquet", *archive["where"])
    assert absent.exit_code == 2 and "does not exist in s3://" in one_error_line(absent)
    secret = invoke("verify", f"s3://AKIAKEYID:s3cr3tkey@{archive['bucket']}/spx/{DAY14}", *archive["where"])
    assert secret.exit_code == 2 and "s3://***@" in one_error_line(secret) and "s3cr3tkey" not in secret.stderr


def test_status_reads_the_mode_and_the_checks_from_the_ledger_dir(archive):
    report = json.loads(invoke("status", "--json", *archive["where"]).output)
    greeks = report["archives"]["greeks-1m"]
    assert (greeks["files"], greeks["validation"], greeks["last_complete_day"]) == (3, "flag", LAST)
    assert greeks["rows"] > 0 and {line["name"] for line in greeks["checks"]}
    text = invoke("status", "--checks", *archive["where"])
    assert text.exit_code == 0 and "checks in greeks-1m (validation flag;" in text.output
    assert "greeks-1m: 3 file(s)" in text.output


def test_a_dry_run_estimates_its_time_from_the_runs_in_the_ledger_dirs_metrics(archive):
    dry = invoke(*RUN, "--date", "2024-03-18", "--dry-run", *archive["where"])
    assert dry.exit_code == 0, dry.stderr
    assert f"into {archive['uri']} (dry run" in dry.output
    assert "rows/s (the rows/s of past runs in metrics.csv)" in dry.output


def test_notify_tells_a_failed_run_into_s3_and_remembers_it_in_the_ledger_dir(s3, isolated):
    inbox = isolated / "inbox"
    inbox.mkdir()
    config = isolated / "spxdl.ini"
    config.write_text(f"[notify]\ncommand = cat > {inbox}/told.json\ntimeout = 30\n")
    bucket, ledger = s3.new_bucket(), isolated / "ledger"
    s3.refuse_uploads("spxw_exp_20240322")  # 2024-03-15's DTE 7 expiration fails
    failed = invoke("--config", str(config), *RUN, "--start", FIRST, "--end", LAST, "--data-dir", s3.uri(bucket, "spx"),
                    "--ledger-dir", str(ledger))
    assert failed.exit_code == 1, failed.stderr
    told = json.loads((inbox / "told.json").read_text())
    assert (told["event"], told["exit_code"], told["data_dir"]) == ("failure", 1, s3.uri(bucket, "spx"))
    assert json.loads((ledger / storage.LAST_RUN_JSON).read_text())
    assert not [path for path in isolated.iterdir() if path.name.startswith("s3:")]  # nothing made of the URI


def test_a_file_not_naming_its_mode_is_judged_by_the_mode_the_ledger_dir_records(s3, isolated):
    """A drop-mode archive in the bucket; one file rewritten as spxdl wrote files before they named their mode:
    its rows hold none of the crossed quotes the ledger counted, which the archive's mode (drop) explains."""
    config = isolated / "drop.ini"
    config.write_text("[validation]\nmode = drop\n")
    bucket, ledger = s3.new_bucket(), isolated / "ledger"
    where = ["--data-dir", s3.uri(bucket, "spx"), "--ledger-dir", str(ledger)]
    with Simulator(profile="tiny", quirks=Quirks(crossed_every=50)) as crossing:
        run = invoke("--config", str(config), "run", "--date", FIRST, "--terminal-url", crossing.url, "--max-dte", "3",
                     "--workers", "1", *where)
    assert run.exit_code == 0, run.stderr
    (name,) = [name for name in s3.keys(bucket) if DAY14 in name and name.endswith(".parquet")]
    archive = {"bucket": bucket, "fs": s3.filesystem(), "ledger": ledger}

    def unnamed(table: pa.Table) -> pa.Table:
        return table.replace_schema_metadata({k: v for k, v in table.schema.metadata.items() if k != b"validation"})

    rewrite_behind_the_ledgers_back(archive, f"{DAY14}/{Path(name).name}", unnamed)
    day = json.loads((ledger / DAY14 / storage.DAY_JSON).read_text())
    assert any(entry["checks"].get("crossed_quote") for entry in day["expirations"].values())
    content = invoke("--config", str(config), "verify", "--content", *where)
    assert content.exit_code == 0, content.output  # dropped in drop mode: none of them is in the file
