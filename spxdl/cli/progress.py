"""What a download shows while it runs: a bar on a terminal, plain log lines otherwise.

On a terminal (stderr a TTY, no ``--quiet``) one line is redrawn in place (carriage return, then
clear to the end of the line): a bar as wide as the terminal leaves room for, the share done,
expirations, rows, MB written, rows/s, the time so far and an ETA. It is redrawn when work lands
and on the engine's ticks (a few times a second), is never wider than the terminal (a narrow one
loses the least useful parts first, then the bar) and adds no line until the run ends.
Elsewhere (cron, systemd, a pipe) each finished task is one log line.

The share done counts expirations: those finished, plus the rows received by those under way
against the rows an expiration has held so far, over the plan's expirations (each task's own
count once it has listed them, the plan's estimate for the others). The ETA follows from it.

Hand-written rather than a progress library: the redraw timer is the engine's (threads start
only there), log records must clear the line first (``logs.ConsoleHandler``), and it is small.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import date
from typing import Callable, TextIO

import click

from spxdl import config, engine, logs
from spxdl.cli.base import silence_output
from spxdl.cli.render import human_bytes, human_duration
from spxdl.engine.records import EXPIRATION_DONE, EXPIRATION_PROGRESS, EXPIRATIONS_LISTED, RETRY, TASK_DONE, Event, Plan
from spxdl.ledger import Task

log = logging.getLogger(__name__)

FALLBACK_WIDTH = 80
MIN_BAR = 10  # narrower than this, no bar at all
MAX_BAR = 60
UNDER_WAY_CAP = 0.95  # an expiration still streaming counts at most this share of a finished one
EIGHTHS = " ▏▎▍▌▋▊▉"
CLEAR_LINE = "\r\033[K"


def terminal_width(stream: TextIO | None = None) -> int:
    """Columns of the terminal ``stream`` (default stderr) is on; else $COLUMNS, else 80."""
    try:
        return os.get_terminal_size((stream or sys.stderr).fileno()).columns or FALLBACK_WIDTH
    except (OSError, ValueError, AttributeError):
        columns = os.environ.get("COLUMNS", "")
        return int(columns) if columns.isdigit() and int(columns) > 0 else FALLBACK_WIDTH


def speaks_unicode(stream: TextIO | None = None) -> bool:
    encoding = (getattr(stream or sys.stderr, "encoding", None) or "").lower().replace("-", "")
    return encoding == "utf8"


class Progress:
    """Folds engine events into counts; draws them as one live line on a TTY, or logs finished tasks."""

    REDRAW_SECONDS = 0.1  # events redraw at most this often; ticks and finished tasks always do

    def __init__(
        self,
        total_tasks: int,
        live: bool,
        *,
        expirations: int = 0,
        rows_per_expiration: int = 0,
        width: Callable[[], int] = terminal_width,
        clock: Callable[[], float] = time.monotonic,
        unicode: bool | None = None,
    ) -> None:
        self.total = total_tasks
        self.live = live
        self.estimated = expirations  # the plan's estimate over all its tasks
        self.rows_per_expiration = rows_per_expiration  # likewise, until expirations have finished
        self.width = width
        self.clock = clock
        self.unicode = speaks_unicode() if unicode is None else unicode
        self.console = logs.console_handler() if live else None
        self.console_level = self.console.level if self.console else logging.NOTSET
        if self.console is not None:
            # The display says what INFO lines would; the log file still gets them.
            self.console.setLevel(max(self.console_level, logging.WARNING))
            self.console.live = True
        self.started = clock()
        self.last_draw = float("-inf")
        planned_rows = expirations * rows_per_expiration
        self.widths = {"share": 4, "rows": len(f"{planned_rows:,} rows"), "bytes": len("000.0 MB"),
                       "rate": len("000,000 rows/s"), "eta": len("ETA --:--")}  # room kept from the start
        self.tasks_done = 0
        self.listed: dict[Task, int] = {}  # expirations each task fetches, once it has listed them
        self.under_way: dict[tuple[Task, date | None], int] = {}  # rows received so far
        self.expirations_done = 0
        self.expirations_with_rows = 0
        self.rows_done = 0
        self.bytes = 0
        self.retries = 0

    # -- counting ------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Fold one engine event into the counts, and redraw."""
        key = (event.task, event.expiration)
        if event.kind == EXPIRATIONS_LISTED:
            self.listed[event.task] = event.total
        elif event.kind == EXPIRATION_PROGRESS:
            self.under_way[key] = event.rows
        elif event.kind == EXPIRATION_DONE:
            self.under_way.pop(key, None)
            self.expirations_done += 1
            self.expirations_with_rows += event.rows > 0
            self.rows_done += event.rows
            self.bytes += event.bytes
        elif event.kind == RETRY:
            self.under_way.pop(key, None)
            self.retries += 1
        elif event.kind == TASK_DONE:
            self.finish_task(event)
        if self.live:
            self.draw(force=event.kind == TASK_DONE)

    def finish_task(self, event: Event) -> None:
        self.tasks_done += 1
        self.listed.setdefault(event.task, 0)  # held, or failed before listing: nothing more to come
        for key in [key for key in self.under_way if key[0] == event.task]:
            del self.under_way[key]
        if not self.live:
            log.info("%s: %s, %s rows, %s in %.1f s%s", event.task.key, event.state, f"{event.rows:,}",
                     human_bytes(event.bytes), event.seconds, f" ({event.error})" if event.error else "")

    def tick(self) -> None:
        """The engine's timer: redraw (elapsed time and ETA move even while nothing lands)."""
        if self.live:
            self.draw(force=True)

    @property
    def rows(self) -> int:
        """Rows stored, and received by the expirations under way."""
        return self.rows_done + sum(self.under_way.values())

    def expected(self) -> float:
        """Expirations the whole plan fetches: listed counts, the estimate for tasks not listed yet."""
        per_task = self.estimated / self.total if self.total else 0.0
        return sum(self.listed.values()) + max(self.total - len(self.listed), 0) * per_task

    def share_done(self) -> float:
        """How much of the plan is done, from 0 to 1 (1 only once every task has finished)."""
        if self.total and self.tasks_done >= self.total:
            return 1.0
        expected = self.expected()
        if expected <= 0:
            return self.tasks_done / self.total if self.total else 0.0
        typical = self.rows_done / self.expirations_with_rows if self.expirations_with_rows else self.rows_per_expiration
        under_way = sum(min(rows / typical, UNDER_WAY_CAP) for rows in self.under_way.values()) if typical > 0 else 0.0
        return min((self.expirations_done + under_way) / expected, 0.999)

    def eta(self, share: float, elapsed: float) -> str:
        if share >= 1.0:
            return "0:00"
        if share <= 0.0 or elapsed < 1.0:
            return "--:--"
        return human_duration(elapsed * (1.0 - share) / share)

    # -- drawing -------------------------------------------------------------------------------

    def line(self, width: int) -> str:
        """The display at ``width`` columns: at most ``width - 1`` characters (the last column can wrap).

        A field never gets narrower during a run (room for the rows the plan expects is kept from
        the start), so the bar does not jump about as the numbers grow.
        """
        share = self.share_done()
        elapsed = max(self.clock() - self.started, 0.0)
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        approximate = "~" if len(self.listed) < self.total else ""
        # (name, text, rank): the highest rank goes first when the terminal is narrow; rank 0 always stays.
        fields = [
            ("share", f"{int(share * 100)}%", 0),
            ("tasks", f"tasks {self.tasks_done}/{self.total}", 6) if self.total > 1 else None,
            ("exp", f"exp {self.expirations_done}/{approximate}{round(self.expected())}", 5),
            ("rows", f"{self.rows:,} rows", 2),
            ("bytes", human_bytes(self.bytes), 3),
            ("rate", f"{rate:,.0f} rows/s", 4),
            ("retries", f"retries {self.retries}", 7) if self.retries else None,
            ("elapsed", human_duration(elapsed), 1),
            ("eta", f"ETA {self.eta(share, elapsed)}", 0),
        ]
        kept = [(name, self.padded(name, text), rank) for name, text, rank in filter(None, fields)]
        room = width - 1
        text = "  ".join(padded for _, padded, _ in kept)
        while len(text) + 1 + MIN_BAR > room and any(rank for _, _, rank in kept):
            kept.remove(max(kept, key=lambda field: field[2]))
            text = "  ".join(padded for _, padded, _ in kept)
        bar_width = min(room - len(text) - 1, MAX_BAR)
        if bar_width < MIN_BAR:
            return text[:room]
        return f"{self.bar(share, bar_width)} {text}"

    def padded(self, name: str, text: str) -> str:
        """``text`` right-aligned in the widest its field has been."""
        width = max(self.widths.get(name, 0), len(text))
        self.widths[name] = width
        return text.rjust(width)

    def bar(self, share: float, width: int) -> str:
        """A bar of ``width`` characters, frame included, filled to ``share``."""
        inside = width - 2
        if not self.unicode:
            filled = int(share * inside)
            return "[" + "#" * filled + "-" * (inside - filled) + "]"
        eighths = int(share * inside * 8)
        full, part = divmod(eighths, 8)
        body = "█" * full + (EIGHTHS[part] if part and full < inside else "")
        return "▕" + body.ljust(inside) + "▏"

    def draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last_draw < self.REDRAW_SECONDS:
            return
        self.last_draw = now
        try:
            click.echo(f"{CLEAR_LINE}{self.line(self.width())}", err=True, nl=False)
        except BrokenPipeError:  # whoever showed the output is gone; the download goes on
            silence_output()
            self.live = False

    def close(self) -> None:
        if self.live:
            self.draw(force=True)
            try:
                click.echo("", err=True)
            except BrokenPipeError:
                silence_output()
        if self.console is not None:
            self.console.setLevel(self.console_level)
            self.console.live = False


def make_progress(ctx: click.Context, plan: Plan, settings: config.Settings) -> Progress:
    """A live display when stderr is a terminal and the user did not ask for quiet."""
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    figures = engine.estimate(plan, settings)
    expirations = figures.get("expirations", 0)
    per_expiration = figures.get("rows", 0) // expirations if expirations else 0
    return Progress(len(plan.tasks), live=sys.stderr.isatty() and not quiet, expirations=expirations,
                    rows_per_expiration=per_expiration)
