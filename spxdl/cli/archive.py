"""The commands that read the archive: status, gaps and verify."""

from __future__ import annotations

import json
from pathlib import Path

import click

from spxdl import audit, quality, storage, verify
from spxdl.cli.base import EXIT_CODES_HELP, EXIT_INCOMPLETE, Abort, cli, handle_errors
from spxdl.cli.options import (
    build_settings,
    download_flags,
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
from spxdl.archive_fs import Archive, Location
from spxdl.errors import ConfigError
from spxdl.verify import ContentCheck
from spxdl.cli.render import (
    check_line,
    describe_archive,
    describe_expirations,
    describe_run,
    human_bytes,
    human_duration,
)
from spxdl.engine.shared import ledger_for
from spxdl.ledger import RunRecordState
from spxdl.urls import redact


@cli.command("status", epilog=EXIT_CODES_HELP)
@click.option("--checks", "show_checks", is_flag=True,
              help="Also what each check counted, per archive and per task, with the share of the rows it touched.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (check counts always included).")
@click.pass_context
@handle_errors
@read_only()
def status_command(ctx: click.Context, show_checks: bool, as_json: bool, settings: Settings) -> None:
    """Per-task table (state, expirations, rows, size, duration, error), totals and the last complete day.

    Per archive: files, rows, bytes, when data last arrived, the last complete trade date and the
    validation mode; a task a run works on now shows how many of its expirations are done.
    """
    require_archive(settings)
    report = audit.status_report(settings.data_dir, ledger=ledger_for(settings))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(f"{'task':<34} {'state':<11} {'expirations':<24} {'rows':>12} {'size':>10} {'time':>8}  error")
    for line in report["tasks"]:
        took = human_duration(line["seconds"]) if line["seconds"] is not None else "-"
        state = line["state"] + ("*" if line["claimed_by"] else "")
        click.echo(f"{line['key']:<34} {state:<11} {describe_expirations(line):<24} {line['rows']:>12,} "
                   f"{human_bytes(line['bytes']):>10} {took:>8}  {line['error'] or ''}")
    totals = report["totals"]
    states = ", ".join(f"{count} {state}" for state, count in sorted(totals["states"].items())) or "none"
    click.echo(f"\n{totals['tasks']} task(s): {states}; {totals['rows']:,} rows; {human_bytes(totals['bytes'])}")
    click.echo(f"last complete day: {report['last_complete_day'] or 'none yet'}   (* = claimed by a run now)")
    click.echo("")
    for name, archive in report["archives"].items():
        click.echo(describe_archive(name, archive))
    if show_checks:
        print_checks(report)
    running = [run for run in report["runs"] if run["state"] == RunRecordState.RUNNING]
    interrupted = [run for run in report["runs"] if run not in running]
    for runs, title in ((interrupted, "interrupted run(s); `spxdl resume` finishes them"), (running, "run(s) in progress")):
        if runs:
            click.echo(f"\n{len(runs)} {title}:")
            click.echo("\n".join(f"  {describe_run(run)}" for run in runs))


def print_checks(report: dict) -> None:
    """What each check counted, per archive (with what it counts) and per task."""
    for name, archive in report["archives"].items():
        received = archive["rows"] + archive["dropped"]
        click.echo(f"\nchecks in {name} (validation {archive['validation'] or 'not recorded'}; {received:,} rows "
                   f"received, {archive['dropped']:,} dropped):")
        click.echo("\n".join(f"  {check_line(line, with_what=True)}" for line in archive["checks"])
                   or "  every check counted nothing")
    counted = [line for line in report["tasks"] if line["checks"]]
    if counted:
        click.echo("\nper task:")
    for line in counted:
        checks = quality.check_lines(line["checks"], line["rows"], line["dropped"])
        click.echo(f"  {line['key']:<34} " + ", ".join(check_line(check.as_dict()) for check in checks))


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
@click.argument("paths", nargs=-1)
@click.option("--date", "on", help="One trade date to check.")
@click.option("--start", help="First trade date to check (default: all).")
@click.option("--end", help="Last trade date to check (default: all).")
@click.option("--root", "roots", multiple=True, help="Root(s) to check (default: all); repeat or comma-separate.")
@click.option("--dataset", "datasets", multiple=True,
              help="Dataset(s) to check, every interval's archive (default: all); repeat or comma-separate.")
@click.option("--content", is_flag=True,
              help="Also read every file's rows and run the checks again: report where they differ from the "
                   "ledger's counts.")
@click.option("--repair", is_flag=True, help="Move bad files aside, remove stale temp files, rebuild the ledger.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@terminal_options
@click.pass_context
@handle_errors
def verify_command(ctx: click.Context, paths: tuple[str, ...], on: str | None, start: str | None, end: str | None,
                   roots: tuple[str, ...], datasets: tuple[str, ...], content: bool, repair: bool, as_json: bool,
                   terminal_url: str | None, api: str | None, source: str | None, data_dir: str | None,
                   ledger_dir: Path | None) -> None:
    """Check every file's sha256, footer, row count and schema version against the ledger.

    Also lists data files the ledger does not know and temp files of unfinished writes; with
    --content, each file's rows are checked again and compared with the counts the ledger
    recorded when it was written. PATHS (files or directories in the data dir), --date,
    --start/--end, --root and --dataset check a part of the archive. Exit 0 when all is well, 1
    when problems were found (after --repair: re-run spxdl to refetch).
    """
    settings = build_settings(ctx, file_logging=repair, **download_flags(
        terminal_url=terminal_url, api=api, data_dir=data_dir, source=source, ledger_dir=ledger_dir, roots=roots,
        datasets=datasets))
    if repair and settings.ledger_dir is not None:
        open_log_file(ctx)  # a ledger dir started afresh for an archive elsewhere: the repair builds it
    require_archive(settings)
    resume = suggested(ctx, "resume", simulated=is_simulated(settings))
    ledger = ledger_for(settings)
    selection = verify_selection(settings, ledger.archive, paths, on, start, end)
    checker = ContentCheck(settings.ledger_path, settings.calendar()) if content else None
    report = verify.verify_archive(settings.data_dir, selection, checker, ledger=ledger)
    if repair:
        open_log_file(ctx)
    repaired = verify.repair(settings.data_dir, report, ledger=ledger) if repair else None
    if as_json:
        payload = {"ok": report.ok, "tasks": report.tasks, "files": report.files, "rows": report.rows,
                   "bytes": report.bytes, "seconds": round(report.seconds, 3),
                   "files_per_s": round(report.files_per_second, 1), "rechecked": report.rechecked if content else None,
                   "problems": [vars(p) for p in report.problems], "repair": repaired,
                   "not_compared": [{"path": path, "why": why} for path, why in report.not_compared],
                   "older_schema": [{"path": path, "schema_version": version} for path, version in report.older_schema]}
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_verify_report(ctx, settings, report, content)
        if repaired is not None:
            click.echo(f"repair: moved {len(repaired['moved_aside'])} bad file(s) aside, removed "
                       f"{len(repaired['temp_removed'])} temp file(s), rebuilt the ledger; refetch with: {resume}")
        elif not report.ok:
            click.echo(f"fix with: {suggested(ctx, 'verify', '--repair')}, then {resume}", err=True)
    if not report.ok:
        raise Abort("", EXIT_INCOMPLETE)


def print_verify_report(ctx: click.Context, settings: Settings, report: verify.VerifyReport, content: bool) -> None:
    """One line per problem and older file, then what was checked and how fast."""
    for problem in report.problems:
        click.echo(f"{problem.kind.upper():<10} {problem.path}: {problem.detail}")
    for path, version in report.older_schema:
        click.echo(f"{'OLDER':<10} {path}: schema version {version} (sound: read it with union_by_name)")
    for path, why in report.not_compared:
        click.echo(f"{'UNCHECKED':<10} {path}: rows not compared ({why})")
    if report.older_days:
        days = sorted(report.older_days)
        again = suggested(ctx, "run", "--force", "--start", str(days[0]), "--end", str(days[-1]),
                          simulated=is_simulated(settings))
        click.echo(f"to download them again with today's columns: {again}")
    rechecked = f", rows of {report.rechecked} checked again" if content else ""
    click.echo(f"checked {report.tasks} task(s), {report.files} file(s){rechecked}, {report.rows:,} rows, "
               f"{human_bytes(report.bytes)} in {report.seconds:.1f} s ({report.files_per_second:,.0f} files/s): "
               f"{len(report.problems)} problem(s)")


def verify_selection(settings: Settings, files: Archive, paths: tuple[str, ...], on: str | None, start: str | None,
                     end: str | None) -> verify.Selection:
    """The part of the archive ``verify`` checks; paths must lie in the data dir."""
    if on and (start or end):
        raise ConfigError("give either --date or --start/--end, not both")
    first = parse_cli_date(on or start, "--date" if on else "--start") if on or start else None
    last = parse_cli_date(on or end, "--date" if on else "--end") if on or end else None
    if first and last and last < first:
        raise ConfigError(f"the end date {last} is before the start date {first}; swap them")
    return verify.Selection(
        start=first, end=last,
        datasets=frozenset(settings.datasets if from_flag(settings, "datasets") else ()),
        roots=frozenset(settings.roots if from_flag(settings, "roots") else ()),
        paths=tuple(selected_location(settings, files, path) for path in paths),
    )


def selected_location(settings: Settings, files: Archive, path: str) -> Location:
    """A file or directory given to ``verify``, as a location in the data dir (absolute on disk); one line if it
    is not there or lies outside (an object store's: its URI, ``s3://bucket/prefix/...``)."""
    if settings.data_is_local:
        local = Path(path).absolute()
        if not local.exists():
            raise ConfigError(f"{path} does not exist; give a file or directory of the data dir {settings.data_dir}")
        if not (local == files.root.absolute() or files.root.absolute() in local.parents):
            raise ConfigError(f"{path} is not in the data dir {settings.data_dir}; {data_dir_hint(local)}")
        return local
    location = files.location(path.rstrip("/"))
    if not (location == files.root or files.root in location.parents):
        raise ConfigError(f"{redact(path)} is not in the data dir {settings.data_dir_shown}; give an object or prefix "
                          f"under it ({files.show(files.root)}/...)")
    if not files.exists(location) and not files.names(location):
        raise ConfigError(f"{redact(path)} does not exist in {settings.data_dir_shown}; give an object or prefix of it")
    return location


def from_flag(settings: Settings, name: str) -> bool:
    """Whether setting ``name`` was given on the command line (verify checks everything unless told)."""
    return settings.sources.get(name, "").startswith("flag")


def data_dir_hint(path: Path) -> str:
    """How to point verify at the data dir holding ``path``."""
    holder = next((parent for parent in path.absolute().parents if storage.status_path(parent).exists()), None)
    return f"pass --data-dir {holder}" if holder else "pass --data-dir with the data dir that holds it"
