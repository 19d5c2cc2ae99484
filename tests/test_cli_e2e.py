"""End to end: the installed `spxdl` and the bin/ wrappers as separate processes, the simulator in another."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from once import cli_once, copy_into
from pty_run import run_on_a_pty

REPO = Path(__file__).resolve().parent.parent
SPXDL = [sys.executable, "-m", "spxdl"]
DAY = "2024-03-14"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with no spxdl configuration."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    env.update(HOME=str(home), **extra)
    return env


def spxdl(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*SPXDL, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(name="sim_process")
def fixture_sim_process(tmp_path):
    """`spxdl sim --profile tiny --port 0` in its own process; yields (process, url)."""
    process = subprocess.Popen(
        [*SPXDL, "sim", "--profile", "tiny", "--port", "0"],
        cwd=tmp_path, env=clean_env(tmp_path), stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    url = None
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        url = match.group(1) if match else None
    assert url, "the simulator did not announce its URL"
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module", name="made_day")
def fixture_made_day(sim, tmp_path_factory):
    """The day (DTE 0..3) downloaded once per module, for tests whose point comes after the download."""
    home = tmp_path_factory.mktemp("day-home")
    cli_once(home, "run", "--date", DAY, "--terminal-url", sim.url, "--data-dir", str(home / "data"), "--max-dte", "3")
    return home / "data"


def test_run_status_verify_gaps_as_separate_processes(sim_process, tmp_path):
    _, url = sim_process
    scratch = tmp_path / "tmp"  # the run's temp dir: multiprocessing's (the fork server's socket) is gone at exit
    scratch.mkdir()
    env = clean_env(tmp_path, TMPDIR=str(scratch))
    data = tmp_path / "data"
    run = spxdl("run", "--date", DAY, "--terminal-url", url, "--data-dir", str(data), "--max-dte", "3", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "1 success" in run.stderr and list(scratch.iterdir()) == []
    assert "Traceback" not in run.stderr
    files = list(data.rglob("*.parquet"))
    assert files and (data / "logs" / "spxdl.log").stat().st_size > 0
    assert "kind,key,state" in (data / "logs" / "metrics.csv").read_text().splitlines()[0]

    status = spxdl("status", "--json", "--data-dir", str(data), cwd=tmp_path, env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["totals"]["states"] == {"success": 1}
    assert spxdl("verify", "--data-dir", str(data), cwd=tmp_path, env=env).returncode == 0
    gaps = spxdl("gaps", "--start", DAY, "--end", DAY, "--max-dte", "3", "--data-dir", str(data), cwd=tmp_path, env=env)
    assert gaps.returncode == 0, gaps.stdout + gaps.stderr


# Whether a run downloads, finds nothing to do, or is refused, nothing it started (the fork server
# its workers came from, the resource tracker) outlives the moment spxdl exits.
OUTLIVES = {
    "downloads": ("--date", DAY, "--max-dte", "3"),
    "nothing to do": ("--date", DAY, "--max-dte", "3"),  # the same, once more
    "usage error": ("--date", "2024-03-16", "--max-dte", "3"),  # a Saturday: exit 2
}


@pytest.mark.parametrize("case", sorted(OUTLIVES))
def test_no_process_of_a_run_outlives_it(case, sim_process, tmp_path):
    # nothing is left running once the command has returned, and the workers' CPU counts as
    # spxdl's children's
    from engine_helpers import session_pids

    _, url = sim_process
    (tmp_path / "tmp").mkdir()
    env = clean_env(tmp_path, TMPDIR=str(tmp_path / "tmp"))
    command = [*SPXDL, "run", *OUTLIVES[case], "--terminal-url", url, "--data-dir", str(tmp_path / "data")]
    if case == "nothing to do":
        assert spxdl(*command[len(SPXDL):], cwd=tmp_path, env=env).returncode == 0
    run = subprocess.Popen(command, cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    assert run.wait(timeout=120) == (2 if case == "usage error" else 0)
    assert session_pids(run.pid) == []
    assert list((tmp_path / "tmp").iterdir()) == []  # no pymp-* dir (the fork server's socket) left


# A run with nothing to do: which of the heavy modules it loaded (it needs none of them).
NOTHING_TO_DO_PROBE = """
import sys
from spxdl.cli import cli
cli(sys.argv[1:], prog_name="spxdl", standalone_mode=False)
heavy = ("requests", "urllib3", "pyarrow", "pyarrow.parquet", "pyarrow.csv", "pyarrow.compute", "concurrent.futures.process")
print("loaded:" + ",".join(name for name in heavy if name in sys.modules))
"""


def test_a_run_with_nothing_to_do_loads_neither_http_nor_parquet(sim, made_day, tmp_path):
    env = clean_env(tmp_path)
    copy_into(made_day, tmp_path / "data")
    args = ["run", "--date", DAY, "--terminal-url", sim.url, "--data-dir", str(tmp_path / "data"), "--max-dte", "3"]
    again = subprocess.run([sys.executable, "-c", NOTHING_TO_DO_PROBE, *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert "Nothing to do" in again.stderr, again.stderr
    assert again.stdout.strip() == "loaded:", again.stdout  # what a nightly run with nothing to do pays for


def test_sim_stops_on_sigterm_and_prints_its_counters(sim_process):
    process, url = sim_process
    import urllib.request

    with urllib.request.urlopen(f"{url}/v3/terminal/mdds/status", timeout=10) as answer:
        assert answer.read() == b"CONNECTED"
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "/v3/terminal/mdds/status  200: 1" in rest
    assert "completed responses: 1" in rest


def test_log_json_writes_json_lines(sim_process, tmp_path):
    _, url = sim_process
    data = tmp_path / "data"
    result = spxdl("--log-json", "run", "--date", DAY, "--terminal-url", url, "--data-dir", str(data), "--max-dte", "1",
                   cwd=tmp_path, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = (data / "logs" / "spxdl.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any("success" in entry["message"] for entry in entries)


def test_update_wrapper_passes_the_exit_code_through_and_logs(tmp_path):
    from socket import socket

    with socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env_file = tmp_path / "spxdl.env"
    env_file.write_text(f"SPXDL_TERMINAL_URL=http://127.0.0.1:{port}\nSPXDL_TERMINAL_RETRIES=0\n")
    log_file = tmp_path / "wrapper.log"
    env = clean_env(tmp_path, SPXDL_ENV_FILE=str(env_file), SPXDL_WRAPPER_LOG=str(log_file),
                    SPXDL_BIN=str(Path(sys.executable).with_name("spxdl")), SPXDL_STORAGE_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run([str(REPO / "bin" / "spxdl-update")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 75, result.stdout + result.stderr
    logged = log_file.read_text()
    assert "start spxdl update" in logged and "end spxdl update: exit 75" in logged
    assert "--simulate" in logged


def test_sigterm_to_the_logging_wrapper_stops_spxdl_cleanly_and_passes_143_through(tmp_path):
    """What systemd does under KillMode=mixed: SIGTERM to the unit's main process, the wrapper, only."""
    from engine_helpers import claims, session_pids, temp_files, wait_until

    from spxdl.simulator import Faults, Simulator

    data, log_file, scratch = tmp_path / "data", tmp_path / "logs" / "wrapper.log", tmp_path / "tmp"
    scratch.mkdir()
    with Simulator(profile="tiny", faults=Faults(latency=0.5)) as sim:
        env = clean_env(tmp_path, SPXDL_ENV_FILE=str(tmp_path / "none"), SPXDL_WRAPPER_LOG=str(log_file),
                        SPXDL_BIN=str(Path(sys.executable).with_name("spxdl")), SPXDL_TERMINAL_URL=sim.url,
                        SPXDL_STORAGE_DATA_DIR=str(data), SPXDL_DOWNLOAD_MAX_DTE="15", TMPDIR=str(scratch))
        wrapper = subprocess.Popen([str(REPO / "bin" / "spxdl-update")], cwd=tmp_path, env=env, start_new_session=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert wait_until(lambda: claims(data) or wrapper.poll() is not None, 60), log_file.read_text()
            wrapper.send_signal(signal.SIGTERM)
            assert wrapper.wait(timeout=30) == 143, log_file.read_text()
            shown = wrapper.stdout.read()
            assert wait_until(lambda: not session_pids(wrapper.pid), 20), session_pids(wrapper.pid)  # no orphan
        finally:
            for pid in session_pids(wrapper.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    logged = log_file.read_text()
    assert "got SIGTERM: stopping" in logged and "interrupted by SIGTERM" in logged
    assert logged.rstrip().endswith("end spxdl update: exit 143")
    assert "interrupted by SIGTERM" in shown  # the wrapper's own output (the journal) got it too
    assert temp_files(data) == [] and claims(data) == [] and list(scratch.iterdir()) == []


def test_ctrl_c_at_a_terminal_reaches_spxdl_under_the_logging_wrapper_once(tmp_path):
    """A Ctrl-C typed at the wrapper's controlling terminal: spxdl stops cleanly (one SIGINT: a second would
    make it leave at once, without its summary)."""
    import fcntl
    import pty
    import termios

    from engine_helpers import claims, session_pids, temp_files, wait_until

    from spxdl.simulator import Faults, Simulator

    data, log_file = tmp_path / "data", tmp_path / "wrapper.log"

    def take_the_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    leader, follower = pty.openpty()
    with Simulator(profile="tiny", faults=Faults(latency=0.5)) as sim:
        env = clean_env(tmp_path, SPXDL_ENV_FILE=str(tmp_path / "none"), SPXDL_WRAPPER_LOG=str(log_file),
                        SPXDL_BIN=str(Path(sys.executable).with_name("spxdl")), SPXDL_TERMINAL_URL=sim.url,
                        SPXDL_STORAGE_DATA_DIR=str(data), SPXDL_DOWNLOAD_MAX_DTE="15",
                        SPXDL_TERMINAL_MAX_IN_FLIGHT="1")  # one request at a time: Ctrl-C lands mid-run
        wrapper = subprocess.Popen([str(REPO / "bin" / "spxdl-update")], cwd=tmp_path, env=env, stdin=follower,
                                   stdout=follower, stderr=follower, preexec_fn=take_the_terminal)
        os.close(follower)
        try:
            assert wait_until(lambda: claims(data) or wrapper.poll() is not None, 60)
            os.write(leader, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground process group
            assert wrapper.wait(timeout=30) == 130, log_file.read_text()
            assert wait_until(lambda: not session_pids(wrapper.pid), 20)
        finally:
            for pid in session_pids(wrapper.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.close(leader)
    logged = log_file.read_text()
    assert logged.count("got SIGINT") == 1 and "interrupted by SIGINT" in logged, logged
    assert logged.rstrip().endswith("end spxdl update: exit 130")
    assert temp_files(data) == [] and claims(data) == []


def test_backfill_wrapper_without_a_start_date_exits_2(tmp_path):
    env = clean_env(tmp_path, SPXDL_ENV_FILE=str(tmp_path / "none"), SPXDL_BIN=str(Path(sys.executable).with_name("spxdl")))
    result = subprocess.run([str(REPO / "bin" / "spxdl-backfill")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "start_date" in result.stderr


def test_python_dash_m_reports_the_version(tmp_path):
    result = spxdl("--version", cwd=tmp_path, env=clean_env(tmp_path))
    assert result.returncode == 0 and "spxdl" in result.stdout


def test_the_main_module_a_worker_imports_again_loads_no_command_line(tmp_path):
    # every spawned worker runs its parent's main module again: `spxdl` and `python -m spxdl` alike
    probe = "import sys, spxdl.__main__; print(sorted(m for m in ('click', 'spxdl.cli') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    console_script = Path(sys.executable).with_name("spxdl")
    assert "from spxdl.__main__ import main" in console_script.read_text()


# ------------------------------------------------------------------ at a terminal (a real pseudo-terminal)


def run_at_a_terminal(args: list[str], cwd: Path, env: dict[str, str], answer: bytes, timeout: float = 60) -> tuple[int, str]:
    """``spxdl ARGS`` on a pseudo-terminal; ``answer`` is typed once a question ends in ``]: ``."""
    return run_on_a_pty([*SPXDL, *args], cwd, env, answer=answer, timeout=timeout)


LONG_RANGE = ["run", "--start", "2024-01-02", "--end", "2024-03-28", "--terminal-url", "http://127.0.0.1:9",
              "--data-dir", "data"]


def test_a_long_range_asks_first_at_a_terminal_and_no_downloads_nothing(tmp_path):
    code, shown = run_at_a_terminal(LONG_RANGE, tmp_path, clean_env(tmp_path), b"n\n")
    assert "trading days" in shown and "Download them?" in shown
    assert code == 0 and "nothing downloaded" in shown
    assert not list((tmp_path / "data").rglob("*.parquet"))


def test_the_long_range_question_names_the_size_and_defaults_to_no(tmp_path):
    code, shown = run_at_a_terminal(LONG_RANGE, tmp_path, clean_env(tmp_path), b"\n")  # just Enter
    assert re.search(r"61 trading days: 61 task\(s\), about [\d,]+ requests, [\d,]+ rows and [\d.]+ [KMG]B on disk", shown), shown
    assert "[y/N]" in shown
    assert code == 0 and "nothing downloaded" in shown
    assert not (tmp_path / "data").exists()


def test_yes_skips_the_question_even_at_a_terminal(tmp_path):
    code, shown = run_at_a_terminal([*LONG_RANGE, "--yes"], tmp_path, clean_env(tmp_path), b"n\n")
    assert "Download them?" not in shown
    assert code == 75 and ("unreachable" in shown or "refused" in shown)  # it went on to the (absent) terminal


def test_version_prints_the_version(tmp_path):
    from spxdl import __version__

    result = spxdl("--version", cwd=tmp_path, env=clean_env(tmp_path))
    assert result.returncode == 0 and __version__ in result.stdout


# ------------------------------------------------------------------ the reader of the output goes away


def spxdl_into_a_closed_pipe(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """``spxdl ARGS`` whose stdout is a pipe nobody reads any more (``| head -1`` after its line)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([*SPXDL, *args], cwd=cwd, env=env, stdout=write_end, stderr=subprocess.PIPE,
                                text=True, timeout=60)
    finally:
        os.close(write_end)
    return result.returncode, result.stderr


def test_a_reader_that_goes_away_is_no_error(made_day, tmp_path):
    env = clean_env(tmp_path)
    data = copy_into(made_day, tmp_path / "data")
    for command in (["status"], ["config", "show"], ["status", "--json"], ["gaps"]):
        code, stderr = spxdl_into_a_closed_pipe(*command, "--data-dir", str(data), cwd=tmp_path, env=env)
        assert (stderr, code) == ("", 141), command  # what a shell reports for any program whose reader went away


def test_a_download_whose_console_went_away_still_ends_with_the_runs_own_code(sim_process, tmp_path):
    _, url = sim_process
    data = tmp_path / "data"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([*SPXDL, "run", "--date", DAY, "--terminal-url", url, "--data-dir", str(data), "--max-dte", "1"],
                                cwd=tmp_path, env=clean_env(tmp_path), stdout=subprocess.DEVNULL, stderr=write_end, timeout=120)
    finally:
        os.close(write_end)
    assert result.returncode == 0  # the download is complete; only its summary had nowhere to go
    assert list(data.rglob("*.parquet")) and "success" in (data / "logs" / "spxdl.log").read_text()


def test_the_simulators_suggested_run_runs_as_printed(tmp_path):
    env = clean_env(tmp_path)
    server = subprocess.Popen([*SPXDL, "sim", "--profile", "tiny", "--port", "0"], cwd=tmp_path, env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = [server.stderr.readline() for _ in range(2)]
        suggested = lines[1].split("try: ", 1)[1].split()
        assert suggested[:2] == ["spxdl", "run"] and "sim-data-tiny-0" in suggested  # not the demo's realistic sim-data
        ran = spxdl(*suggested[1:], cwd=tmp_path, env=env)
        assert ran.returncode == 0, ran.stderr
    finally:
        server.kill()
        server.wait(timeout=10)
