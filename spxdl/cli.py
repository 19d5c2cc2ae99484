"""The ``spxdl`` command line: the only module that prints and picks exit codes.

Each command parses its options, builds ``Settings`` through ``config.load``, calls the library,
and turns library exceptions into one clear line and a documented exit code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from spxdl import __version__, config, errors, logs, storage, trading_calendar

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_WIRE = 65  # sysexits EX_DATAERR: the terminal answers in a format spxdl does not know
EXIT_TRY_LATER = 75
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES_HELP = """\b
Exit codes:
  0    everything asked for is complete
  1    some tasks failed, are partial, or have no data yet
  2    usage or configuration error
  65   the terminal's answer is not the CSV spxdl expects (run stopped)
  75   try later: terminal unreachable or not connected, another terminal
       on the account (478), ledger busy, or tasks held by another run
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)"""

CONFIRM_TRADING_DAYS = 30
SIM_DATA_DIR = Path("sim-data")
# `--simulate` with nothing else asked is a demo: small enough to finish within about a minute.
SIM_DEMO_DAYS = 3
SIM_DEMO_MAX_DTE = 3


class Abort(Exception):
    """Raised inside a command to stop with ``code`` after printing ``message``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception that ends a command."""
    if isinstance(exc, (errors.ConfigError, errors.ArchiveMismatch)):
        return EXIT_USAGE
    if isinstance(exc, (errors.TerminalUnavailable, errors.InvalidSession, errors.LedgerBusy)):
        return EXIT_TRY_LATER
    if isinstance(exc, errors.SchemaMismatch):
        return EXIT_WIRE
    return EXIT_INCOMPLETE


def fix_hint(exc: BaseException) -> str:
    """A sentence telling the user what to do about ``exc``, where one helps."""
    if isinstance(exc, errors.TerminalUnavailable):
        return (
            " Start the ThetaData Terminal (java -jar ThetaTerminalv3.jar) and log in, pass --terminal-url,"
            " or try spxdl with --simulate."
        )
    if isinstance(exc, errors.PermissionDenied):
        return " Check that your ThetaData subscription includes SPX index options (Standard or Pro for greeks)."
    if isinstance(exc, errors.LedgerBusy):
        return " Another spxdl run is using this data dir; wait for it or run again later."
    if isinstance(exc, errors.SchemaMismatch):
        return " Nothing stored was touched; check the terminal's version, and report this line."
    return ""


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn spxdl errors into one line on stderr and their exit code (traceback only with --verbose)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except Abort as exc:
            if str(exc):
                click.echo(str(exc), err=True)
            ctx.exit(exc.code)
        except errors.SpxdlError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            click.echo(f"spxdl: error: {exc}{fix_hint(exc)}", err=True)
            ctx.exit(exit_code_for(exc))
        except OSError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"spxdl: error: {exc.strerror or exc}{where}; check the path and its permissions", err=True)
            ctx.exit(EXIT_INCOMPLETE)

    return wrapper


# ------------------------------------------------------------------ shared options and settings


def terminal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--terminal-url``, ``--api`` and ``--data-dir``: every command that touches the terminal or archive."""
    func = click.option("--data-dir", type=click.Path(path_type=Path), help="Archive directory [storage] data_dir.")(func)
    func = click.option("--api", type=click.Choice(["auto", "v2", "v3"]), help="Terminal API version [terminal] api.")(func)
    func = click.option("--terminal-url", help="Terminal base URL, e.g. http://127.0.0.1:25503 [terminal] url.")(func)
    return func


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Which part of the archive: roots, datasets, interval and DTE window."""
    options = [
        click.option("--root", "roots", multiple=True, help="Root(s): SPXW, SPX; repeat or comma-separate."),
        click.option("--dataset", "datasets", multiple=True, help="Dataset(s): greeks, quote, ohlc, open_interest, eod, greeks_second_order."),
        click.option("--interval", help="Bar interval, e.g. 1m."),
        click.option("--min-dte", type=int, help="Keep expirations at least N days after the trade date."),
        click.option("--max-dte", type=int, help="Keep expirations at most N days after the trade date."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def download_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What to download and how hard to work: shared by run, backfill, update and resume."""
    options = [
        click.option("--workers", type=int, help="Worker processes."),
        click.option("--threads", type=int, help="Download threads per worker."),
        click.option("--max-in-flight", type=int, help="Requests in flight across all workers (terminal's limit)."),
        click.option("--force", is_flag=True, help="Download again even what is complete; files are replaced atomically."),
        click.option("--dry-run", is_flag=True, help="Print the plan with estimated requests, rows and bytes; write nothing."),
        click.option("--yes", "-y", is_flag=True, help=f"Do not ask before ranges over {CONFIRM_TRADING_DAYS} trading days."),
        click.option("--simulate", is_flag=True, help="Download from the built-in simulated terminal into ./sim-data "
                     f"(with no dates or DTE given: the last {SIM_DEMO_DAYS} sessions, DTE 0..{SIM_DEMO_MAX_DTE})."),
        click.option("--sim-profile", type=click.Choice(["tiny", "realistic", "dense"]), default="realistic", show_default=True,
                     help="Simulator profile for --simulate (dense: 4x the strikes of realistic)."),
    ]
    for option in reversed(options):
        func = option(func)
    return terminal_options(selection_options(func))


def comma_values(values: tuple[str, ...]) -> str | None:
    """Repeated and comma-separated option values as one comma list (``None`` if not given)."""
    items = [item.strip() for value in values for item in value.split(",") if item.strip()]
    return ",".join(items) if items else None


def build_settings(ctx: click.Context, *, file_logging: bool = True, **flags: Any) -> config.Settings:
    """Settings from the group's --config plus this command's flags (``None`` = not given).

    Commands that only read (status, gaps, health, config show) pass ``file_logging=False`` so
    that they create nothing on disk.
    """
    obj = ctx.obj or {}
    flag_values = {key: value for key, value in flags.items() if value is not None}
    settings = config.load(obj.get("config_path"), flags=flag_values)
    configure_logging(ctx, settings, file_logging=file_logging)
    return settings


def configure_logging(ctx: click.Context, settings: config.Settings, *, file_logging: bool = True) -> None:
    """Console and rotating-file logging for this invocation."""
    obj = ctx.obj or {}
    level = "DEBUG" if obj.get("verbose") else settings.log_level
    console = "WARNING" if obj.get("quiet") else level
    fmt = "json" if obj.get("log_json") else settings.log_format
    log_file = None
    if file_logging:
        log_file = settings.log_file or storage.logs_dir(settings.data_dir) / "spxdl.log"
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.ConfigError(
                f"cannot create the log directory {log_file.parent}: {exc.strerror}; "
                "choose a writable --data-dir or [logging] file"
            ) from None
    obj["console_level"] = console
    logs.configure(level=level, console_level=console, fmt=fmt, log_file=log_file)


def download_flags(
    *,
    terminal_url: str | None,
    api: str | None,
    data_dir: Path | None,
    roots: tuple[str, ...] = (),
    datasets: tuple[str, ...] = (),
    interval: str | None = None,
    min_dte: int | None = None,
    max_dte: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    max_in_flight: int | None = None,
) -> dict[str, Any]:
    """Command-line values keyed by Settings field; strings go through the config parsers."""
    as_text = lambda value: None if value is None else str(value)  # noqa: E731 - parse like file values
    return {
        "terminal_url": terminal_url,
        "terminal_api": api,
        "data_dir": as_text(data_dir),
        "roots": comma_values(roots),
        "datasets": comma_values(datasets),
        "interval": interval,
        "min_dte": as_text(min_dte),
        "max_dte": as_text(max_dte),
        "workers": as_text(workers),
        "threads": as_text(threads),
        "max_in_flight": as_text(max_in_flight),
    }


def archive_flags(terminal_url: str | None, api: str | None, data_dir: Path | None) -> dict[str, Any]:
    """The flags of ``terminal_options`` keyed by Settings field."""
    return download_flags(terminal_url=terminal_url, api=api, data_dir=data_dir)


# ------------------------------------------------------------------ dates


def parse_cli_date(text: str, option: str) -> date:
    """A date given on the command line, or a one-line error naming the option."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise errors.ConfigError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-03-14") from None


def check_range(start: date, end: date, last_session: date) -> tuple[date, date]:
    """Refuse reversed or wholly future ranges; clamp an end that is past the last complete session."""
    if start > last_session:
        raise errors.ConfigError(
            f"{start} has no complete session yet (the latest is {last_session}, New York time); "
            "pick dates up to that day"
        )
    if end < start:
        raise errors.ConfigError(f"the end date {end} is before the start date {start}; swap them")
    if end > last_session:
        log.info("end date %s is after the latest complete session; using %s", end, last_session)
        end = last_session
    return start, end


def resolve_run_dates(
    cal: trading_calendar.TradingCalendar,
    last_session: date,
    *,
    on: str | None,
    start: str | None,
    end: str | None,
    days_back: int | None,
) -> tuple[date, date] | None:
    """The range ``run`` was asked for, or ``None`` when no dates were given (update's case)."""
    given = [name for name, value in (("--date", on), ("--start", start), ("--days-back", days_back)) if value is not None]
    if len(given) > 1:
        raise errors.ConfigError(f"use only one of {', '.join(given)}")
    if end is not None and start is None:
        raise errors.ConfigError("--end needs --start")
    if on is not None:
        day = parse_cli_date(on, "--date")
        return check_range(day, day, last_session)
    if start is not None:
        first = parse_cli_date(start, "--start")
        last = parse_cli_date(end, "--end") if end is not None else last_session
        return check_range(first, last, last_session)
    if days_back is not None:
        if days_back < 1:
            raise errors.ConfigError("--days-back must be 1 or more")
        return days_back_range(cal, last_session, days_back)
    return None


def days_back_range(cal: trading_calendar.TradingCalendar, last_session: date, count: int) -> tuple[date, date]:
    """The last ``count`` trading days up to and including ``last_session``."""
    first = last_session
    for _ in range(count - 1):
        first = cal.previous_trading_day(first)
    return first, last_session


def calendar_for(settings: config.Settings) -> trading_calendar.TradingCalendar:
    return trading_calendar.load_calendar(settings.calendar_overrides)


# ------------------------------------------------------------------ the group


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file (default: $SPXDL_CONFIG, ~/.config/spxdl/spxdl.ini, ./spxdl.ini).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging, and a traceback with errors.")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on the console.")
@click.option("--log-json", is_flag=True, help="Log as JSON lines (console and file).")
@click.version_option(__version__, prog_name="spxdl")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool, quiet: bool, log_json: bool) -> None:
    """Keep a local Parquet archive of SPX/SPXW option data from a ThetaData Terminal.

    Start with `spxdl run --simulate` (no terminal needed), then `spxdl run` against your own
    terminal. `spxdl COMMAND --help` explains each command.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(config_path=config_path, verbose=verbose, quiet=quiet, log_json=log_json)


def main() -> None:
    """Console entry point: run the command, then exit with its code without interpreter teardown."""
    code: int = EXIT_OK
    try:
        cli(prog_name="spxdl")
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or EXIT_OK
        else:
            click.echo(str(exc.code), err=True)
            code = EXIT_INCOMPLETE
    exit_now(code)


def exit_now(code: int) -> None:
    """Flush and leave at once.

    Arrow's (and DuckDB's) native thread pools can abort an otherwise finished process while the
    interpreter tears down ("terminate called without an active exception", apache/arrow#34314),
    which would turn a clean run's exit code into 134 for the timer that started it.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# ------------------------------------------------------------------ downloading


@contextlib.contextmanager
def simulated_terminal(enabled: bool, profile: str) -> Iterator[str | None]:
    """Start the built-in simulator on a free loopback port for ``--simulate``; yield its URL."""
    if not enabled:
        yield None
        return
    from spxdl.simulator import Simulator

    with Simulator(profile=profile) as sim:
        log.info("simulated terminal (%s profile) at %s", profile, sim.url)
        yield sim.url


def simulate_data_dir(simulate: bool, data_dir: Path | None) -> Path | None:
    """Simulated data never shares a directory with real data: ``--simulate`` defaults to ./sim-data."""
    if simulate and data_dir is None:
        return SIM_DATA_DIR
    return data_dir


def confirm_large_range(trading_days: int, yes: bool) -> None:
    """Ask before a long range when a person is at the keyboard; scripts (no TTY) are not asked."""
    if yes or trading_days <= CONFIRM_TRADING_DAYS or not sys.stdin.isatty():
        return
    if not click.confirm(f"This range covers {trading_days} trading days. Download them?", default=True, err=True):
        raise Abort("nothing downloaded", EXIT_OK)


def execute_download(
    ctx: click.Context,
    settings: config.Settings,
    start: date,
    end: date,
    *,
    force: bool = False,
    dry_run: bool = False,
    yes: bool = False,
    simulate: bool = False,
    sim_profile: str = "realistic",
) -> None:
    """Plan and run a download of ``start..end``, render progress and the summary, exit with its code."""
    from spxdl import engine

    with simulated_terminal(simulate, sim_profile) as sim_url:
        if sim_url:
            settings = settings.replace(terminal_url=sim_url)  # the simulator speaks both APIs: --api decides
        plan = engine.plan(settings, start, end, force=force)
        run_plan(ctx, plan, settings, dry_run=dry_run, yes=yes)


def run_plan(ctx: click.Context, plan: Any, settings: config.Settings, *, dry_run: bool, yes: bool) -> None:
    """Print a dry-run plan, or run it with progress and a summary; exit with the summary's code."""
    from spxdl import engine

    if dry_run:
        print_plan(plan, engine.estimate(plan, settings), settings)
        return
    if not plan.tasks:
        held = f"; {len(plan.held)} held by another live run" if plan.held else ""
        click.echo(f"Nothing to do for {plan.start} .. {plan.end}: {len(plan.done)} task(s) already complete{held}.", err=True)
        if plan.held:
            raise Abort("", EXIT_TRY_LATER)
        return
    confirm_large_range(len({task.trade_date for task in plan.tasks}), yes)
    progress = make_progress(ctx, len(plan.tasks))
    try:
        summary = engine.run(plan, settings, on_event=progress.on_event)
    finally:
        progress.close()
    print_summary(summary, plan)
    code = summary_exit_code(summary, plan)
    if code:
        raise Abort("", code)


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

    def on_event(self, event: Any) -> None:
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


def summary_exit_code(summary: Any, plan: Any) -> int:
    """0 complete; 130/143 interrupted; 1 failed, partial or no data; 75 only held tasks left."""
    if summary.interrupted is not None:
        return EXIT_SIGTERM if summary.interrupted == signal.SIGTERM else EXIT_SIGINT
    if summary.stopped_by is not None:
        return exit_code_for(summary.stopped_by)
    unfinished = any(result.state not in ("success", "held") for result in summary.results)
    if unfinished or summary.not_started:
        return EXIT_INCOMPLETE
    if summary.held:
        return EXIT_TRY_LATER
    return EXIT_OK


def print_summary(summary: Any, plan: Any) -> None:
    """The end-of-run report on stderr: counts, volume, time, the slowest and the failed tasks."""
    totals = summary.totals()
    states = summary.by_state()
    echo = functools.partial(click.echo, err=True)
    source = f"{'simulated' if summary.simulated else 'real'} terminal, API {summary.api}" if summary.api else "no terminal needed"
    echo(f"spxdl: {plan.start} .. {plan.end} ({source})")
    echo("  tasks: " + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
         + f"; {len(plan.done)} already complete; {summary.held} held by another run")
    echo(f"  rows {totals['rows']:,}; {human_bytes(totals['bytes'])} written; "
         f"{totals['seconds']:.1f} s; {totals['rows_per_s']:,.0f} rows/s; {totals['retries']} retries")
    exps = totals["expirations"]
    if exps:
        echo("  expirations: " + ", ".join(f"{count} {state}" for state, count in sorted(exps.items())))
    if totals.get("checks"):
        flagged = ", ".join(f"{name} {count:,}" for name, count in sorted(totals["checks"].items()))
        echo(f"  checks flagged: {flagged} (per file in each _day.json; [validation] mode decides flag, drop or fail)")
    slow = [result for result in summary.slowest(3) if result.seconds > 0]
    if slow:
        echo("  slowest: " + "; ".join(f"{r.task.key} {r.seconds:.1f} s" for r in slow))
    for result in summary.failed:
        echo(f"  {result.state.upper()} {result.task.key}: {result.error or 'see the log'}")
        for expiration, reason in result.failures[:5]:
            echo(f"      exp {expiration}: {reason}")
    for result in summary.no_data[:10]:
        echo(f"  NO DATA {result.task.key}: {result.error or 'the terminal has no data for it'}")
    if summary.no_data:
        echo("  days without data may not be published yet, or may be outside your subscription (or the DTE "
             "window holds no expiration); later runs try them again")
    if summary.stopped_by is not None:
        echo(f"  STOPPED: {summary.stopped_by}{fix_hint(summary.stopped_by)}")
    if summary.not_started:
        echo(f"  not started: {len(summary.not_started)} task(s); run again to finish (resume is automatic)")
    if summary.interrupted is not None:
        echo(f"  interrupted by {signal.Signals(summary.interrupted).name}; run the same command again to resume")


def print_plan(plan: Any, estimate: dict[str, Any], settings: config.Settings) -> None:
    """The dry-run report: what would be downloaded and roughly how much."""
    days = sorted({task.trade_date for task in plan.tasks})
    click.echo(f"Plan for {plan.start} .. {plan.end} into {settings.data_dir} (dry run: nothing written)")
    click.echo(f"  tasks to download: {len(plan.tasks)} over {len(days)} trading day(s)")
    click.echo(f"  already complete:  {len(plan.done)}")
    click.echo(f"  held by live runs: {len(plan.held)}")
    click.echo(f"  roots {','.join(settings.roots)}; datasets {','.join(settings.datasets)}; interval {settings.interval}; "
               f"DTE {settings.min_dte}..{settings.max_dte}")
    click.echo(f"  estimate: ~{estimate.get('requests', 0):,} requests, ~{estimate.get('rows', 0):,} rows, "
               f"~{human_bytes(estimate.get('bytes', 0))} on disk")
    for task in plan.tasks[:20]:
        click.echo(f"    {task.key}")
    if len(plan.tasks) > 20:
        click.echo(f"    ... and {len(plan.tasks) - 20} more")


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


def human_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# ------------------------------------------------------------------ commands: download


def run_like(
    ctx: click.Context,
    *,
    dates: Callable[[config.Settings, trading_calendar.TradingCalendar, date], tuple[date, date] | None],
    force: bool,
    dry_run: bool,
    yes: bool,
    simulate: bool,
    sim_profile: str,
    **options: Any,
) -> None:
    """Shared body of run, backfill and update: settings, date range, then the download."""
    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = build_settings(ctx, file_logging=not dry_run, **download_flags(**options))
    if simulate and "max_dte" not in settings.sources:
        settings = settings.replace(max_dte=settings.min_dte + SIM_DEMO_MAX_DTE)
    cal = calendar_for(settings)
    last_session = cal.last_complete_session()
    span = dates(settings, cal, last_session) or update_range(settings, cal, last_session, settings.lookback)
    execute_download(ctx, settings, *span, force=force, dry_run=dry_run, yes=yes, simulate=simulate, sim_profile=sim_profile)


def update_range(
    settings: config.Settings, cal: trading_calendar.TradingCalendar, last_session: date, lookback: int
) -> tuple[date, date]:
    """From the day after the last complete day in the archive to the latest session, re-checking ``lookback`` days.

    With an empty archive this is just the last ``lookback + 1`` sessions; backfill fills history.
    """
    from spxdl import audit
    from spxdl.ledger import Ledger

    first = days_back_range(cal, last_session, lookback + 1)[0]
    last_complete = audit.last_complete_day(audit.task_lines(Ledger(settings.data_dir))) if settings.data_dir.exists() else None
    if last_complete is not None and last_complete < first:
        first = cal.next_trading_day(last_complete)
    return first, last_session


@cli.command("run", epilog=EXIT_CODES_HELP)
@click.option("--date", "on", help="One trade date, YYYY-MM-DD.")
@click.option("--start", help="First trade date, YYYY-MM-DD.")
@click.option("--end", help="Last trade date (default: the latest complete session).")
@click.option("--days-back", type=int, help="The last N trading days.")
@download_options
@click.pass_context
@handle_errors
def run_command(ctx: click.Context, on: str | None, start: str | None, end: str | None, days_back: int | None, **options: Any) -> None:
    """Download a date range (with no dates: what `update` does).

    Resume is automatic: what is already complete is skipped, so re-running the same range
    finishes an interrupted run without downloading anything twice.

    \b
    Examples:
      spxdl run --simulate                      # try it without a terminal
      spxdl run --date 2024-03-14
      spxdl run --start 2024-01-02 --end 2024-03-28 --root SPXW,SPX
      spxdl run --days-back 5 --max-dte 7
    """
    def dates(settings: config.Settings, cal: trading_calendar.TradingCalendar, last_session: date) -> tuple[date, date] | None:
        span = resolve_run_dates(cal, last_session, on=on, start=start, end=end, days_back=days_back)
        if span is None and options["simulate"]:
            return days_back_range(cal, last_session, SIM_DEMO_DAYS)
        return span

    run_like(ctx, dates=dates, **options)


cli.add_command(run_command, "download")


@cli.command("backfill", epilog=EXIT_CODES_HELP)
@click.option("--from", "first", help="First trade date (default: [download] start_date).")
@click.option("--to", "last", help="Last trade date (default: the latest complete session).")
@download_options
@click.pass_context
@handle_errors
def backfill_command(ctx: click.Context, first: str | None, last: str | None, **options: Any) -> None:
    """Fill every gap from the configured start date to the latest complete session."""

    def dates(settings: config.Settings, cal: trading_calendar.TradingCalendar, last_session: date) -> tuple[date, date]:
        if first is None and settings.start_date is None:
            raise errors.ConfigError(
                "backfill needs a first day: pass --from YYYY-MM-DD or set start_date in [download] "
                "of your config (or SPXDL_DOWNLOAD_START_DATE)"
            )
        begin = parse_cli_date(first, "--from") if first else settings.start_date
        finish = parse_cli_date(last, "--to") if last else last_session
        return check_range(begin, finish, last_session)

    run_like(ctx, dates=dates, **options)


@cli.command("update", epilog=EXIT_CODES_HELP)
@click.option("--lookback", type=int, help="Trading days before the latest session to re-check (default [download] lookback).")
@download_options
@click.pass_context
@handle_errors
def update_command(ctx: click.Context, lookback: int | None, **options: Any) -> None:
    """Fetch the latest finished sessions (what the nightly timer runs); idempotent."""
    if lookback is not None and not 0 <= lookback <= 60:
        raise errors.ConfigError("--lookback must be from 0 to 60")

    def dates(settings: config.Settings, cal: trading_calendar.TradingCalendar, last_session: date) -> tuple[date, date]:
        return update_range(settings, cal, last_session, settings.lookback if lookback is None else lookback)

    run_like(ctx, dates=dates, **options)


# ------------------------------------------------------------------ commands: health, config, sim


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest existing parent (where a new data dir would be created)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_data_dir(data_dir: Path) -> tuple[bool, str]:
    """Whether spxdl can write into ``data_dir`` (or create it), without creating anything."""
    existing = nearest_existing(data_dir)
    if not existing.is_dir():
        return False, f"{existing} is not a directory; choose another --data-dir"
    if not os.access(existing, os.W_OK | os.X_OK):
        return False, f"{existing} is not writable; fix its permissions or choose another --data-dir"
    note = "exists" if existing == data_dir.absolute() else f"will be created under {existing}"
    return True, f"{data_dir} is writable ({note})"


def check_disk(data_dir: Path, minimum: int = 1024**3) -> tuple[bool, str]:
    free = shutil.disk_usage(nearest_existing(data_dir)).free
    return free >= minimum, f"{human_bytes(free)} free" + ("" if free >= minimum else " (below 1 GB: free some space)")


def check_terminal(settings: config.Settings) -> tuple[bool, dict[str, Any]]:
    """Connect once (short budget) and report status, API version and whether it is the simulator."""
    from spxdl.terminal import TerminalClient

    detail: dict[str, Any] = {"url": settings.terminal_url or "auto (127.0.0.1:25503, then :25510)"}
    try:
        with TerminalClient(
            settings.terminal_url,
            settings.terminal_api,
            threads=1,
            connect_timeout=min(settings.connect_timeout, 5.0),
            read_timeout=min(settings.read_timeout, 10.0),
            retries=1,
        ) as client:
            client.connect()
            detail.update(url=client.base_url, api=client.api, status=client.status(), simulated=client.simulated)
    except errors.TerminalError as exc:
        detail.update(status="unreachable", error=f"{exc}{fix_hint(exc)}")
        return False, detail
    return detail["status"] == "CONNECTED", detail


@cli.command("health", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@terminal_options
@click.pass_context
@handle_errors
def health_command(ctx: click.Context, as_json: bool, terminal_url: str | None, api: str | None, data_dir: Path | None) -> None:
    """Is the terminal reachable and CONNECTED, and can the archive be written? Exit 0 healthy, 75 not."""
    settings = build_settings(ctx, file_logging=False, **archive_flags(terminal_url, api, data_dir))
    terminal_ok, terminal = check_terminal(settings)
    dir_ok, dir_detail = check_data_dir(settings.data_dir)
    disk_ok, disk_detail = check_disk(settings.data_dir)
    healthy = terminal_ok and dir_ok and disk_ok
    report = {"healthy": healthy, "terminal": terminal, "data_dir": {"ok": dir_ok, "detail": dir_detail},
              "disk": {"ok": disk_ok, "detail": disk_detail}}
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        mark = lambda ok: "ok  " if ok else "FAIL"  # noqa: E731
        source = "" if "api" not in terminal else f" api {terminal['api']}, {'simulated' if terminal['simulated'] else 'real'}"
        click.echo(f"{mark(terminal_ok)} terminal  {terminal['url']}: {terminal['status']}{source}")
        if "error" in terminal:
            click.echo(f"     {terminal['error']}")
        click.echo(f"{mark(dir_ok)} data dir  {dir_detail}")
        click.echo(f"{mark(disk_ok)} disk      {disk_detail}")
    if not healthy:
        raise Abort("", EXIT_TRY_LATER)


@cli.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@terminal_options
@click.pass_context
@handle_errors
def config_show_command(ctx: click.Context, as_json: bool, terminal_url: str | None, api: str | None, data_dir: Path | None) -> None:
    """Every effective setting, its value and where it came from (default, file, env or flag)."""
    settings = build_settings(ctx, file_logging=False, **archive_flags(terminal_url, api, data_dir))
    rows = settings.describe()
    if as_json:
        click.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        click.echo(f"{key:<{width}}  {value or '(unset)':<28}  {source}")


def stop_on_signals() -> None:
    """SIGTERM (kill, systemd) and SIGINT stop a foreground server like Ctrl-C, so its counters print.

    SIGINT is set explicitly: a shell starts background jobs with it ignored.
    """

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


@cli.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind (only loopback is allowed).")
@click.option("--port", type=int, default=25503, show_default=True, help="Port; 0 picks a free one.")
@click.option("--profile", type=click.Choice(["tiny", "realistic", "dense"]), default="realistic", show_default=True,
              help="tiny: a few strikes (tests); realistic: full SPX chains; dense: 4x the strikes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Market seed: same seed, same data.")
@click.option("--fail-rate", type=float, default=0.0, help="Shorthand: this probability for each of 429, 5xx and cut bodies.")
@click.option("--throttle-rate", type=float, help="Probability of a 429 with Retry-After.")
@click.option("--error-rate", type=float, help="Probability of a 500/474/571.")
@click.option("--cut-rate", type=float, help="Probability of a body cut part-way.")
@click.option("--latency", type=float, default=0.0, help="Seconds added to every request.")
@click.option("--max-concurrent", type=int, help="Answer 429 above this many requests at once.")
@click.option("--page-rows", type=int, help="Paginate v2 answers above this many rows.")
@click.option("--check", is_flag=True, help="Start on a free port, check every endpoint family against the docs, exit.")
@click.pass_context
@handle_errors
def sim_command(ctx: click.Context, host: str, port: int, profile: str, seed: int, fail_rate: float,
                throttle_rate: float | None, error_rate: float | None, cut_rate: float | None, latency: float,
                max_concurrent: int | None, page_rows: int | None, check: bool) -> None:
    """Serve the built-in simulated ThetaData Terminal (v2 and v3 on one port) until Ctrl-C.

    \b
    Examples:
      spxdl sim                                  # 127.0.0.1:25503, realistic profile
      spxdl sim --port 25510 --fail-rate 0.05    # a flaky terminal
      spxdl sim --check                          # self-test every endpoint, then exit
    """
    from spxdl.simulator import Faults, Simulator, check as check_simulator

    logs.configure(level="DEBUG" if ctx.obj.get("verbose") else "INFO")
    for name, rate in (("--fail-rate", fail_rate), ("--throttle-rate", throttle_rate), ("--error-rate", error_rate), ("--cut-rate", cut_rate)):
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise errors.ConfigError(f"{name} {rate} is not a probability; use a number from 0 to 1")
    faults = Faults(
        throttle_rate=fail_rate if throttle_rate is None else throttle_rate,
        error_rate=fail_rate if error_rate is None else error_rate,
        cut_rate=fail_rate if cut_rate is None else cut_rate,
        latency=latency,
        max_concurrent=max_concurrent,
    )
    if check:
        with Simulator(profile=profile, seed=seed, host=host, port=0, faults=faults, page_rows=page_rows) as sim:
            click.echo(f"simulated terminal at {sim.url} ({profile} profile, seed {seed})")
            for line in check_simulator(sim.url):
                click.echo(f"  ok  {line}")
            click.echo("every endpoint family answered as documented")
        return
    sim = Simulator(profile=profile, seed=seed, host=host, port=port, faults=faults, page_rows=page_rows)
    stop_on_signals()
    click.echo(f"simulated ThetaData Terminal at {sim.url} ({profile} profile, seed {seed}); Ctrl-C stops it", err=True)
    click.echo(f"  try: spxdl run --terminal-url {sim.url} --data-dir ./sim-data --days-back 1", err=True)
    try:
        sim.serve_forever()
    finally:
        click.echo("\n".join(sim.counter_lines()), err=True)


# ------------------------------------------------------------------ commands: the archive


def require_archive(settings: config.Settings) -> None:
    """Commands that read the archive say clearly when there is none yet."""
    if not settings.data_dir.is_dir():
        raise errors.ConfigError(
            f"no archive at {settings.data_dir}; download something first (spxdl run), "
            "or point --data-dir at an existing one"
        )


@cli.command("resume", epilog=EXIT_CODES_HELP)
@download_options
@click.pass_context
@handle_errors
def resume_command(ctx: click.Context, force: bool, dry_run: bool, yes: bool, simulate: bool, sim_profile: str, **options: Any) -> None:
    """Finish everything the ledger holds as incomplete, failed or without data."""
    from spxdl import audit, engine
    from spxdl.ledger import Ledger

    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = build_settings(ctx, file_logging=not dry_run, **download_flags(**options))
    require_archive(settings)
    wanted = set(audit.incomplete_tasks(Ledger(settings.data_dir)))
    if not wanted:
        click.echo(f"Nothing to resume: every task in {settings.data_dir} is complete.", err=True)
        return
    with simulated_terminal(simulate, sim_profile) as sim_url:
        if sim_url:
            settings = settings.replace(terminal_url=sim_url)
        days = sorted(task.trade_date for task in wanted)
        full = engine.plan(settings, days[0], days[-1], force=force)
        plan = engine.Plan(
            tasks=tuple(task for task in full.tasks if task in wanted),
            done=tuple(task for task in full.done if task in wanted),
            held=tuple(task for task in full.held if task in wanted),
            start=full.start,
            end=full.end,
            force=force,
        )
        run_plan(ctx, plan, settings, dry_run=dry_run, yes=yes)


@cli.command("status", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@terminal_options
@click.pass_context
@handle_errors
def status_command(ctx: click.Context, as_json: bool, terminal_url: str | None, api: str | None, data_dir: Path | None) -> None:
    """Per-task table (state, expirations, rows, size, duration, error), totals and the last complete day."""
    from spxdl import audit

    settings = build_settings(ctx, file_logging=False, **archive_flags(terminal_url, api, data_dir))
    require_archive(settings)
    report = audit.status_report(settings.data_dir)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"{'task':<34} {'state':<11} {'expirations':<24} {'rows':>12} {'size':>10} {'time':>8}  error")
    for line in report["tasks"]:
        exps = ",".join(f"{count} {state}" for state, count in sorted(line["expirations"].items())) or "-"
        took = human_duration(line["seconds"]) if line["seconds"] is not None else "-"
        state = line["state"] + ("*" if line["claimed_by"] else "")
        click.echo(f"{line['key']:<34} {state:<11} {exps:<24} {line['rows']:>12,} {human_bytes(line['bytes']):>10} "
                   f"{took:>8}  {line['error'] or ''}")
    totals = report["totals"]
    states = ", ".join(f"{count} {state}" for state, count in sorted(totals["states"].items())) or "none"
    click.echo(f"\n{totals['tasks']} task(s): {states}; {totals['rows']:,} rows; {human_bytes(totals['bytes'])}")
    click.echo(f"last complete day: {report['last_complete_day'] or 'none yet'}   (* = claimed by a run now)")


@cli.command("gaps", epilog=EXIT_CODES_HELP)
@click.option("--start", help="First day (default: [download] start_date, else the archive's first day).")
@click.option("--end", help="Last day (default: the latest complete session).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@selection_options
@terminal_options
@click.pass_context
@handle_errors
def gaps_command(ctx: click.Context, start: str | None, end: str | None, as_json: bool, **options: Any) -> None:
    """Trading days without complete data for the configured roots, datasets and DTE window.

    Exit 0 when there is no gap, 1 when there are gaps (so scripts can act on it).
    """
    from spxdl import audit
    from spxdl.ledger import Ledger

    settings = build_settings(ctx, file_logging=False, **download_flags(**options))
    require_archive(settings)
    cal = calendar_for(settings)
    last_session = cal.last_complete_session()
    first_known = min((line.trade_date for line in audit.task_lines(Ledger(settings.data_dir))), default=None)
    default_start = settings.start_date or first_known or last_session
    first, last = check_range(
        parse_cli_date(start, "--start") if start else default_start,
        parse_cli_date(end, "--end") if end else last_session,
        last_session,
    )
    gaps = audit.find_gaps(settings.data_dir, cal, first, last, archives=settings.archives(), roots=settings.roots,
                           min_dte=settings.min_dte, max_dte=settings.max_dte)
    if as_json:
        click.echo(json.dumps({"start": first, "end": last, "gaps": [dict(vars(g), key=g.key) for g in gaps]}, indent=2, default=str))
    else:
        for gap in gaps:
            click.echo(f"{gap.key:<34} {gap.state}{': ' + gap.error if gap.error else ''}")
        click.echo(f"{len(gaps)} gap(s) in {first} .. {last}" + ("; fill them with: spxdl backfill" if gaps else ""), err=True)
    if gaps:
        raise Abort("", EXIT_INCOMPLETE)


@cli.command("verify", epilog=EXIT_CODES_HELP)
@click.option("--start", help="First trade date to check (default: all).")
@click.option("--end", help="Last trade date to check (default: all).")
@click.option("--repair", is_flag=True, help="Move bad files aside, remove stale temp files, rebuild the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@terminal_options
@click.pass_context
@handle_errors
def verify_command(ctx: click.Context, start: str | None, end: str | None, repair: bool, as_json: bool,
                   terminal_url: str | None, api: str | None, data_dir: Path | None) -> None:
    """Check every file's sha256, footer, row count and schema version against the ledger.

    Also lists data files the ledger does not know and temp files of unfinished writes. Exit 0
    when all is well, 1 when problems were found (after --repair: re-run spxdl to refetch).
    """
    from spxdl import audit

    settings = build_settings(ctx, file_logging=repair, **archive_flags(terminal_url, api, data_dir))
    require_archive(settings)
    first = parse_cli_date(start, "--start") if start else None
    last = parse_cli_date(end, "--end") if end else None
    report = audit.verify_archive(settings.data_dir, first, last)
    repaired = audit.repair(settings.data_dir, report) if repair else None
    if as_json:
        payload = {"ok": report.ok, "tasks": report.tasks, "files": report.files, "rows": report.rows,
                   "bytes": report.bytes, "problems": [vars(p) for p in report.problems], "repair": repaired,
                   "older_schema": [{"path": path, "schema_version": version} for path, version in report.older_schema]}
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        for problem in report.problems:
            click.echo(f"{problem.kind.upper():<10} {problem.path}: {problem.detail}")
        for path, version in report.older_schema:
            click.echo(f"{'OLDER':<10} {path}: schema version {version} (sound; spxdl --force downloads it again "
                       "with today's columns, or read with union_by_name)")
        click.echo(f"checked {report.tasks} task(s), {report.files} file(s), {report.rows:,} rows, "
                   f"{human_bytes(report.bytes)}: {len(report.problems)} problem(s)")
        if repaired is not None:
            click.echo(f"repair: moved {len(repaired['moved_aside'])} bad file(s) aside, removed "
                       f"{len(repaired['temp_removed'])} temp file(s), rebuilt the ledger; run `spxdl resume` to refetch")
        elif not report.ok:
            click.echo("fix with: spxdl verify --repair, then spxdl resume", err=True)
    if not report.ok:
        raise Abort("", EXIT_INCOMPLETE)
