"""The command line through Click's CliRunner: every command, exit codes, and one-line errors."""

from __future__ import annotations

import errno
import json
import shlex
import socket
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest

from once import cli_once, copy_into
from spxdl import cli, errors

DAY = "2024-03-14"  # a Thursday
NEXT_DAY = "2024-03-15"


@pytest.fixture(scope="module", name="made_archive")
def fixture_made_archive(sim, tmp_path_factory):
    """Two simulated days of SPXW greeks (DTE 0..3), downloaded once per module."""
    home = tmp_path_factory.mktemp("archive-home")
    cli_once(home, "run", "--start", DAY, "--end", NEXT_DAY, "--terminal-url", sim.url,
             "--data-dir", str(home / "archive"), "--max-dte", "3", "--workers", "1")
    return home / "archive"


@pytest.fixture(name="archive")
def fixture_archive(made_archive, isolated):
    """This test's own data dir holding the two simulated days of SPXW greeks (DTE 0..3)."""
    return copy_into(made_archive, isolated / "archive")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_error_line(result) -> str:
    """Exactly one error line on stderr (log lines may precede it), and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("spxdl: error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# ------------------------------------------------------------------ help and documentation


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path, command", list(all_commands(cli.cli)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_and_option_has_help_text(path, command):
    assert command.help, f"spxdl {' '.join(path)} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"spxdl {' '.join(path)} {param.opts} has no help"


def test_help_documents_the_exit_codes(invoke):
    result = invoke("--help")
    assert result.exit_code == 0
    for code in ("0 ", "1 ", "2 ", "74 ", "75 ", "130", "143"):
        assert code in result.output


@pytest.mark.parametrize("error", [
    errors.DiskFull("cannot write x"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    OSError(errno.EFBIG, "File too large"),
], ids=["DiskFull", "ENOSPC", "EDQUOT", "EFBIG"])
def test_no_room_to_write_is_exit_74_however_it_arrives(error):
    assert cli.exit_code_for(error) == cli.EXIT_NO_SPACE == 74
    assert cli.exit_code_for(OSError(errno.EACCES, "Permission denied")) == cli.EXIT_INCOMPLETE


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0 and "spxdl" in result.output


def test_version_names_spxdl_python_and_pyarrow(invoke):
    import platform

    import pyarrow

    from spxdl import __version__

    result = invoke("--version")
    assert result.output == f"spxdl {__version__} (Python {platform.python_version()}, pyarrow {pyarrow.__version__})\n"


# ------------------------------------------------------------------ run and friends


def test_run_downloads_a_range_and_a_rerun_has_nothing_to_do(invoke, sim, archive):
    files = sorted(archive.rglob("*.parquet"))
    assert files and all(f.stat().st_size > 0 for f in files)
    assert {f.parent.name for f in files} == {f"trade_date={DAY}", f"trade_date={NEXT_DAY}"}
    again = invoke("run", "--start", DAY, "--end", NEXT_DAY, "--terminal-url", sim.url, "--data-dir", str(archive), "--max-dte", "3")
    assert again.exit_code == 0
    assert "Nothing to do" in again.stderr and "2 task(s) already complete" in again.stderr


def test_dry_run_prints_the_plan_and_writes_nothing(invoke, sim, isolated):
    data_dir = isolated / "dry"
    result = invoke("run", "--date", DAY, "--terminal-url", sim.url, "--data-dir", str(data_dir), "--dry-run")
    assert result.exit_code == 0
    assert "tasks to download: 1" in result.output and "estimate:" in result.output
    assert not data_dir.exists()


def test_download_is_an_alias_of_run(invoke, sim, isolated):
    result = invoke("download", "--date", DAY, "--terminal-url", sim.url, "--data-dir", str(isolated / "d"), "--dry-run")
    assert result.exit_code == 0 and "tasks to download: 1" in result.output


def test_summary_reports_rows_and_tasks(invoke, sim, isolated):
    result = invoke("run", "--date", DAY, "--terminal-url", sim.url, "--data-dir", str(isolated / "s"), "--max-dte", "2")
    assert result.exit_code == 0
    assert "1 success" in result.stderr and "rows" in result.stderr


def test_backfill_without_a_start_date_says_how_to_set_one(invoke, isolated):
    result = invoke("backfill", "--data-dir", str(isolated / "b"))
    assert result.exit_code == 2
    assert "--from YYYY-MM-DD or set start_date in [download]" in one_error_line(result)


def test_backfill_uses_the_configured_start_date(invoke, sim, isolated):
    result = invoke("backfill", "--to", DAY, "--terminal-url", sim.url, "--data-dir", str(isolated / "b"), "--dry-run",
                    env={"SPXDL_DOWNLOAD_START_DATE": "2024-03-11"})
    assert result.exit_code == 0
    assert "Plan for 2024-03-11 .. 2024-03-14" in result.output and "tasks to download: 4" in result.output


def test_update_plans_the_latest_sessions(invoke, sim, isolated):
    result = invoke("update", "--lookback", "1", "--terminal-url", sim.url, "--data-dir", str(isolated / "u"), "--dry-run")
    assert result.exit_code == 0
    assert "tasks to download: 2 over 2 trading day(s)" in result.output


def test_run_without_dates_does_what_update_does(invoke, sim, isolated):
    env = {"SPXDL_DOWNLOAD_LOOKBACK": "1"}
    result = invoke("run", "--terminal-url", sim.url, "--data-dir", str(isolated / "u"), "--dry-run", env=env)
    assert result.exit_code == 0 and "tasks to download: 2 over 2 trading day(s)" in result.output


def test_resume_with_nothing_incomplete(invoke, sim, archive):
    result = invoke("resume", "--terminal-url", sim.url, "--data-dir", str(archive))
    assert result.exit_code == 0 and "Nothing to resume" in result.stderr


def test_resume_finishes_a_task_verify_repair_requeued(invoke, sim, archive):
    victim = sorted(archive.rglob("*.parquet"))[0]
    victim.unlink()
    assert invoke("verify", "--data-dir", str(archive), "--repair").exit_code == 1
    result = invoke("resume", "--terminal-url", sim.url, "--data-dir", str(archive), "--max-dte", "3")
    assert result.exit_code == 0, result.stderr
    assert victim.exists()
    assert invoke("verify", "--data-dir", str(archive)).exit_code == 0


# ------------------------------------------------------------------ status, gaps, verify


def test_status_table_and_json(invoke, archive):
    text = invoke("status", "--data-dir", str(archive))
    assert text.exit_code == 0
    assert f"greeks-1m/SPXW/{DAY}" in text.output and "success" in text.output
    assert f"last complete day: {NEXT_DAY}" in text.output
    data = json.loads(invoke("status", "--data-dir", str(archive), "--json").stdout)
    assert data["totals"]["states"] == {"success": 2}
    assert data["last_complete_day"] == NEXT_DAY
    assert all(task["rows"] > 0 for task in data["tasks"])


def test_status_of_a_missing_archive_says_what_to_do(invoke, isolated):
    result = invoke("status", "--data-dir", str(isolated / "none"))
    assert result.exit_code == 2
    assert "no archive at" in one_error_line(result)
    assert f"download something first (spxdl run --data-dir {isolated / 'none'})" in one_error_line(result)
    assert not (isolated / "none").exists()


def test_gaps_lists_missing_days_in_both_forms(invoke, archive):
    result = invoke("gaps", "--start", "2024-03-13", "--end", NEXT_DAY, "--data-dir", str(archive), "--max-dte", "3")
    assert result.exit_code == 1
    assert "greeks-1m/SPXW/2024-03-13" in result.output and "missing" in result.output
    assert DAY not in result.output
    data = json.loads(invoke("gaps", "--start", "2024-03-13", "--end", NEXT_DAY, "--data-dir", str(archive), "--max-dte", "3",
                             "--json").stdout)
    assert [gap["trade_date"] for gap in data["gaps"]] == ["2024-03-13"]


def test_gaps_counts_a_wider_dte_window_as_a_gap(invoke, archive):
    result = invoke("gaps", "--start", DAY, "--end", NEXT_DAY, "--data-dir", str(archive), "--max-dte", "10")
    assert result.exit_code == 1 and "narrower DTE window" in result.output


def test_gaps_none_exits_zero(invoke, archive):
    result = invoke("gaps", "--start", DAY, "--end", NEXT_DAY, "--data-dir", str(archive), "--max-dte", "3")
    assert result.exit_code == 0 and "0 gap(s)" in result.stderr


def test_verify_clean_archive(invoke, archive):
    result = invoke("verify", "--data-dir", str(archive))
    assert result.exit_code == 0 and "0 problem(s)" in result.output


def test_verify_finds_a_flipped_byte_a_deleted_file_and_a_stray_temp_file(invoke, archive):
    first, second = sorted(archive.rglob("*.parquet"))[:2]
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    second.unlink()
    stray = first.parent / f".{first.name}.tmp-999999-abc"
    stray.write_bytes(b"partial")
    result = invoke("verify", "--data-dir", str(archive), "--json")
    assert result.exit_code == 1
    kinds = {(p["kind"], Path(p["path"]).name) for p in json.loads(result.stdout)["problems"]}
    assert ("checksum", first.name) in kinds
    assert ("missing", second.name) in kinds
    assert ("temp", stray.name) in kinds


def test_verify_repair_moves_bad_files_aside_and_requeues(invoke, archive):
    target = sorted(archive.rglob("*.parquet"))[0]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    result = invoke("verify", "--data-dir", str(archive), "--repair")
    assert result.exit_code == 1 and "moved 1 bad file(s) aside" in result.output
    assert not target.exists()
    assert any(".corrupt-" in p.name for p in target.parent.iterdir())
    status = json.loads(invoke("status", "--data-dir", str(archive), "--json").stdout)
    assert status["totals"]["states"] == {"success": 1, "partial": 1}


# ------------------------------------------------------------------ health and config


def test_health_of_the_simulator(invoke, sim, isolated):
    result = invoke("health", "--terminal-url", sim.url, "--data-dir", str(isolated / "h"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert report["terminal"]["status"] == "CONNECTED" and report["terminal"]["simulated"] is True
    assert report["terminal"]["api"] == "v3"
    text = invoke("health", "--terminal-url", sim.url, "--api", "v2", "--data-dir", str(isolated / "h"))
    assert text.exit_code == 0 and "api v2, simulated" in text.output


def test_health_without_a_terminal_exits_75_and_mentions_simulate(invoke, isolated):
    url = f"http://127.0.0.1:{free_port()}"
    result = invoke("health", "--terminal-url", url, "--data-dir", str(isolated), env={"SPXDL_TERMINAL_RETRIES": "0"})
    assert result.exit_code == 75
    assert "FAIL terminal" in result.output and "--simulate" in result.output
    assert result.output.count(url) == 1 and result.output.count("mdds/status") == 0
    assert max(len(line) for line in result.output.splitlines()) < 200


def test_health_simulate_checks_spxdl_against_the_built_in_simulator(invoke, isolated):
    result = invoke("health", "--simulate", "--sim-profile", "tiny", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] and report["terminal"]["simulated"] is True
    assert "sim-data" in report["data_dir"]["detail"] and not (isolated / "sim-data").exists()


def test_config_show_names_sources(invoke, isolated):
    (isolated / "spxdl.ini").write_text("[download]\nmax_dte = 9\n")
    result = invoke("config", "show", "--json", env={"SPXDL_TERMINAL_API": "v2"})
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["download.max_dte"] == {"value": "9", "source": "file spxdl.ini"}
    assert shown["terminal.api"] == {"value": "v2", "source": "env SPXDL_TERMINAL_API"}
    assert shown["engine.threads"]["source"] == "default"
    text = invoke("config", "show", "--data-dir", "/tmp/x")
    assert "storage.data_dir" in text.output and "flag --data-dir" in text.output


# ------------------------------------------------------------------ mistakes: one line, documented code


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--date", "2024-13-45"], "is not a date; write it as YYYY-MM-DD"),
        (["run", "--date", "2024-02-30"], "is not a date"),
        (["run", "--start", "2024-03-14", "--end", "2024-03-01"], "is before the start date"),
        (["run", "--start", "2099-01-02"], "has no complete session yet"),
        (["run", "--date", DAY, "--days-back", "2"], "use only one of"),
        (["run", "--date", DAY, "--end", DAY], "--end needs --start"),
        (["run", "--end", DAY], "--end needs --start"),
        (["run", "--date", DAY, "--dataset", "greek"], "unknown dataset 'greek'"),
        (["run", "--date", DAY, "--root", "SPX/../x"], "is not 1-6 letters"),
        (["run", "--date", DAY, "--min-dte", "9", "--max-dte", "2"], "make min_dte <= max_dte"),
        (["run", "--date", "1999-06-01"], "2000"),
        (["update", "--lookback", "99"], "--lookback must be from 0 to 60"),
        (["run", "--date", "2024-03-16"],
         "2024-03-16 is not a trading day (a Saturday); the sessions around it are 2024-03-15 and 2024-03-18"),
        (["run", "--date", "2024-03-29"], "2024-03-29 is not a trading day (markets closed: Good Friday)"),
        (["run", "--start", "2024-03-29", "--end", "2024-03-31"],
         "2024-03-29 .. 2024-03-31 holds no trading day; the sessions around it are 2024-03-28 and 2024-04-01"),
        (["backfill", "--from", "2024-03-16", "--to", "2024-03-17"], "holds no trading day"),
    ],
)
def test_user_mistakes_get_one_line_and_exit_2(invoke, isolated, args, fragment):
    result = invoke(*args, "--data-dir", str(isolated / "data"))
    assert result.exit_code == 2, result.stderr
    assert fragment in one_error_line(result)
    assert not (isolated / "data").exists()  # a usage error leaves nothing on disk (no logs/ either)


def test_the_log_file_opens_with_the_download_and_keeps_what_came_before(invoke, isolated):
    data = isolated / "d"
    result = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", DAY, "--max-dte", "1", "--data-dir", str(data))
    assert result.exit_code == 0, result.stderr
    logged = (data / "logs" / "spxdl.log").read_text()
    assert "simulated terminal (tiny profile)" in logged  # logged before the file was opened
    assert "recorded the shape of greeks-1m" in logged and "success" in logged


def test_unknown_config_key_is_one_line(invoke, isolated):
    (isolated / "bad.ini").write_text("[download]\nroot = SPXW\n")
    result = invoke("--config", str(isolated / "bad.ini"), "run", "--date", DAY)
    assert result.exit_code == 2
    assert "unknown key 'root' in [download]" in one_error_line(result)


def test_bad_config_value_names_the_key_and_file(invoke, isolated):
    (isolated / "bad.ini").write_text("[engine]\nworkers = many\n")
    result = invoke("--config", str(isolated / "bad.ini"), "status")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "engine.workers = 'many'" in line and "bad.ini" in line


def test_data_dir_that_cannot_be_created(invoke, isolated):
    blocker = isolated / "a-file"
    blocker.write_text("not a directory")
    result = invoke("run", "--date", DAY, "--data-dir", str(blocker / "data"))
    assert result.exit_code == 2
    assert "choose a writable --data-dir" in one_error_line(result)


def test_terminal_not_running_exits_75_and_says_how_to_start_one(invoke, isolated):
    result = invoke("run", "--date", DAY, "--terminal-url", f"http://127.0.0.1:{free_port()}",
                    "--data-dir", str(isolated / "data"), env={"SPXDL_TERMINAL_RETRIES": "0"})
    assert result.exit_code == 75
    line = one_error_line(result)
    assert "Start the ThetaData Terminal" in line and "--simulate" in line
    assert line.count("http://127.0.0.1:") == 1 and "mdds/status" not in line and len(line) < 300
    assert "trying again" not in result.stderr  # nobody answered: asking twice more would repeat the line


def test_shape_mismatch_with_the_archive_is_refused(invoke, sim, archive):
    result = invoke("run", "--date", "2024-03-13", "--terminal-url", sim.url, "--data-dir", str(archive),
                    env={"SPXDL_DOWNLOAD_RATE_VALUE": "0.05"})
    assert result.exit_code == 2
    assert "another data dir" in one_error_line(result)


def test_verbose_adds_the_traceback(invoke, isolated):
    result = invoke("--verbose", "run", "--date", "2024-02-30", "--data-dir", str(isolated / "data"))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "is not a date" in result.stderr


def test_sim_rejects_a_bad_probability(invoke):
    result = invoke("sim", "--fail-rate", "2")
    assert result.exit_code == 2
    assert "is not a probability" in one_error_line(result)


def test_sim_check_passes(invoke):
    result = invoke("sim", "--check", "--profile", "tiny")
    assert result.exit_code == 0, result.output
    assert "every endpoint family answered as documented" in result.output


def test_simulate_alone_is_a_small_demo_into_sim_data(invoke, isolated):
    result = invoke("run", "--simulate", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "into sim-data" in result.output
    assert "tasks to download: 3 over 3 trading day(s)" in result.output
    assert "DTE 0..3" in result.output
    tiny = invoke("run", "--simulate", "--sim-profile", "tiny", "--dry-run")
    assert "DTE 0..7" in tiny.output  # it lists Fridays only: every day's window holds one
    explicit = invoke("run", "--simulate", "--sim-profile", "tiny", "--dry-run", "--days-back", "2", "--max-dte", "9")
    assert "tasks to download: 2 over 2" in explicit.output and "DTE 0..9" in explicit.output


def test_summary_reports_flagged_checks_no_data_reasons_and_failures(capsys):
    from datetime import date as day

    from spxdl.engine import Plan, RunSummary, TaskResult
    from spxdl.ledger import Task

    good, empty, bad = (Task("greeks-1m", "SPXW", day(2024, 3, d)) for d in (13, 14, 15))
    summary = RunSummary(
        results=[
            TaskResult(good, "success", expirations={"complete": 2}, rows=10,
                       checks={"crossed_quote": 3, "greeks_all_zero": 7, "negative_quote": 0}),
            TaskResult(empty, "no_data", error="the terminal answered no data (472) for all 2 expiration(s)"),
            TaskResult(bad, "partial", error="1 expiration(s) failed", failures=((day(2024, 3, 15), "HTTP 570"),)),
        ],
        api="v3", seconds=2.0,
    )
    plan = Plan(tasks=(good, empty, bad), done=(), held=(), start=day(2024, 3, 13), end=day(2024, 3, 15))
    cli.print_summary(summary, plan)
    err = capsys.readouterr().err
    assert "checks flagged: crossed_quote 3 (" in err  # checks that counted nothing are not named
    assert "observed: greeks_all_zero 7 (what the vendor sends, kept as it is" in err  # normal, apart from faults
    assert "NO DATA greeks-1m/SPXW/2024-03-14: the terminal answered no data (472)" in err
    assert "PARTIAL greeks-1m/SPXW/2024-03-15: 1 expiration(s) failed" in err and "exp 2024-03-15: HTTP 570" in err
    assert cli.summary_exit_code(summary, plan) == 1


def test_verify_repair_refuses_while_a_live_run_holds_a_task(invoke, archive):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from datetime import date; from spxdl.ledger import Ledger, Task; "
         f"Ledger({str(archive)!r}).claim(Task('greeks-1m', 'SPXW', date(2024, 3, 13)), min_dte=0, max_dte=3); "
         "print('claimed', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        result = invoke("verify", "--data-dir", str(archive), "--repair")
        assert result.exit_code == 75
        assert "a live spxdl run is downloading" in one_error_line(result)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # the claim is now a dead process's: repair may go ahead
    assert invoke("verify", "--data-dir", str(archive), "--repair").exit_code == 0


# ------------------------------------------------------------------ datasets and API versions under --simulate


@pytest.mark.parametrize("api", ["v2", "v3"])
@pytest.mark.parametrize("dataset", ["eod", "greeks_second_order"])
def test_simulate_downloads_each_dataset_over_the_api_asked_for(invoke, isolated, dataset, api):
    result = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", NEXT_DAY, "--dataset", dataset,
                    "--api", api, "--max-dte", "7", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    assert f"(simulated terminal, API {api})" in result.stderr
    files = sorted((isolated / "sim-data").rglob("*.parquet"))
    assert files
    metadata = pq.read_metadata(files[0]).metadata
    assert (metadata[b"api"], metadata[b"dataset"]) == (api.encode(), dataset.encode())


def test_simulate_follows_the_api_of_the_environment(invoke, isolated):
    result = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", NEXT_DAY, "--max-dte", "3",
                    "--workers", "1", env={"SPXDL_TERMINAL_API": "v2"})
    assert result.exit_code == 0 and "(simulated terminal, API v2)" in result.stderr


def test_v2_quotes_below_one_minute_are_refused_before_any_download(invoke, isolated):
    result = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", NEXT_DAY, "--dataset", "quote",
                    "--interval", "30s", "--api", "v2")
    assert result.exit_code == cli.EXIT_USAGE
    assert "does not serve quote at intervals under 1m" in one_error_line(result)
    assert not list((isolated / "sim-data").rglob("*.parquet"))


def test_an_archive_of_schema_version_1_is_named_by_verify_kept_by_repair_and_upgraded(invoke, archive, sim):
    from spxdl.ledger import Ledger

    old = sorted(archive.rglob("*.parquet"))[0]
    table = pq.read_table(old)
    metadata = {**table.schema.metadata, b"schema_version": b"1"}
    pq.write_table(table.drop_columns(["underlying_timestamp"]).replace_schema_metadata(metadata), old)
    Ledger(archive).rebuild()  # as an older spxdl would have recorded it
    shape = archive / "greeks-1m" / "_archive.json"
    shape.write_text(json.dumps({**json.loads(shape.read_text()), "schema_version": 1}))

    verified = invoke("verify", "--data-dir", str(archive))
    assert verified.exit_code == 0, verified.output
    assert f"OLDER      {old}: schema version 1" in verified.output
    repaired = invoke("verify", "--data-dir", str(archive), "--repair")
    assert old.exists() and "moved 0 bad file(s)" in repaired.output

    upgraded = invoke("run", "--date", "2024-03-13", "--terminal-url", sim.url, "--data-dir", str(archive),
                      "--max-dte", "3", "--workers", "1")
    assert upgraded.exit_code == 0 and "holds files of schema version 1" in upgraded.stderr
    assert json.loads(shape.read_text())["schema_version"] == 2
    assert pq.read_metadata(old).metadata[b"schema_version"] == b"1"  # kept as it is until --force
    again = printed_command(verified.output, "to download them again with today's columns: ")
    assert again[:2] == ["run", "--force"] and again[-1] == "--simulate"
    assert invoke(*again).exit_code == 0
    assert pq.read_metadata(old).metadata[b"schema_version"] == b"2"


# ------------------------------------------------------------------ the demo's archive is judged by its own window


@pytest.fixture(scope="module", name="made_demo")
def fixture_made_demo(tmp_path_factory):
    """What `spxdl run --simulate --sim-profile tiny` makes in ./sim-data (the last three sessions), once per module."""
    home = tmp_path_factory.mktemp("demo-home")
    cli_once(home, "run", "--simulate", "--sim-profile", "tiny")
    return home / "sim-data"


@pytest.fixture(name="demo")
def fixture_demo(made_demo, isolated):
    """This test's own copy of the demo in ./sim-data."""
    return copy_into(made_demo, isolated / "sim-data")


def test_the_demo_records_its_profile_and_window_with_the_archive(demo):
    shape = json.loads((demo / "greeks-1m" / "_archive.json").read_text())
    assert shape["source"] == "simulator" and shape["sim_profile"] == "tiny" and shape["sim_seed"] == 0
    assert shape["window"] == [0, 7]


def test_every_day_of_the_tiny_demo_has_rows(invoke, demo):
    report = json.loads(invoke("status", "--json", "--data-dir", str(demo)).stdout)
    assert len(report["tasks"]) == 3
    assert all(task["expirations"].get("complete", 0) >= 1 and task["rows"] > 0 for task in report["tasks"])


def test_gaps_backfill_and_update_judge_the_demo_by_its_own_window(invoke, demo):
    gaps = invoke("gaps", "--data-dir", "sim-data")
    assert gaps.exit_code == 0, gaps.output + gaps.stderr
    assert "0 gap(s)" in gaps.stderr
    first = json.loads(invoke("status", "--json", "--data-dir", "sim-data").stdout)["tasks"][0]["trade_date"]
    backfill = invoke("backfill", "--simulate", "--from", first, "--dry-run")
    assert "tasks to download: 0" in backfill.output and "already complete:  3" in backfill.output
    assert "DTE 0..7" in backfill.output
    update = invoke("update", "--simulate", "--dry-run")
    assert "DTE 0..7" in update.output and "already complete:  3" in update.output
    shown = json.loads(invoke("config", "show", "--json", "--data-dir", "sim-data").stdout)
    assert shown["download.max_dte"] == {"value": "7", "source": "archive sim-data"}
    wider = invoke("gaps", "--data-dir", "sim-data", "--max-dte", "9")  # a window asked for still decides
    assert wider.exit_code == 1 and "narrower DTE window" in wider.output


def test_another_profile_into_the_demo_is_refused_and_no_profile_keeps_its_own(invoke, demo):
    day = json.loads(invoke("status", "--json", "--data-dir", "sim-data").stdout)["tasks"][0]["trade_date"]
    other = invoke("run", "--simulate", "--sim-profile", "realistic", "--date", day, "--force")
    assert other.exit_code == 2
    assert "sim_profile: 'tiny' in the archive, 'realistic' asked" in one_error_line(other)
    same = invoke("run", "--simulate", "--date", day, "--force")
    assert same.exit_code == 0, same.stderr
    assert "(tiny profile)" in same.stderr


# ------------------------------------------------------------------ every suggested command runs as printed


def printed_command(text: str, after: str) -> list[str]:
    """The command printed after ``after`` (up to the end of its line or a comma), as argv without `spxdl`."""
    command = text.split(after, 1)[1].splitlines()[0].split(", then ")[0].strip()
    words = shlex.split(command)
    assert words[0] == "spxdl", command
    return words[1:]


def test_gaps_suggests_a_backfill_with_the_flags_it_was_given(invoke, sim, archive, isolated):
    (isolated / "my.ini").write_text("[engine]\nworkers = 1\n")
    asked = ("--data-dir", str(archive), "--max-dte", "5", "--terminal-url", sim.url)
    gaps = invoke("--config", "my.ini", "gaps", "--start", DAY, "--end", NEXT_DAY, *asked)
    assert gaps.exit_code == 1 and "narrower DTE window" in gaps.output
    backfill = printed_command(gaps.stderr, "fill them with: ")
    assert backfill[:6] == ["--config", "my.ini", "backfill", "--from", DAY, "--to"] and "--simulate" not in backfill
    filled = invoke(*backfill)
    assert filled.exit_code == 0, filled.stderr
    assert invoke("gaps", "--start", DAY, "--end", NEXT_DAY, *asked).exit_code == 0


def test_gaps_of_the_demo_suggests_a_simulated_backfill(invoke, demo):
    gaps = invoke("gaps", "--data-dir", "sim-data", "--max-dte", "9")
    assert gaps.exit_code == 1
    backfill = printed_command(gaps.stderr, "fill them with: ")
    assert "--simulate" in backfill and "--max-dte" in backfill
    assert invoke(*backfill).exit_code == 0
    assert invoke("gaps", "--data-dir", "sim-data", "--max-dte", "9").exit_code == 0


def test_verify_suggests_a_repair_and_a_resume_that_run_as_printed(invoke, archive):
    lost = sorted(archive.rglob("*.parquet"))[0]
    lost.unlink()
    verified = invoke("verify", "--data-dir", str(archive))
    assert verified.exit_code == 1
    repair = printed_command(verified.stderr, "fix with: ")
    resume = printed_command(verified.stderr, ", then ")
    assert repair == ["verify", "--repair", "--data-dir", str(archive)]
    assert resume == ["resume", "--data-dir", str(archive), "--simulate"]  # the archive was made from the simulator
    repaired = invoke(*repair)
    assert printed_command(repaired.output, "refetch with: ") == resume
    assert invoke(*resume).exit_code == 0
    assert lost.exists() and invoke("verify", "--data-dir", str(archive)).exit_code == 0


def test_resume_of_an_empty_data_dir_says_so_and_suggests_a_download(invoke, isolated):
    (isolated / "empty").mkdir()
    result = invoke("resume", "--data-dir", "empty", "--simulate", "--sim-profile", "tiny")
    assert result.exit_code == 0
    assert "Nothing to resume: empty holds no task yet" in result.stderr and "every task" not in result.stderr
    assert not list((isolated / "empty").iterdir())  # nothing written
    run = printed_command(result.stderr, "download first with: ")
    assert run == ["run", "--data-dir", "empty", "--simulate", "--sim-profile", "tiny"]
    assert invoke(*run).exit_code == 0


def test_a_relative_data_dir_is_named_where_it_lands(invoke, isolated):
    relative = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", NEXT_DAY, "--data-dir", "rel")
    assert relative.exit_code == 0, relative.stderr
    landed = isolated / "rel"
    assert f"the data dir rel is relative: this run writes to {landed}" in relative.stderr  # no terminal: cron, systemd
    assert f"spxdl: {NEXT_DAY} .. {NEXT_DAY} into {landed} (simulated terminal" in relative.stderr
    absolute = invoke("run", "--simulate", "--sim-profile", "tiny", "--date", NEXT_DAY, "--data-dir", str(isolated / "abs"))
    assert absolute.exit_code == 0 and "is relative" not in absolute.stderr
    shown = invoke("config", "show")
    assert f"data (= {isolated / 'data'})" in shown.output
    health = invoke("health", "--simulate", "--sim-profile", "tiny", "--data-dir", "rel")
    assert f"rel (= {landed}) is writable" in health.output


def test_a_hand_edited_window_in_the_archive_is_ignored_not_a_traceback(invoke, demo):
    shape_path = demo / "greeks-1m" / "_archive.json"
    shape_path.write_text(json.dumps({**json.loads(shape_path.read_text()), "window": ["0", 7]}))
    gaps = invoke("gaps", "--data-dir", "sim-data")
    assert "Traceback" not in gaps.stderr and gaps.exit_code == 1  # judged by the configured window (0..60)
