"""The commands that download: run (alias download), backfill, update and resume."""

from __future__ import annotations

import contextlib
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from spxdl import audit, config, engine, errors, trading_calendar
from spxdl.cli.base import EXIT_CODES_HELP, EXIT_OK, EXIT_TRY_LATER, Abort, cli, handle_errors
from spxdl.cli.options import (
    CONFIRM_TRADING_DAYS,
    SIM_DEMO_DAYS,
    SIM_DEMO_MAX_DTE,
    build_settings,
    calendar_for,
    configure_logging,
    refuse_simulated_direct,
    check_range,
    download_flags,
    download_options,
    parse_cli_date,
    require_archive,
    resolve_run_dates,
    terminal_calendar,
)
from spxdl.cli.progress import make_progress
from spxdl.cli.render import print_plan, print_summary, summary_exit_code
from spxdl.engine.planning import days_back_range, update_range
from spxdl.engine.records import Plan
from spxdl.ledger import Ledger

log = logging.getLogger(__name__)

SIM_DATA_DIR = Path("sim-data")


@contextlib.contextmanager
def simulated_terminal(settings: config.Settings, enabled: bool, profile: str,
                       flavor: str = "terminal") -> Iterator[config.Settings]:
    """``settings``, pointed at the built-in simulator on a free loopback port for ``--simulate``.

    The simulator speaks both APIs on one port, so ``--api`` (or the config's) still decides; the
    thetadatadx flavour speaks v3 only.
    """
    if not enabled:
        yield settings
        return
    refuse_simulated_direct(settings)
    from spxdl.simulator import Simulator  # only here: the download path never imports the simulator

    with Simulator(profile=profile, flavor=flavor) as sim:
        log.info("simulated %s (%s profile) at %s", "thetadatadx-server" if flavor == "thetadatadx" else "terminal",
                 profile, sim.url)
        yield settings.replace(terminal_url=sim.url)


def simulation_settings(ctx: click.Context, simulate: bool, dry_run: bool, flags: dict[str, Any]) -> config.Settings:
    """The command's settings; a simulated run the direct source cannot make is refused before anything is made."""
    settings = build_settings(ctx, file_logging=False, **flags)
    if simulate:
        refuse_simulated_direct(settings)
    if not dry_run:
        configure_logging(ctx, settings, file_logging=True)
    return settings


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


DatesFor = Callable[[config.Settings, trading_calendar.TradingCalendar, date], "tuple[date, date] | None"]


def asked_span(settings: config.Settings, dates: DatesFor) -> tuple[date, date]:
    """The range ``dates`` gives by ``settings``' calendar, or update's range when it gives none."""
    cal = calendar_for(settings)
    last_session = cal.last_complete_session()
    return dates(settings, cal, last_session) or update_range(settings, cal, last_session, settings.lookback)


def span_of(settings: config.Settings, dates: DatesFor) -> tuple[config.Settings, tuple[date, date]]:
    """The range asked for (update's when no dates were given), by the calendar in effect.

    With the terminal's calendar in charge, the years around today are asked first, and the years
    of an earlier range once it is known.
    """
    this_year = trading_calendar.today_ny().year
    settings = terminal_calendar(settings, range(this_year - 1, this_year + 2))
    span = asked_span(settings, dates)
    if span[0].year < this_year - 1 and settings.calendar_source == "terminal":
        settings = terminal_calendar(settings, range(span[0].year, this_year - 1))
        span = asked_span(settings, dates)
    return settings, span


def run_plan(ctx: click.Context, plan: Plan, settings: config.Settings, *, dry_run: bool, yes: bool) -> None:
    """Print a dry-run plan, or run it with progress and a summary; exit with the summary's code."""
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


def run_like(
    ctx: click.Context,
    *,
    dates: DatesFor,
    force: bool,
    dry_run: bool,
    yes: bool,
    simulate: bool,
    sim_profile: str,
    sim_flavor: str = "terminal",
    capture: Path | None = None,
    **options: Any,
) -> None:
    """Shared body of run, backfill and update: settings, date range, then the download."""
    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = simulation_settings(ctx, simulate, dry_run, download_flags(**options))
    if simulate and "max_dte" not in settings.sources:
        settings = settings.replace(max_dte=settings.min_dte + SIM_DEMO_MAX_DTE)
    if capture is not None:
        settings = settings.replace(capture_dir=capture)
    with simulated_terminal(settings, simulate, sim_profile, sim_flavor) as settings:
        settings, (start, end) = span_of(settings, dates)
        plan = engine.plan(settings, start, end, force=force)
        run_plan(ctx, plan, settings, dry_run=dry_run, yes=yes)


@cli.command("run", epilog=EXIT_CODES_HELP)
@click.option("--capture", type=click.Path(path_type=Path, file_okay=False),
              help="Write the terminal's first answer of each endpoint, byte for byte, into this directory "
                   "(to send with a report; see spxdl doctor --capture).")
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


@cli.command("resume", epilog=EXIT_CODES_HELP)
@download_options
@click.pass_context
@handle_errors
def resume_command(ctx: click.Context, force: bool, dry_run: bool, yes: bool, simulate: bool, sim_profile: str,
                   sim_flavor: str, **options: Any) -> None:
    """Finish everything the ledger holds as incomplete, failed or without data."""
    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = simulation_settings(ctx, simulate, dry_run, download_flags(**options))
    require_archive(settings)
    wanted = audit.incomplete_tasks(Ledger(settings.data_dir))
    if not wanted:
        click.echo(f"Nothing to resume: every task in {settings.data_dir} is complete.", err=True)
        return
    days = sorted(task.trade_date for task in wanted)
    with simulated_terminal(settings, simulate, sim_profile, sim_flavor) as settings:
        this_year = trading_calendar.today_ny().year
        settings = terminal_calendar(settings, range(min(days[0].year, this_year - 1), this_year + 2))
        plan = engine.plan(settings, days[0], days[-1], force=force, only=wanted)
        run_plan(ctx, plan, settings, dry_run=dry_run, yes=yes)
