"""How results look: the end-of-run summary, the dry-run plan, sizes and durations, the exit code of a run."""

from __future__ import annotations

import functools
import signal
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from spxdl import config
from spxdl.cli.base import EXIT_INCOMPLETE, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_TRY_LATER, exit_code_for, fix_hint
from spxdl.engine.records import Plan, ResultState, RunSummary


def summary_exit_code(summary: RunSummary, plan: Plan) -> int:
    """0 complete; 130/143 interrupted; 1 failed, partial or no data; 75 only held tasks left."""
    if summary.interrupted is not None:
        return EXIT_SIGTERM if summary.interrupted == signal.SIGTERM else EXIT_SIGINT
    if summary.stopped_by is not None:
        return exit_code_for(summary.stopped_by)
    unfinished = any(result.state not in (ResultState.SUCCESS, ResultState.HELD) for result in summary.results)
    if unfinished or summary.not_started:
        return EXIT_INCOMPLETE
    if summary.held:
        return EXIT_TRY_LATER
    return EXIT_OK


def source_line(api: str | None, simulated: bool | None) -> str:
    """Where a run's data came from, in a few words."""
    if not api:
        return "no terminal needed"
    if api == "direct":
        return "ThetaData directly, thetadatadx SDK"
    return f"{'simulated' if simulated else 'real'} terminal, API {api}"


def print_summary(summary: RunSummary, plan: Plan, data_dir: Path | str | None = None) -> None:
    """The end-of-run report on stderr: where, counts, volume, time, the slowest and the failed tasks."""
    totals = summary.totals()
    states = summary.by_state()
    echo = functools.partial(click.echo, err=True)
    source = source_line(summary.api, summary.simulated)
    shown = data_dir.absolute() if isinstance(data_dir, Path) else data_dir  # a URI comes already redacted
    into = f" into {shown}" if data_dir is not None else ""
    echo(f"spxdl: {plan.start} .. {plan.end}{into} ({source})")
    echo("  tasks: " + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
         + f"; {len(plan.done)} already complete; {summary.held} held by another run")
    echo(f"  rows {totals['rows']:,}; {human_bytes(totals['bytes'])} written; "
         f"{totals['seconds']:.1f} s; {totals['rows_per_s']:,.0f} rows/s; {totals['retries']} retries")
    exps = totals["expirations"]
    if exps:
        echo("  expirations: " + ", ".join(f"{count} {state}" for state, count in sorted(exps.items())))
    from spxdl.checks import OBSERVATIONS  # here: checks loads Arrow's compute, which a summary needs not

    counted = {name: count for name, count in (totals.get("checks") or {}).items() if count}
    flagged = ", ".join(f"{name} {count:,}" for name, count in sorted(counted.items()) if name not in OBSERVATIONS)
    observed = ", ".join(f"{name} {count:,}" for name, count in sorted(counted.items()) if name in OBSERVATIONS)
    if flagged:
        echo(f"  checks flagged: {flagged} (per file in each _day.json; [validation] mode decides flag, drop or fail; "
             "README: Checks)")
    if observed:
        echo(f"  observed: {observed} (what the vendor sends, kept as it is; README: Checks)")
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
        kept = f"; the {totals['rows']:,} rows stored are kept" if totals["rows"] else ""
        echo(f"  interrupted by {signal.Signals(summary.interrupted).name}{kept}; run the same command again to resume")


def print_plan(plan: Plan, estimate: dict[str, Any], settings: config.Settings,
               skipped: list[tuple[date, str]] = ()) -> None:
    """The dry-run report: what would be downloaded, roughly how much and how long, and the days skipped."""
    days = sorted({task.trade_date for task in plan.tasks})
    click.echo(f"Plan for {plan.start} .. {plan.end} into {settings.data_dir_shown} (dry run: nothing written)")
    click.echo(f"  tasks to download: {len(plan.tasks)} over {len(days)} trading day(s)")
    click.echo(f"  already complete:  {len(plan.done)}")
    click.echo(f"  held by live runs: {len(plan.held)}")
    click.echo(f"  roots {','.join(settings.roots)}; datasets {','.join(settings.datasets)}; interval {settings.interval}; "
               f"DTE {settings.min_dte}..{settings.max_dte}")
    click.echo(f"  estimate: ~{estimate.get('requests', 0):,} requests, ~{estimate.get('rows', 0):,} rows, "
               f"~{human_bytes(estimate.get('bytes', 0))} on disk")
    if "seconds" in estimate:
        source = ("the rows/s of past runs in metrics.csv" if estimate["rate_from"] == "past runs"
                  else "a default: no past run in metrics.csv yet")
        click.echo(f"  time: ~{human_duration(estimate['seconds'])} at {estimate['rows_per_s']:,} rows/s ({source})")
    for task in plan.tasks[:20]:
        click.echo(f"    {task.key}")
    if len(plan.tasks) > 20:
        click.echo(f"    ... and {len(plan.tasks) - 20} more")
    print_skipped(skipped)


def print_skipped(skipped: list[tuple[date, str]], most: int = 20) -> None:
    """The days a plan skips with the reason, weekends counted rather than listed."""
    weekends = [day for day, _ in skipped if day.weekday() >= 5]
    listed = [(day, why) for day, why in skipped if day.weekday() < 5]
    if not skipped:
        return
    click.echo(f"  skipped: {len(listed)} day(s)" + (f" and {len(weekends)} weekend day(s)" if weekends else ""))
    for day, why in listed[:most]:
        click.echo(f"    {day} ({day:%a}): {why}")
    if len(listed) > most:
        click.echo(f"    ... and {len(listed) - most} more")


def describe_run(run: dict[str, Any]) -> str:
    """One run record (``RunView.as_dict()``) as a line: range, selection, when, state and what is left."""
    chosen = run["selection"]
    started = str(run["started_at"])[:19].replace("T", " ")
    force = ", force" if chosen["force"] else ""
    why = f" ({run['reason']})" if run.get("reason") else ""
    return (f"run {run['start']} .. {run['end']} ({','.join(chosen['roots'])}; {','.join(chosen['datasets'])} "
            f"{chosen['interval']}; DTE {chosen['min_dte']}..{chosen['max_dte']}{force}) started {started} UTC "
            f"by pid {run['pid']}: {run['state']}{why}; {run['remaining']} of {run['tasks']} task(s) left")


def describe_expirations(line: dict[str, Any]) -> str:
    """A task's expirations by state; a task a run works on now: how many of its window's are done."""
    if line.get("done") is not None:
        return f"{line['done']} of {line['listed']} done" if line.get("listed") is not None else f"{line['done']} done"
    return ",".join(f"{count} {state}" for state, count in sorted(line["expirations"].items())) or "-"


def describe_archive(name: str, archive: dict[str, Any]) -> str:
    """One archive as a line: files, rows, size, when data last arrived, last complete trade date, mode."""
    arrived = local_time(archive["last_data_at"]) if archive["last_data_at"] else "never"
    dropped = f" ({archive['dropped']:,} dropped)" if archive["dropped"] else ""
    return (f"{name}: {archive['files']:,} file(s), {archive['rows']:,} rows{dropped}, {human_bytes(archive['bytes'])}; "
            f"data last arrived {arrived}; last complete trade date {archive['last_complete_day'] or 'none yet'}; "
            f"validation {archive['validation'] or 'not recorded'}")


def check_line(line: dict[str, Any], *, with_what: bool = False) -> str:
    """One check's count with its share of the rows (contracts: the count alone); ``with_what``: a table row
    with what the check counts."""
    share = percent(line["share"]) if line["share"] is not None else line["counts"]
    if not with_what:
        return f"{line['name']} {line['count']:,} ({share})"
    kind = "observed: " if line["observation"] else ""
    return f"{line['name']:<20} {line['count']:>12,} {share:>10}  {kind}{line['what']}"


def percent(share: float) -> str:
    """A share as a percentage with two decimals; a count too small for them is ``<0.01 %``, never 0."""
    return f"{share * 100:.2f} %" if share * 100 >= 0.005 or share == 0 else "<0.01 %"


def local_time(stamp: str) -> str:
    """A stored UTC timestamp as this machine's wall clock, with its zone."""
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


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
