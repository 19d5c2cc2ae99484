"""Live progress on a terminal; plain log lines when not a terminal."""

from __future__ import annotations

import logging
import sys
import time


import click

from spxdl import logs
from spxdl.cli.render import human_bytes, human_duration
from spxdl.engine.records import Event

log = logging.getLogger(__name__)


class Progress:
    """Live progress on a TTY (one redrawn line on stderr); one log line per finished task otherwise."""

    REDRAW_SECONDS = 0.2

    def __init__(self, total_tasks: int, live: bool) -> None:
        self.total = total_tasks
        self.live = live
        self.console = logs.console_handler() if live else None
        self.console_level = self.console.level if self.console else logging.NOTSET
        if self.console is not None:
            # The display says what INFO lines would; the log file still gets them.
            self.console.setLevel(max(self.console_level, logging.WARNING))
            self.console.live = True
        self.started = time.monotonic()
        self.tasks_done = 0
        self.expirations = 0
        self.rows = 0
        self.bytes = 0
        self.retries = 0
        self.last_draw = 0.0

    def on_event(self, event: Event) -> None:
        """Fold one engine event into the display."""
        if event.kind == "expiration_done":
            self.expirations += 1
            self.rows += event.rows
            self.bytes += event.bytes
        elif event.kind == "retry":
            self.retries += 1
        elif event.kind == "task_done":
            self.tasks_done += 1
            if not self.live:
                log.info("%s: %s, %s rows, %s in %.1f s%s", event.task.key, event.state, f"{event.rows:,}",
                         human_bytes(event.bytes), event.seconds, f" ({event.error})" if event.error else "")
        if self.live:
            self.draw(force=event.kind == "task_done")

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        eta = "--:--"
        if 0 < self.tasks_done < self.total:
            eta = human_duration(elapsed / self.tasks_done * (self.total - self.tasks_done))
        elif self.tasks_done >= self.total:
            eta = "0:00"
        return (f"tasks {self.tasks_done}/{self.total}  expirations {self.expirations}  rows {self.rows:,}  "
                f"{human_bytes(self.bytes)}  {rate:,.0f} rows/s  retries {self.retries}  ETA {eta}")

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_draw >= self.REDRAW_SECONDS:
            self.last_draw = now
            click.echo(f"\r\033[K{self.line()}", err=True, nl=False)

    def close(self) -> None:
        if self.live:
            self.draw(force=True)
            click.echo("", err=True)
        if self.console is not None:
            self.console.setLevel(self.console_level)
            self.console.live = False


def make_progress(ctx: click.Context, total_tasks: int) -> Progress:
    """A live display when stderr is a terminal and the user did not ask for quiet."""
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    return Progress(total_tasks, live=sys.stderr.isatty() and not quiet)
