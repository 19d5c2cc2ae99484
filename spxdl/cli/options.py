"""Options shared by commands, the settings they build, and the dates they take."""

from __future__ import annotations

import functools
import logging
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

import click

from spxdl import calendars, config, errors, logs, storage, trading_calendar
from spxdl.engine.planning import days_back_range
from spxdl.engine.shared import client_for

log = logging.getLogger(__name__)

SELECTION_FIELDS = ("roots", "datasets", "interval", "min_dte", "max_dte")
CONFIRM_TRADING_DAYS = 30
# `--simulate` with nothing else asked is a demo: small enough to finish within about a minute.
SIM_DEMO_DAYS = 3
SIM_DEMO_MAX_DTE = 3


def terminal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--terminal-url``, ``--api``, ``--source`` and ``--data-dir``: every command that touches the terminal or archive."""
    func = click.option("--data-dir", type=click.Path(path_type=Path), help="Archive directory [storage] data_dir.")(func)
    func = click.option("--source", type=click.Choice(["terminal", "direct"]),
                        help="Where data comes from: a terminal (or thetadatadx-server), or ThetaData directly "
                             "through the thetadatadx-py SDK [terminal] source.")(func)
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
        sim_flavor_option(),
    ]
    for option in reversed(options):
        func = option(func)
    return terminal_options(selection_options(func))


def sim_flavor_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--sim-flavor``: whom the simulator of ``--simulate`` answers like."""
    return click.option("--sim-flavor", type=click.Choice(["terminal", "thetadatadx"]), default="terminal",
                        show_default=True, help="For --simulate: answer like the ThetaData Terminal or like "
                                                "thetadatadx-server (v3 only).")


def refuse_simulated_direct(settings: config.Settings) -> None:
    """``--simulate`` cannot stand in for ThetaData behind the SDK: one line saying why."""
    if settings.source == "direct":
        raise errors.ConfigError(
            "--simulate cannot serve [terminal] source = direct: the thetadatadx SDK reaches market data only over "
            "TLS, trusting only the public authorities compiled into it, so no loopback simulator can stand in "
            "for ThetaData (docs/direct.md); use --simulate with --source terminal (--sim-flavor thetadatadx "
            "answers like thetadatadx-server)",
            key="source",
        )


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
    source: str | None = None,
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
        "source": source,
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


def archive_flags(terminal_url: str | None, api: str | None, data_dir: Path | None,
                  source: str | None = None) -> dict[str, Any]:
    """The flags of ``terminal_options`` keyed by Settings field."""
    return download_flags(terminal_url=terminal_url, api=api, data_dir=data_dir, source=source)


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


def calendar_for(settings: config.Settings) -> trading_calendar.TradingCalendar:
    return settings.calendar()


def terminal_calendar(settings: config.Settings, years: Iterable[int], *, required: bool = True) -> config.Settings:
    """``settings`` with the terminal's calendar in charge of ``years`` when ``[calendar] source = terminal``.

    A command that only reads (``required=False``) goes on with spxdl's calendar, saying so, when
    the terminal cannot be asked.
    """
    if settings.calendar_source != "terminal":
        return settings
    try:
        with client_for(settings, threads=1) as client:
            return calendars.with_terminal_calendar(settings, client, years)
    except errors.TerminalError as exc:
        if required:
            raise
        log.warning("[calendar] source = terminal, but the terminal could not be asked (%s); "
                    "using spxdl's calendar", exc)
        return settings


def require_archive(settings: config.Settings) -> None:
    """Commands that read the archive say clearly when there is none yet."""
    if not settings.data_dir.is_dir():
        raise errors.ConfigError(
            f"no archive at {settings.data_dir}; download something first (spxdl run), "
            "or point --data-dir at an existing one"
        )


def read_only(selection: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options and settings of a command that only reads: ``--terminal-url``, ``--api``, ``--source``, ``--data-dir``
    (and the selection options with ``selection``), loaded into a ``settings`` argument.

    Nothing is created on disk (no log file): reading an archive must not change it.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, terminal_url: str | None, api: str | None, source: str | None, data_dir: Path | None,
                    **kwargs: Any) -> Any:
            picked = {name: kwargs.pop(name) for name in SELECTION_FIELDS if name in kwargs} if selection else {}
            flags = download_flags(terminal_url=terminal_url, api=api, source=source, data_dir=data_dir, **picked)
            settings = build_settings(click.get_current_context(), file_logging=False, **flags)
            return func(*args, settings=settings, **kwargs)

        wrapper = terminal_options(wrapper)
        return selection_options(wrapper) if selection else wrapper

    return decorate

