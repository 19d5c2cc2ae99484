"""The commands that read the archive: status, gaps and verify."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spxdl import audit
from spxdl.cli.base import EXIT_CODES_HELP, EXIT_INCOMPLETE, Abort, cli, handle_errors
from spxdl.cli.options import (
    archive_flags,
    build_settings,
    calendar_for,
    check_range,
    is_simulated,
    open_log_file,
    parse_cli_date,
    read_only,
    require_archive,
    terminal_calendar,
    suggested,
    terminal_options,
)
from spxdl.config import Settings
from spxdl.cli.render import describe_run, human_bytes, human_duration
from spxdl.engine.shared import ledger_for
from spxdl.ledger import RunRecordState


@cli.command("status", epilog=EXIT_CODES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
@read_only()
def status_command(ctx: click.Context, as_json: bool, settings: Settings) -> None:
    """Per-task table (state, expirations, rows, size, duration, error), totals and the last complete day."""
    require_archive(settings)
    report = audit.status_report(settings.data_dir, ledger=ledger_for(settings))
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
    running = [run for run in report["runs"] if run["state"] == RunRecordState.RUNNING]
    interrupted = [run for run in report["runs"] if run not in running]
    for runs, title in ((interrupted, "interrupted run(s); `spxdl resume` finishes them"), (running, "run(s) in progress")):
        if runs:
            click.echo(f"\n{len(runs)} {title}:")
            click.echo("\n".join(f"  {describe_run(run)}" for run in runs))


@cli.command("gaps", epilog=EXIT_CODES_HELP)
@click.option("--start", help="First day (default: [download] start_date, else the archive's first day).")
@click.option("--end", help="Last day (default: the latest complete session).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
@read_only(selection=True)
def gaps_command(ctx: click.Context, start: str | None, end: str | None, as_json: bool, settings: Settings) -> None:
    """Trading days without complete data for the configured roots, datasets and DTE window.

    Exit 0 when there is no gap, 1 when there are gaps (so scripts can act on it).
    """
    require_archive(settings)
    cal = calendar_for(settings)
    last_session = cal.last_complete_session()
    first_known = min((line.trade_date for line in audit.task_lines(ledger_for(settings))), default=None)
    default_start = settings.start_date or first_known or last_session
    first, last = check_range(
        cal,
        parse_cli_date(start, "--start") if start else default_start,
        parse_cli_date(end, "--end") if end else last_session,
        last_session,
    )
    cal = calendar_for(terminal_calendar(settings, range(first.year, last.year + 1), required=False))
    gaps = audit.find_gaps(settings.data_dir, cal, first, last, archives=settings.archives(), roots=settings.roots,
                           min_dte=settings.min_dte, max_dte=settings.max_dte, ledger=ledger_for(settings))
    if as_json:
        click.echo(json.dumps({"start": first, "end": last, "gaps": [dict(vars(g), key=g.key) for g in gaps]}, indent=2, default=str))
    else:
        for gap in gaps:
            click.echo(f"{gap.key:<34} {gap.state}{': ' + gap.error if gap.error else ''}")
        fill = ""
        if gaps:
            days = sorted(gap.trade_date for gap in gaps)
            command = suggested(ctx, "backfill", "--from", str(days[0]), "--to", str(days[-1]), simulated=is_simulated(settings))
            fill = f"; fill them with: {command}"
        click.echo(f"{len(gaps)} gap(s) in {first} .. {last}{fill}", err=True)
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
                   terminal_url: str | None, api: str | None, source: str | None, data_dir: str | None,
                   ledger_dir: Path | None) -> None:
    """Check every file's sha256, footer, row count and schema version against the ledger.

    Also lists data files the ledger does not know and temp files of unfinished writes. Exit 0
    when all is well, 1 when problems were found (after --repair: re-run spxdl to refetch).
    """

    settings = build_settings(ctx, file_logging=repair, **archive_flags(terminal_url, api, data_dir, source, ledger_dir))
    if repair and settings.ledger_dir is not None:
        open_log_file(ctx)  # a ledger dir started afresh for an archive elsewhere: the repair builds it
    require_archive(settings)
    resume = suggested(ctx, "resume", simulated=is_simulated(settings))
    first = parse_cli_date(start, "--start") if start else None
    last = parse_cli_date(end, "--end") if end else None
    ledger = ledger_for(settings)
    report = audit.verify_archive(settings.data_dir, first, last, ledger=ledger)
    if repair:
        open_log_file(ctx)
    repaired = audit.repair(settings.data_dir, report, ledger=ledger) if repair else None
    if as_json:
        payload = {"ok": report.ok, "tasks": report.tasks, "files": report.files, "rows": report.rows,
                   "bytes": report.bytes, "problems": [vars(p) for p in report.problems], "repair": repaired,
                   "older_schema": [{"path": path, "schema_version": version} for path, version in report.older_schema]}
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        for problem in report.problems:
            click.echo(f"{problem.kind.upper():<10} {problem.path}: {problem.detail}")
        for path, version in report.older_schema:
            click.echo(f"{'OLDER':<10} {path}: schema version {version} (sound: read it with union_by_name)")
        if report.older_days:
            days = sorted(report.older_days)
            again = suggested(ctx, "run", "--force", "--start", str(days[0]), "--end", str(days[-1]),
                              simulated=is_simulated(settings))
            click.echo(f"to download them again with today's columns: {again}")
        click.echo(f"checked {report.tasks} task(s), {report.files} file(s), {report.rows:,} rows, "
                   f"{human_bytes(report.bytes)}: {len(report.problems)} problem(s)")
        if repaired is not None:
            click.echo(f"repair: moved {len(repaired['moved_aside'])} bad file(s) aside, removed "
                       f"{len(repaired['temp_removed'])} temp file(s), rebuilt the ledger; refetch with: {resume}")
        elif not report.ok:
            click.echo(f"fix with: {suggested(ctx, 'verify', '--repair')}, then {resume}", err=True)
    if not report.ok:
        raise Abort("", EXIT_INCOMPLETE)
