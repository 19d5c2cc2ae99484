"""[notify] command end to end: real downloads from the simulator, a real shell command reading the JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from spxdl.simulator import Faults, Quirks, Simulator

DAY, NEXT_DAY = "2024-03-14", "2024-03-15"


def config_with(directory: Path, command: str) -> Path:
    """A config in ``fail`` mode (a crossed quote fails its expiration) with ``command`` as the notify command."""
    path = directory / "spxdl.ini"
    path.write_text(f"[validation]\nmode = fail\n\n[notify]\ncommand = {command}\ntimeout = 30\n")
    return path


def told(directory: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(directory.glob("told-*.json"))]


def test_a_failed_run_and_the_first_success_after_it_are_told_with_the_runs_summary(invoke, isolated):
    inbox = isolated / "inbox"
    inbox.mkdir()
    config = config_with(isolated, f'n=$(ls {inbox} | wc -l); cat > {inbox}/told-$n.json')
    data = isolated / "data"
    flags = ("--date", DAY, "--data-dir", str(data), "--max-dte", "3", "--workers", "1")
    with Simulator(profile="tiny", quirks=Quirks(crossed_every=100)) as bad:
        failing = invoke("--config", str(config), "run", "--terminal-url", bad.url, *flags)
    assert failing.exit_code == 1, failing.stderr
    (failure,) = told(inbox)
    assert (failure["event"], failure["command"], failure["exit_code"]) == ("failure", "run", 1)
    assert failure["tasks"] == {"failed": 1} and failure["start"] == failure["end"] == DAY
    (task,) = failure["failed_tasks"]
    assert task["task"] == f"greeks-1m/SPXW/{DAY}" and task["state"] == "failed"
    assert "checks failed (crossed_quote=" in task["expirations"][0]["error"]
    assert failure["checks"]["crossed_quote"] > 0 and failure["data_dir"] == str(data)
    assert "FAILED (exit 1): 1 failed" in failure["subject"]

    with Simulator(profile="tiny") as good:
        recovered = invoke("--config", str(config), "run", "--terminal-url", good.url, *flags)
        assert recovered.exit_code == 0, recovered.stderr
        assert [event["event"] for event in told(inbox)] == ["failure", "recovered"]
        assert told(inbox)[1]["tasks"] == {"success": 1} and told(inbox)[1]["exit_code"] == 0
        again = invoke("--config", str(config), "run", "--terminal-url", good.url, "--start", DAY, "--end", NEXT_DAY,
                       *flags[2:])
    assert again.exit_code == 0 and len(told(inbox)) == 2  # a success after a success tells nothing


def test_a_notify_command_that_fails_never_changes_the_runs_outcome(invoke, isolated, sim):
    config = config_with(isolated, "echo the mail server is down >&2; exit 7")
    data = isolated / "data"
    with Simulator(profile="tiny", quirks=Quirks(crossed_every=100)) as bad:
        result = invoke("--config", str(config), "run", "--terminal-url", bad.url, "--date", DAY, "--data-dir",
                        str(data), "--max-dte", "3")
    assert result.exit_code == 1 and "Traceback" not in result.stderr  # the run's own code
    assert "the notify command exited 7" in result.stderr and "the mail server is down" in result.stderr
    log = (data / "logs" / "spxdl.log").read_text()
    assert "the notify command exited 7" in log
    ok = invoke("--config", str(config), "run", "--terminal-url", sim.url, "--date", DAY, "--data-dir", str(data),
                "--max-dte", "3")
    assert ok.exit_code == 0, ok.stderr  # the recovery's notify fails too: still exit 0
    assert "the notify command exited 7" in ok.stderr


def test_an_unreachable_terminal_is_a_failure_but_a_dry_run_or_usage_error_tells_nothing(invoke, isolated):
    inbox = isolated / "inbox"
    inbox.mkdir()
    config = config_with(isolated, f'n=$(ls {inbox} | wc -l); cat > {inbox}/told-$n.json')
    data = isolated / "data"
    down = invoke("--config", str(config), "update", "--data-dir", str(data), "--terminal-url", "http://127.0.0.1:9")
    assert down.exit_code == 75
    (failure,) = told(inbox)
    assert failure["command"] == "update" and failure["exit_code"] == 75 and failure["tasks"] == {}
    assert "no ThetaData Terminal answered" in failure["error"]
    with Simulator(profile="tiny") as good:  # neither says the failure is over
        assert invoke("--config", str(config), "run", "--date", "2024-02-30", "--data-dir", str(data)).exit_code == 2
        dry = invoke("--config", str(config), "run", "--date", DAY, "--data-dir", str(data), "--dry-run",
                     "--terminal-url", good.url)
        assert dry.exit_code == 0, dry.stderr
    assert len(told(inbox)) == 1


def test_only_tasks_left_to_another_live_run_are_neither_failure_nor_success():
    from spxdl.cli.notifying import run_failed
    from spxdl.engine.records import RunSummary
    from spxdl.errors import TerminalGone

    assert run_failed(0, [RunSummary()], None) is False
    assert run_failed(75, [RunSummary(held_at_plan=2)], None) is None
    assert run_failed(75, [RunSummary(stopped_by=TerminalGone("gone for 120 s"))], None) is True
    assert run_failed(75, [], "no ThetaData Terminal answered") is True
    assert run_failed(143, [RunSummary(interrupted=15)], None) is True
    assert run_failed(1, [RunSummary()], None) is True


def test_an_interrupted_run_is_told_with_the_signal_that_stopped_it(isolated):
    inbox = isolated / "inbox"
    inbox.mkdir()
    config = config_with(isolated, f"cat > {inbox}/told-0.json")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SPXDL_")}
    with Simulator(profile="tiny", faults=Faults(latency=0.5)) as slow:
        run = subprocess.Popen([sys.executable, "-m", "spxdl", "--config", str(config), "run", "--start", DAY, "--end",
                                NEXT_DAY, "--max-dte", "21", "--workers", "1", "--threads", "1", "--terminal-url",
                                slow.url, "--data-dir", "data"], cwd=isolated, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list((isolated / "data").glob("greeks-1m/*/*/_day.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    (interrupted,) = told(inbox)
    assert interrupted["event"] == "failure" and interrupted["exit_code"] == 130
    assert interrupted["interrupted_by"] == "SIGINT" and "SIGINT" in interrupted["subject"]
