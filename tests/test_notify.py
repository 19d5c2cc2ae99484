"""The notify command: when it is due, what it reads on stdin, and that its own failure never fails anything."""

from __future__ import annotations

import json
import logging
import time
from datetime import date

import pytest

from spxdl import notify
from spxdl.config import Settings
from spxdl.engine.records import RunSummary, TaskResult
from spxdl.ledger import Ledger, Task
from spxdl.ledger.outcome import last_run_failed

TASK = Task("greeks-1m", "SPXW", date(2024, 3, 14))


@pytest.mark.parametrize("failed, before, event", [
    (True, None, "failure"), (True, True, "failure"), (True, False, "failure"),
    (False, True, "recovered"), (False, False, None), (False, None, None),
    (None, True, None), (None, None, None),
])
def test_a_failure_is_always_told_and_a_success_only_right_after_one(failed, before, event):
    assert notify.is_due(failed, before) == event


def summary() -> RunSummary:
    return RunSummary(results=[
        TaskResult(TASK, "partial", rows=10, checks={"crossed_quote": 2, "negative_quote": 0},
                   error="1 expiration(s) failed", failures=((date(2024, 3, 15), "HTTP 570"),)),
        TaskResult(Task("greeks-1m", "SPXW", date(2024, 3, 15)), "success", rows=5, checks={"crossed_quote": 1}),
    ], seconds=2.0)


def test_the_payload_names_exit_code_tasks_failures_and_checks(tmp_path):
    payload = notify.summary_payload(command="update", exit_code=1, event="failure", settings=Settings(data_dir=tmp_path),
                                     summaries=[summary(), summary()], span=(date(2024, 3, 14), date(2024, 3, 15)))
    assert (payload["event"], payload["command"], payload["exit_code"]) == ("failure", "update", 1)
    assert payload["tasks"] == {"partial": 2, "success": 2} and payload["checks"] == {"crossed_quote": 6}
    assert payload["failed_tasks"][0] == {"task": TASK.key, "state": "partial", "error": "1 expiration(s) failed",
                                          "expirations": [{"expiration": "2024-03-15", "error": "HTTP 570"}]}
    assert (payload["start"], payload["end"], payload["rows"]) == ("2024-03-14", "2024-03-15", 30)
    assert payload["subject"].startswith("spxdl update on ") and "FAILED (exit 1): 2 partial, 2 success" in payload["subject"]
    json.dumps(payload)  # plain JSON values only


def test_the_command_reads_the_json_on_stdin_and_the_subject_in_its_environment(tmp_path):
    out = tmp_path / "got.json"
    command = f'cat > {out}; printf "%s" "$SPXDL_NOTIFY_SUBJECT" > {tmp_path / "subject"}'
    assert notify.run_command(command, {"event": "failure", "subject": "one line", "n": 3}, timeout=30)
    assert json.loads(out.read_text()) == {"event": "failure", "subject": "one line", "n": 3}
    assert (tmp_path / "subject").read_text() == "one line"


def test_a_failing_or_missing_command_is_logged_not_raised(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="spxdl"):
        assert not notify.run_command("echo broken mail >&2; exit 3", {"event": "failure"}, timeout=30)
        assert not notify.run_command(str(tmp_path / "no-such-program"), {"event": "failure"}, timeout=30)
    assert "the notify command exited 3" in caplog.text and "broken mail" in caplog.text
    assert "exited 127" in caplog.text


def test_a_command_that_hangs_is_killed_with_what_it_started(tmp_path, caplog):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="spxdl"):
        assert not notify.run_command(f"sleep 30 & echo $! > {tmp_path / 'pid'}; wait", {}, timeout=1)
    assert time.monotonic() - started < 20
    assert "took longer than 1 s and was killed" in caplog.text
    child = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)  # the shell's own child went with it


def _alive(pid: int) -> bool:
    from spxdl.procs import pid_alive

    return pid_alive(pid)


def test_report_outcome_remembers_failures_in_the_ledger_and_tells_when_due(tmp_path):
    out = tmp_path / "told"
    settings = Settings(data_dir=tmp_path / "data", notify_command=f"cat >> {out}; echo >> {out}")
    (tmp_path / "data").mkdir()

    def report(failed):
        return notify.report_outcome(settings, command="update", failed=failed, exit_code=0 if failed is False else 1,
                                     payload_for=lambda event: {"event": event})

    assert report(False) is None and not out.exists()  # a first success: nothing to tell
    assert report(True) == "failure" and last_run_failed(Ledger(settings.data_dir)) is True
    assert report(None) is None  # held tasks only: the failure is still remembered
    assert report(False) == "recovered" and report(False) is None
    assert [json.loads(line)["event"] for line in out.read_text().split("\n\n") if line.strip()] == ["failure", "recovered"]


def test_a_data_dir_that_cannot_be_written_still_gets_the_failure_told(tmp_path, caplog):
    out = tmp_path / "told"
    (tmp_path / "a-file").write_text("not a directory")
    settings = Settings(data_dir=tmp_path / "a-file" / "data", notify_command=f"cat > {out}")
    with caplog.at_level(logging.WARNING, logger="spxdl"):
        event = notify.report_outcome(settings, command="run", failed=True, exit_code=75,
                                      payload_for=lambda event: {"event": event})
    assert event == "failure" and json.loads(out.read_text()) == {"event": "failure"}
    assert "could not record how this run ended" in caplog.text
