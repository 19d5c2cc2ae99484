"""The commands that download: run (alias download), backfill, update and resume."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any, Callable

import click

from spxdl import audit, config, engine, errors, storage, trading_calendar
from spxdl.cli.base import (
    EXIT_CODES_HELP,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_TRY_LATER,
    Abort,
    cli,
    handle_errors,
    output_may_vanish,
)
from spxdl.cli.options import (
    CONFIRM_TRADING_DAYS,
    SIM_DEMO_DAYS,
    archive_defaults,
    build_settings,
    calendar_for,
    check_range,
    download_flags,
    download_options,
    open_log_file,
    parse_cli_date,
    refuse_simulated_direct,
    require_archive,
    resolve_run_dates,
    simulate_data_dir,
    simulated_terminal,
    suggested,
    terminal_calendar,
)
from spxdl.cli.notifying import Told, told
from spxdl.cli.progress import make_progress
from spxdl.cli.render import describe_run, human_bytes, print_plan, print_summary, summary_exit_code
from spxdl.engine.planning import days_back_range, skipped_days, update_range
from spxdl.engine.records import Plan
from spxdl.engine.shared import ledger_for
from spxdl.ledger import RunBook

log = logging.getLogger(__name__)


def confirm_large_range(plan: Plan, settings: config.Settings, yes: bool) -> None:
    """Ask before a long range when a person is at the keyboard, naming its size; No unless they say yes.

    Scripts (no TTY) are not asked.
    """
    days = len({task.trade_date for task in plan.tasks})
    if yes or days <= CONFIRM_TRADING_DAYS or not sys.stdin.isatty():
        return
    figures = engine.estimate(plan, settings)
    question = (f"This range covers {days} trading days: {len(plan.tasks)} task(s), about {figures['requests']:,} "
                f"requests, {figures['rows']:,} rows and {human_bytes(figures['bytes'])} on disk. Download them?")
    if not click.confirm(question, default=False, err=True):
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


def warn_if_relative(settings: config.Settings) -> None:
    """Under cron or systemd (no terminal), say where a relative data (or ledger) dir lands: where the job was started."""
    what, key = ("data dir", "data_dir") if settings.data_is_local else ("ledger dir", "ledger_dir")
    where = settings.data_dir if settings.data_is_local else settings.ledger_path
    if where.is_absolute() or sys.stdin.isatty():
        return
    log.warning("the %s %s is relative: this run writes to %s (relative to where it was started); set an "
                "absolute [storage] %s for timers and cron", what, where, where.absolute(), key)


def run_plan(ctx: click.Context, plan: Plan, settings: config.Settings, *, dry_run: bool, yes: bool,
             gathered: Told) -> None:
    """Print a dry-run plan, or run it with progress and a summary; exit with the summary's code."""
    code = run_plan_code(ctx, plan, settings, dry_run=dry_run, yes=yes, gathered=gathered)
    if code:
        raise Abort("", code)


def run_plan_code(ctx: click.Context, plan: Plan, settings: config.Settings, *, dry_run: bool, yes: bool,
                  gathered: Told) -> int:
    """``run_plan`` without the exit: the code its summary calls for; what it did goes into ``gathered``."""
    if dry_run:
        print_plan(plan, engine.estimate(plan, settings), settings, skipped_days(plan, settings.calendar()))
        return EXIT_OK
    if not plan.tasks:
        gathered.arm(settings, (plan.start, plan.end))
        held = f"; {len(plan.held)} held by another live run" if plan.held else ""
        click.echo(f"Nothing to do for {plan.start} .. {plan.end}: {len(plan.done)} task(s) already complete{held}.", err=True)
        return EXIT_TRY_LATER if plan.held else EXIT_OK
    confirm_large_range(plan, settings, yes)
    gathered.arm(settings, (plan.start, plan.end))
    open_log_file(ctx)
    warn_if_relative(settings)
    progress = make_progress(ctx, plan, settings)
    try:
        summary = engine.run(plan, settings, on_event=progress.on_event, on_tick=progress.tick)
    finally:
        progress.close()
    gathered.summaries.append(summary)
    with output_may_vanish():
        print_summary(summary, plan, settings.data_dir if settings.data_is_local else settings.data_dir_shown)
    return summary_exit_code(summary, plan)


def run_like(
    ctx: click.Context,
    *,
    dates: DatesFor,
    force: bool,
    dry_run: bool,
    yes: bool,
    simulate: bool,
    sim_profile: str | None,
    sim_flavor: str = "terminal",
    capture: Path | None = None,
    **options: Any,
) -> None:
    """Shared body of run, backfill and update: settings, date range, then the download (told to notify)."""
    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = build_settings(ctx, file_logging=not dry_run, **download_flags(**options))
    if simulate:
        refuse_simulated_direct(settings)
    settings, sim_profile = archive_defaults(settings, simulate=simulate, sim_profile=sim_profile)
    if capture is not None:
        settings = settings.replace(capture_dir=capture)
    with told(ctx.command.name) as gathered, simulated_terminal(settings, simulate, sim_profile, sim_flavor) as settings:
        settings, (start, end) = span_of(settings, dates)
        plan = engine.plan(settings, start, end, force=force)
        run_plan(ctx, plan, settings, dry_run=dry_run, yes=yes, gathered=gathered)


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
        return check_range(cal, begin, finish, last_session)

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
def resume_command(ctx: click.Context, force: bool, dry_run: bool, yes: bool, simulate: bool, sim_profile: str | None,
                   sim_flavor: str, **options: Any) -> None:
    """Finish every interrupted run (days it never started included) and every unfinished task.

    A run stopped or killed part-way is finished with its own roots, datasets, interval and
    DTE window; other incomplete, failed or no-data tasks with the settings and flags given here.
    """
    options["data_dir"] = simulate_data_dir(simulate, options.get("data_dir"))
    settings = build_settings(ctx, file_logging=not dry_run, **download_flags(**options))
    if simulate:
        refuse_simulated_direct(settings)
    require_archive(settings)
    settings, sim_profile = archive_defaults(settings, simulate=simulate, sim_profile=sim_profile)
    if next(storage.iter_task_dirs(settings.ledger_path), None) is None:
        click.echo(f"Nothing to resume: {settings.data_dir_shown} holds no task yet; download first with: "
                   f"{suggested(ctx, 'run')}", err=True)
        return
    ledger = ledger_for(settings)
    runs = RunBook(ledger).unfinished()
    wanted = audit.incomplete_tasks(ledger)
    if not runs and not wanted:
        click.echo(f"Nothing to resume: every task in {settings.data_dir_shown} is complete.", err=True)
        return
    for run in runs:
        click.echo(f"resuming {describe_run(run.as_dict())}", err=True)
    with told(ctx.command.name) as gathered, simulated_terminal(settings, simulate, sim_profile, sim_flavor) as settings:
        first = min([task.trade_date for task in wanted] + [date.fromisoformat(run.record["start"]) for run in runs])
        this_year = trading_calendar.today_ny().year
        settings = terminal_calendar(settings, range(min(first.year, this_year - 1), this_year + 2))
        codes = []
        for chosen, plan in engine.resume_plans(settings, runs, wanted, force=force):
            code = run_plan_code(ctx, plan, chosen, dry_run=dry_run, yes=yes, gathered=gathered)
            if code not in (EXIT_OK, EXIT_INCOMPLETE, EXIT_TRY_LATER):  # stopped: start nothing more
                raise Abort("", code)
            codes.append(code)
        code = EXIT_INCOMPLETE if EXIT_INCOMPLETE in codes else EXIT_TRY_LATER if EXIT_TRY_LATER in codes else EXIT_OK
        if code:
            raise Abort("", code)
