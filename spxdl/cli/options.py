"""Options shared by commands, and ``read_only()``: the options and settings of a command that only reads.

Commands import from here what they share: the option decorators, and (built in the modules
below this one, re-exported) the settings they build (``settings``), the dates they take
(``dates``) and the commands they suggest (``suggesting``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from spxdl.cli.dates import (
    calendar_for,
    check_range,
    no_session_message,
    parse_cli_date,
    resolve_run_dates,
    terminal_calendar,
)
from spxdl.cli.settings import (
    SIM_DATA_DIR,
    SIM_DEFAULT_PROFILE,
    SIM_DEMO_DAYS,
    SIM_DEMO_MAX_DTE,
    SIM_DEMO_MAX_DTE_BY_PROFILE,
    SIM_PROFILES,
    archive_defaults,
    archive_flags,
    build_settings,
    comma_values,
    configure_logging,
    download_flags,
    is_simulated,
    is_window,
    open_log_file,
    recorded_shapes,
    refuse_simulated_direct,
    require_archive,
    simulate_data_dir,
    simulated_terminal,
)
from spxdl.cli.suggesting import suggested

__all__ = [
    "CONFIRM_TRADING_DAYS", "SELECTION_FIELDS", "SIM_DATA_DIR", "SIM_DEFAULT_PROFILE", "SIM_DEMO_DAYS",
    "SIM_DEMO_MAX_DTE", "SIM_DEMO_MAX_DTE_BY_PROFILE", "SIM_PROFILES",
    "archive_defaults", "archive_flags", "build_settings", "calendar_for", "check_range", "comma_values",
    "configure_logging", "download_flags", "download_options", "is_simulated", "is_window", "no_session_message",
    "open_log_file", "parse_cli_date", "read_only", "recorded_shapes", "refuse_simulated_direct", "require_archive",
    "resolve_run_dates", "selection_options", "sim_flavor_option", "simulate_data_dir", "simulate_options",
    "simulated_terminal", "suggested", "terminal_calendar", "terminal_options",
]

SELECTION_FIELDS = ("roots", "datasets", "interval", "min_dte", "max_dte")
CONFIRM_TRADING_DAYS = 30


def terminal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--terminal-url``, ``--api``, ``--source``, ``--data-dir`` and ``--ledger-dir``: every command that touches
    the terminal or archive."""
    func = click.option("--ledger-dir", type=click.Path(path_type=Path),
                        help="Where the ledger lives (lock, status, runs, logs): a local or shared POSIX directory; "
                             "default: the data dir, which must then be local [storage] ledger_dir.")(func)
    func = click.option("--data-dir",
                        help="Archive directory, or an object store such as s3://bucket/prefix (credentials from "
                             "AWS_* variables or ~/.aws) [storage] data_dir.")(func)
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
        click.option("--workers", type=int, help="Worker processes (default: from --max-in-flight)."),
        click.option("--threads", type=int, help="Download threads per worker (default: 2, or from --max-in-flight with --workers)."),
        click.option("--max-in-flight", type=int, help="Requests in flight across all workers (terminal's limit)."),
        click.option("--executor", help="Where the tasks run: process (this machine's worker processes) or "
                                        "dask://HOST:PORT (that Dask scheduler's workers) [engine] executor."),
        click.option("--force", is_flag=True, help="Download again even what is complete; files are replaced atomically."),
        click.option("--dry-run", is_flag=True, help="Print the plan with estimated requests, rows and bytes; write nothing."),
        click.option("--yes", "-y", is_flag=True, help=f"Do not ask before ranges over {CONFIRM_TRADING_DAYS} trading days."),
    ]
    for option in reversed(options):
        func = option(func)
    return terminal_options(selection_options(simulate_options(func)))


def simulate_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--simulate``, ``--sim-profile`` and ``--sim-flavor``: the built-in simulated terminal instead of a real one."""
    func = sim_flavor_option()(func)
    func = click.option(
        "--sim-profile", type=click.Choice(SIM_PROFILES),
        help="Simulator profile: tiny (a few strikes), realistic (full SPX chains) or dense (4x the strikes). "
             f"Default: the one the data dir was made with, else {SIM_DEFAULT_PROFILE}.")(func)
    func = click.option(
        "--simulate", is_flag=True,
        help=f"Use the built-in simulated terminal, with ./sim-data as the data dir (with no dates or DTE given: "
             f"the last {SIM_DEMO_DAYS} sessions, DTE 0..{SIM_DEMO_MAX_DTE}, 0..7 for the tiny profile).")(func)
    return func


def sim_flavor_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--sim-flavor``: whom the simulator of ``--simulate`` answers like."""
    return click.option("--sim-flavor", type=click.Choice(["terminal", "thetadatadx"]), default="terminal",
                        show_default=True, help="For --simulate: answer like the ThetaData Terminal or like "
                                                "thetadatadx-server (v3 only).")


def read_only(selection: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options and settings of a command that only reads: ``--terminal-url``, ``--api``, ``--source``, ``--data-dir``
    (and the selection options with ``selection``), loaded into a ``settings`` argument.

    Nothing is created on disk (no log file): reading an archive must not change it.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, terminal_url: str | None, api: str | None, source: str | None, data_dir: str | None,
                    ledger_dir: Path | None, **kwargs: Any) -> Any:
            picked = {name: kwargs.pop(name) for name in SELECTION_FIELDS if name in kwargs} if selection else {}
            flags = download_flags(terminal_url=terminal_url, api=api, source=source, data_dir=data_dir,
                                   ledger_dir=ledger_dir, **picked)
            settings = build_settings(click.get_current_context(), file_logging=False, **flags)
            settings, _ = archive_defaults(settings)
            return func(*args, settings=settings, **kwargs)

        wrapper = terminal_options(wrapper)
        return selection_options(wrapper) if selection else wrapper

    return decorate
