"""Data quality a nightly job's owner can see: bad rows in status, metrics.csv and the log; the validation mode
as part of the archive's shape; verify --content and its selections; the richer status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from once import cli_once, copy_into
from spxdl import metrics, storage
from spxdl.simulator import Faults, Quirks, Simulator

DAY, NEXT_DAY = "2024-03-14", "2024-03-15"
CROSSED_EVERY = 50


@pytest.fixture(scope="module", name="bad_sim")
def fixture_bad_sim():
    """A tiny simulator crossing every 50th quote."""
    with Simulator(profile="tiny", quirks=Quirks(crossed_every=CROSSED_EVERY)) as simulator:
        yield simulator


@pytest.fixture(scope="module", name="bad_download")
def fixture_bad_download(bad_sim, tmp_path_factory):
    """Two days of greeks (DTE 0..7: one expiration, then two) downloaded once with crossed quotes, in flag
    mode, by a user with no configuration (as ``isolated`` makes one); each test gets a copy."""
    home = tmp_path_factory.mktemp("bad-home")
    cli_once(home, "run", "--start", DAY, "--end", NEXT_DAY, "--terminal-url", bad_sim.url,
             "--data-dir", str(home / "bad"), "--max-dte", "7", "--workers", "1")
    return home / "bad"


@pytest.fixture(name="bad_archive")
def fixture_bad_archive(bad_download, isolated):
    """This test's own copy of the download with crossed quotes."""
    return copy_into(bad_download, isolated / "bad")


def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def crossed_rows(data_dir: Path) -> int:
    """Crossed quotes in the stored files, counted with pyarrow alone."""
    return sum(pc.sum(pc.greater(table["bid"], table["ask"])).as_py() or 0
               for table in (pq.read_table(path) for path in sorted(data_dir.rglob("*.parquet"))))


# ------------------------------------------------------------------ bad rows: status, metrics.csv, the log


def test_bad_rows_show_in_status_checks_metrics_and_the_log(invoke, bad_archive):
    crossed = crossed_rows(bad_archive)
    assert crossed > 0
    text = invoke("status", "--data-dir", str(bad_archive), "--checks")
    assert text.exit_code == 0, text.stderr
    assert "checks in greeks-1m (validation flag;" in text.output
    table_line = next(line for line in text.output.splitlines() if line.strip().startswith("crossed_quote"))
    assert f"{crossed:,}" in table_line and "rows whose bid is above the ask" in table_line  # CHECKS' sentence
    report = json.loads(invoke("status", "--data-dir", str(bad_archive), "--checks", "--json").stdout)
    archive = report["archives"]["greeks-1m"]
    line = next(line for line in archive["checks"] if line["name"] == "crossed_quote")
    assert line["count"] == crossed and line["share"] == pytest.approx(crossed / archive["rows"])
    assert sum(task["checks"].get("crossed_quote", 0) for task in report["tasks"]) == crossed
    run_row = [row for row in metrics.read(bad_archive) if row["kind"] == "run"][-1]
    assert run_row["crossed_quote"] == str(crossed)
    log = (bad_archive / "logs" / "spxdl.log").read_text().splitlines()
    for task in report["tasks"]:
        said = f"{task['key']}: checks flagged crossed_quote {task['checks']['crossed_quote']:,}"
        assert [line for line in log if said in line and " INFO " in line], said


def test_a_run_in_another_validation_mode_is_refused_with_one_line_and_exit_2(invoke, bad_archive, bad_sim):
    before = sorted(path.stat().st_mtime_ns for path in bad_archive.rglob("*.parquet"))
    config = bad_archive.parent / "drop.ini"
    config.write_text("[validation]\nmode = drop\n")
    result = invoke("--config", str(config), "run", "--date", "2024-03-13", "--terminal-url", bad_sim.url,
                    "--data-dir", str(bad_archive), "--max-dte", "7")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "holds data of another shape (validation: 'flag' in the archive, 'drop' asked)" in line
    assert "use another data dir" in line
    assert sorted(path.stat().st_mtime_ns for path in bad_archive.rglob("*.parquet")) == before
    assert not list(bad_archive.rglob("trade_date=2024-03-13"))


def test_drop_mode_keeps_bad_rows_out_and_counts_them_in_the_ledger(invoke, bad_sim, isolated):
    config = isolated / "drop.ini"
    config.write_text("[validation]\nmode = drop\n")
    data_dir = isolated / "dropped"
    result = invoke("--config", str(config), "run", "--date", DAY, "--terminal-url", bad_sim.url,
                    "--data-dir", str(data_dir), "--max-dte", "3", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    assert crossed_rows(data_dir) == 0
    archive = json.loads(invoke("status", "--data-dir", str(data_dir), "--json").stdout)["archives"]["greeks-1m"]
    assert archive["validation"] == "drop" and archive["dropped"] > 0
    crossed = next(line for line in archive["checks"] if line["name"] == "crossed_quote")
    assert crossed["count"] == archive["dropped"]
    assert crossed["share"] == pytest.approx(crossed["count"] / (archive["rows"] + archive["dropped"]))  # of rows received
    assert json.loads(storage.archive_json_path(data_dir, "greeks-1m").read_text())["validation"] == "drop"
    assert all(pq.read_metadata(path).metadata[b"validation"] == b"drop" for path in data_dir.rglob("*.parquet"))
    content = invoke("--config", str(config), "verify", "--data-dir", str(data_dir), "--content")
    assert content.exit_code == 0, content.output  # none of what was dropped is in the files


# ------------------------------------------------------------------ verify --content and its selections


def alter_rows(path: Path, count: int = 4) -> None:
    """Cross the first ``count`` quotes of a data file, keeping its metadata and row count."""
    table = pq.read_table(path)
    bid = pc.if_else(pc.less(pa.array(range(table.num_rows)), count), pc.add(table["ask"], 1.0), table["bid"])
    altered = table.set_column(table.schema.get_field_index("bid"), "bid", bid)
    pq.write_table(altered.replace_schema_metadata(table.schema.metadata), path)


def test_verify_content_finds_rows_altered_behind_the_ledgers_back(invoke, bad_archive):
    day_dir = storage.task_dir(bad_archive, "greeks-1m", "SPXW", datetime.fromisoformat(DAY).date())
    target = sorted(day_dir.glob("*.parquet"))[0]
    alter_rows(target)
    day_json = day_dir / "_day.json"
    day = json.loads(day_json.read_text())
    entry = next(entry for entry in day["expirations"].values() if entry["file"] == target.name)
    entry.update(sha256=storage.sha256_file(target), bytes=target.stat().st_size)  # the ledger told nothing else
    day_json.write_text(json.dumps(day))

    plain = invoke("verify", "--data-dir", str(bad_archive))
    assert plain.exit_code == 0, plain.output  # checksum, footer and rows all agree with the ledger
    result = invoke("verify", "--content", "--date", DAY, "--data-dir", str(bad_archive))
    assert result.exit_code == 1
    content = [line for line in result.output.splitlines() if line.startswith("CONTENT")]
    assert len(content) == 1 and str(target) in content[0]
    assert "crossed_quote: " in content[0] and "expected (the ledger counted" in content[0]
    assert "checked 1 task(s), 1 file(s), rows of 1 checked again" in result.output
    assert "files/s" in result.output
    other_day = invoke("verify", "--content", "--date", NEXT_DAY, "--data-dir", str(bad_archive))
    assert other_day.exit_code == 0 and "CONTENT" not in other_day.output
    repair = invoke("verify", "--content", "--repair", "--date", DAY, "--data-dir", str(bad_archive))
    assert repair.exit_code == 1 and "moved 1 bad file(s) aside" in repair.output
    assert not target.exists()


def test_verify_content_without_checksum_help_names_both_problems(invoke, bad_archive):
    target = sorted(bad_archive.rglob("*.parquet"))[-1]
    alter_rows(target)
    report = json.loads(invoke("verify", "--content", "--json", "--data-dir", str(bad_archive)).stdout)
    kinds = sorted(problem["kind"] for problem in report["problems"])
    assert kinds == ["checksum", "content"] and report["rechecked"] == report["files"] > 1
    assert report["files_per_s"] > 0 and report["seconds"] >= 0


def test_verify_checks_only_the_part_asked_for(invoke, bad_archive):
    files = sorted(bad_archive.rglob("*.parquet"))
    for path in files:
        alter_rows(path, 1)  # every file now fails its checksum: what is counted shows what was checked

    def checked(*args: str) -> set[str]:
        report = json.loads(invoke("verify", "--json", "--data-dir", str(bad_archive), *args).stdout)
        return {problem["path"] for problem in report["problems"]}

    every = {str(path) for path in files}
    on_day = {str(path) for path in files if f"trade_date={DAY}" in str(path)}
    assert checked() == every and 0 < len(on_day) < len(every)
    assert checked("--date", DAY) == on_day
    assert checked("--start", NEXT_DAY, "--end", NEXT_DAY) == every - on_day
    assert checked("--root", "SPX") == set() and checked("--root", "spxw") == every
    assert checked("--dataset", "quote") == set() and checked("--dataset", "greeks") == every
    siblings = [path for path in files if path.parent == files[-1].parent]
    assert len(siblings) > 1 and checked(str(files[-1])) == {str(files[-1])}
    assert checked(str(files[-1].parent)) == {str(path) for path in files if path.parent == files[-1].parent}
    told = invoke("verify", "--data-dir", str(bad_archive), str(files[-1])).stderr
    assert f"fix with: spxdl verify --repair {files[-1]} --data-dir {bad_archive}, then" in told  # runs as printed
    outside = invoke("verify", "--data-dir", str(bad_archive), str(bad_archive.parent))
    assert outside.exit_code == 2 and "is not in the data dir" in one_error_line(outside)
    assert "--data-dir" in one_error_line(invoke("verify", str(files[0])))  # the default data dir is ./data
    both = invoke("verify", "--data-dir", str(bad_archive), "--date", DAY, "--start", DAY)
    assert both.exit_code == 2 and "either --date or --start/--end" in one_error_line(both)
    unknown = invoke("verify", "--data-dir", str(bad_archive), "--dataset", "nope")
    assert unknown.exit_code == 2 and "unknown dataset" in one_error_line(unknown)


# ------------------------------------------------------------------ the richer status


def test_status_names_files_rows_bytes_arrival_last_complete_date_and_mode_per_archive(invoke, bad_archive):
    before = datetime.now(timezone.utc)
    report = json.loads(invoke("status", "--data-dir", str(bad_archive), "--json").stdout)
    archive = report["archives"]["greeks-1m"]
    files = sorted(bad_archive.rglob("*.parquet"))
    assert archive["files"] == len(files) and archive["bytes"] == sum(path.stat().st_size for path in files)
    assert archive["rows"] == sum(pq.read_metadata(path).num_rows for path in files)
    assert (archive["last_complete_day"], archive["validation"]) == (NEXT_DAY, "flag")
    arrived = datetime.fromisoformat(archive["last_data_at"])
    assert before.timestamp() - 600 < arrived.timestamp() <= before.timestamp()
    text = invoke("status", "--data-dir", str(bad_archive)).output
    assert f"greeks-1m: {len(files)} file(s), {archive['rows']:,} rows" in text
    assert f"last complete trade date {NEXT_DAY}; validation flag" in text and "data last arrived 20" in text


SPXDL = [sys.executable, "-m", "spxdl"]


def test_status_shows_how_many_expirations_a_running_task_has_done(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}

    def status(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SPXDL, "status", "--data-dir", "data", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)

    with Simulator(profile="tiny", faults=Faults(latency=1.0)) as slow:
        run = subprocess.Popen([*SPXDL, "run", "--date", NEXT_DAY, "--max-dte", "21", "--workers", "1", "--threads", "1",
                                "--terminal-url", slow.url, "--data-dir", "data"], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            seen, deadline = None, time.monotonic() + 60
            while seen is None and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.3)
                result = status("--json") if (tmp_path / "data" / "status.json").exists() else None
                tasks = json.loads(result.stdout)["tasks"] if result and result.returncode == 0 else []
                seen = next((task for task in tasks if task["listed"] is not None and task["done"]), None)
            assert seen is not None, "no running task was seen with an expiration done"
            assert seen["state"] == "in_progress" and seen["listed"] == 4 and 1 <= seen["done"] < 4
            assert " of 4 done" in status().stdout
        finally:
            os.killpg(run.pid, signal.SIGKILL)  # killed: no release rewrites status.json
            run.wait(timeout=60)
    report = json.loads(status("--json").stdout)
    (task,) = report["tasks"]
    day = json.loads(next((tmp_path / "data").rglob("_day.json")).read_text())
    newest = max(entry["updated_at"] for entry in day["expirations"].values() if entry["state"] == "complete")
    assert task["state"] == "interrupted" and task["done"] is None  # nobody works on it now (its pids are gone)
    assert task["last_file_at"] == report["archives"]["greeks-1m"]["last_data_at"] == newest  # read from _day.json


# ------------------------------------------------------------------ dry runs: a time estimate, the days skipped


def test_a_dry_run_estimates_the_time_from_past_runs_or_a_stated_default(invoke, bad_archive, isolated):
    fresh = invoke("run", "--dry-run", "--date", "2024-03-13", "--data-dir", str(isolated / "empty"),
                   "--terminal-url", "http://127.0.0.1:9")
    assert fresh.exit_code == 0, fresh.stderr
    rows = int(fresh.output.split("~")[2].split(" rows")[0].replace(",", ""))
    assert "at 100,000 rows/s (a default: no past run in metrics.csv yet)" in fresh.output
    from spxdl.cli.render import human_duration

    assert f"time: ~{human_duration(round(rows / 100_000))} at" in fresh.output
    past = invoke("run", "--dry-run", "--date", "2024-03-13", "--data-dir", str(bad_archive), "--max-dte", "7")
    rate = metrics.past_rows_per_second(bad_archive)
    assert f"at {round(rate):,} rows/s (the rows/s of past runs in metrics.csv)" in past.output


def test_a_dry_run_lists_the_days_it_skips_with_the_reason(invoke, bad_archive):
    result = invoke("run", "--dry-run", "--start", "2024-03-14", "--end", "2024-04-01", "--data-dir", str(bad_archive),
                    "--max-dte", "7")
    assert result.exit_code == 0, result.stderr
    assert "skipped: 3 day(s) and 6 weekend day(s)" in result.output
    assert f"    {DAY} (Thu): 1 task(s) complete" in result.output
    assert f"    {NEXT_DAY} (Fri): 1 task(s) complete" in result.output
    assert "    2024-03-29 (Fri): markets closed: Good Friday" in result.output
    assert "2024-03-18" not in result.output.split("skipped:")[1]  # planned, not skipped


def test_shares_read_as_percentages_and_a_rare_row_is_never_shown_as_zero():
    from spxdl.cli.render import percent

    assert (percent(0.0199), percent(0.106), percent(1 / 6_000_000), percent(0.0)) == ("1.99 %", "10.60 %", "<0.01 %",
                                                                                       "0.00 %")
