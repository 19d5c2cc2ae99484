"""The progress display: counts and ETA from events, a line never wider than the terminal, redraws that do not
stack, plain log lines when not a terminal; and a real run drawn on a real pseudo-terminal 80 columns wide."""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import date
from pathlib import Path

import pytest

from pty_run import run_on_a_pty
from spxdl import cli, logs
from spxdl.cli.progress import CLEAR_LINE, MAX_BAR, Progress
from spxdl.engine import Event
from spxdl.ledger import Task
from spxdl.simulator import Faults, Simulator

TASK = Task("greeks-1m", "SPXW", date(2024, 3, 14))
OTHER = Task("greeks-1m", "SPXW", date(2024, 3, 15))
EXPIRATIONS = [date(2024, 3, 15), date(2024, 3, 18), date(2024, 3, 19), date(2024, 3, 20)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def display(total_tasks: int = 1, *, expirations: int = 4, rows_per_expiration: int = 1000, width: int = 80,
            unicode: bool = True) -> tuple[Progress, Clock]:
    clock = Clock()
    progress = Progress(total_tasks, live=False, expirations=expirations, rows_per_expiration=rows_per_expiration,
                        width=lambda: width, clock=clock, unicode=unicode)
    return progress, clock


def done(task: Task, expiration: date, rows: int = 1000, count: int = 20_000) -> Event:
    return Event("expiration_done", task, expiration=expiration, state="complete", rows=rows, bytes=count)


# ------------------------------------------------------------------ what it counts


def test_a_one_day_run_has_an_eta_from_its_expirations_long_before_it_ends():
    progress, clock = display()
    progress.on_event(Event("task_started", TASK))
    progress.on_event(Event("expirations_listed", TASK, total=4))
    clock.now += 10
    progress.on_event(done(TASK, EXPIRATIONS[0]))
    progress.on_event(done(TASK, EXPIRATIONS[1]))
    assert progress.share_done() == 0.5
    line = progress.line(80)
    assert "ETA 0:10" in line and " 50%" in line  # half done in 10 s: 10 s to go (whole tasks would say --:--)


def test_rows_still_arriving_move_the_share_and_the_rows():
    progress, clock = display()
    progress.on_event(Event("expirations_listed", TASK, total=4))
    progress.on_event(done(TASK, EXPIRATIONS[0], rows=1000))
    progress.on_event(Event("expiration_progress", TASK, expiration=EXPIRATIONS[1], rows=500))
    assert progress.share_done() == pytest.approx(1.5 / 4)  # half of a typical expiration has arrived
    assert progress.rows == 1500
    progress.on_event(done(TASK, EXPIRATIONS[1], rows=990))
    assert progress.rows == 1990 and progress.share_done() == 0.5
    progress.on_event(Event("expiration_progress", TASK, expiration=EXPIRATIONS[2], rows=10**9))
    assert progress.share_done() < 3 / 4  # an expiration under way never counts as finished


def test_tasks_not_listed_yet_count_with_the_plans_estimate_and_the_display_never_says_100_before_the_end():
    progress, _ = display(total_tasks=2, expirations=8)
    progress.on_event(Event("expirations_listed", TASK, total=2))
    assert progress.expected() == 2 + 4  # listed, and half the plan's estimate for the other task
    assert "exp 0/~6" in progress.line(200)
    for expiration in EXPIRATIONS[:2]:
        progress.on_event(done(TASK, expiration))
    progress.on_event(Event("task_done", TASK, state="success"))
    progress.on_event(Event("task_done", OTHER, state="held"))  # nothing fetched: it adds nothing more
    assert progress.share_done() == 1.0 and "100%" in progress.line(200) and "ETA 0:00" in progress.line(200)
    almost, _ = display(expirations=1000)
    almost.on_event(Event("expirations_listed", TASK, total=1000))
    for _ in range(999):
        almost.on_event(done(TASK, EXPIRATIONS[0]))
    assert "99%" in almost.line(200) and "100%" not in almost.line(200)


def test_retries_drop_the_attempts_rows_and_are_counted():
    progress, _ = display()
    progress.on_event(Event("expiration_progress", TASK, expiration=EXPIRATIONS[0], rows=700))
    progress.on_event(Event("retry", TASK, expiration=EXPIRATIONS[0], attempt=1))
    assert progress.rows == 0 and "retries 1" in progress.line(200)


# ------------------------------------------------------------------ how it is drawn


@pytest.mark.parametrize("width", [12, 20, 32, 40, 60, 80, 100, 132, 200, 400])
def test_the_line_is_never_wider_than_the_terminal(width):
    progress, clock = display(total_tasks=5000, expirations=100_000, rows_per_expiration=130_000, width=width)
    assert len(progress.line(width)) <= width - 1
    clock.now += 3600 * 30
    for _ in range(50):
        progress.on_event(Event("retry", TASK, expiration=EXPIRATIONS[0], attempt=1))
        progress.on_event(done(TASK, EXPIRATIONS[0], rows=10**8, count=10**12))
    line = progress.line(width)
    assert len(line) <= width - 1, line
    assert "ETA" in line or width < 20


def test_the_bar_takes_the_room_the_terminal_leaves():
    progress, _ = display(rows_per_expiration=130_000)
    line = progress.line(80)
    assert len(line) == 79 and line.startswith("▕") and "rows/s" in line
    bar = progress.line(200).split("▏")[0]
    assert len(bar) + 1 == MAX_BAR  # wide terminals: the bar stops growing
    assert "ETA" in progress.line(24) and "▕" not in progress.line(24)  # no room for a bar: the numbers stay


def test_a_field_never_narrows_so_the_bar_does_not_jump():
    progress, _ = display(rows_per_expiration=400_000)  # room for 1,600,000 rows is kept from the start
    bars = set()
    for rows in (0, 10, 12_345, 399_999):
        progress.on_event(Event("expiration_progress", TASK, expiration=EXPIRATIONS[0], rows=rows))
        bars.add(len(progress.line(80).split("▏")[0]))
    progress.on_event(Event("retry", TASK, expiration=EXPIRATIONS[0], attempt=1))  # the rows go back to 0
    bars.add(len(progress.line(80).split("▏")[0]))
    assert len(bars) == 1 and len(progress.line(80)) == 79


def test_without_unicode_the_bar_is_ascii():
    progress, _ = display(unicode=False)
    progress.on_event(Event("expirations_listed", TASK, total=4))
    progress.on_event(done(TASK, EXPIRATIONS[0]))
    line = progress.line(80)
    assert line.startswith("[#") and "-]" in line and line.isascii()


def test_live_progress_redraws_in_place_on_events_and_ticks_and_keeps_info_logs_off_it(capsys):
    logs.configure(level="INFO")
    clock = Clock()
    progress = Progress(2, live=True, expirations=2, width=lambda: 80, clock=clock, unicode=True)
    assert logs.console_handler().level == logging.WARNING and logs.console_handler().live
    progress.on_event(Event("task_started", TASK))
    progress.on_event(Event("expiration_progress", TASK, expiration=EXPIRATIONS[0], rows=10))  # within 0.1 s: not drawn
    progress.tick()
    clock.now += 1
    progress.tick()
    progress.on_event(Event("task_done", TASK, state="success", rows=1000, bytes=2048, seconds=1.5))
    progress.close()
    err = capsys.readouterr().err  # click drops the clear-line code when stderr is not a terminal
    frames = err.split("\r")[1:]
    assert len(frames) == 5  # started, two ticks, task done, close
    assert all("\n" not in frame for frame in frames[:-1]) and frames[-1].endswith("\n")
    assert all(len(frame.rstrip("\n")) <= 79 for frame in frames)
    assert logs.console_handler().level == logging.INFO and not logs.console_handler().live


def test_plain_progress_logs_one_line_per_finished_task(caplog):
    progress = cli.Progress(1, live=False)
    with caplog.at_level(logging.INFO, logger="spxdl.cli"):
        progress.on_event(Event("task_started", TASK))
        progress.on_event(done(TASK, EXPIRATIONS[0], rows=1000, count=2048))
        progress.tick()
        progress.on_event(Event("task_done", TASK, state="success", rows=1000, bytes=2048, seconds=1.5))
    assert [r.getMessage() for r in caplog.records] == ["greeks-1m/SPXW/2024-03-14: success, 1,000 rows, 2.0 KB in 1.5 s"]


# ------------------------------------------------------------------ a real run at a real terminal


def run_at_a_terminal_of(columns: int, args: list[str], cwd: Path) -> tuple[int, str]:
    """``spxdl ARGS`` on a pseudo-terminal ``columns`` wide (TIOCSWINSZ); the exit code and all it drew."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SPXDL_") and key not in ("COLUMNS", "LINES")}
    env.update(HOME=str(cwd), LANG="C.UTF-8", PYTHONIOENCODING="utf-8")
    return run_on_a_pty([sys.executable, "-m", "spxdl", *args], cwd, env, columns=columns, timeout=120)


def test_a_real_run_on_a_terminal_80_columns_wide_draws_one_line_that_fits_and_never_stacks(tmp_path):
    columns = 80
    with Simulator(profile="tiny", page_rows=1000, faults=Faults(latency=0.2)) as slow:
        code, shown = run_at_a_terminal_of(columns, [
            "run", "--terminal-url", slow.url, "--api", "v2", "--start", "2024-03-13", "--end", "2024-03-14",
            "--max-dte", "15", "--data-dir", str(tmp_path / "data"), "--workers", "1"], tmp_path)
    assert code == 0, shown
    drawn, summary = shown[shown.index(CLEAR_LINE):].split("\r\nspxdl: ", 1)
    frames = drawn.split(CLEAR_LINE)[1:]
    assert all("\n" not in frame for frame in frames), [frame for frame in frames if "\n" in frame]
    assert all(len(frame) <= columns - 1 for frame in frames), max(frames, key=len)
    expirations = int(re.search(r"expirations: (\d+) complete", summary).group(1))
    assert len(frames) > expirations + 2  # redrawn on the timer too, not only when an expiration lands
    etas = [re.search(r"ETA (\S+)", frame).group(1) for frame in frames]
    assert any(re.fullmatch(r"\d+:\d\d", eta) and eta != "0:00" for eta in etas)  # a real ETA while it ran
    assert etas[-1] == "0:00" and "100%" in frames[-1]
    assert all(word in frames[-1] for word in (" rows ", "rows/s", "ETA")) and "▕" in frames[-1], frames[-1]
    assert re.search(r"\d [KM]?B ", frames[-1]), frames[-1]
