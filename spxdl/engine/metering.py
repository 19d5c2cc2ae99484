"""A run's rows in ``metrics.csv``: one per task it worked on, one for the whole run.

Metrics are a by-product: a row that cannot be appended is a warning, never a failed download.
"""

from __future__ import annotations

import logging
from pathlib import Path

from spxdl import metrics
from spxdl.engine.records import Plan, ResultState, RunState, RunSummary, TaskResult

log = logging.getLogger(__name__)


def write_task_row(ledger_dir: Path, result: TaskResult) -> None:
    """The row of one task this run worked on (none for a task another run held)."""
    if result.state == ResultState.HELD:  # another run did (or does) the work: its row is that run's
        return
    row = metrics.MetricsRow(
        "task",
        result.task.key,
        result.state,
        result.rows,
        result.bytes,
        result.seconds,
        retries=result.retries,
        failures=len(result.failures),
        dropped=result.dropped,
        checks=result.checks,
    )
    _append(ledger_dir, row)


def write_run_row(ledger_dir: Path, plan: Plan, summary: RunSummary) -> None:
    """The row of the whole run (none when it had nothing to do)."""
    if not plan.tasks:
        return
    totals = summary.totals()
    state = RunState.INTERRUPTED if summary.interrupted else RunState.COMPLETE if summary.complete else RunState.INCOMPLETE
    failures = sum(len(result.failures) for result in summary.results)
    row = metrics.MetricsRow(
        "run",
        f"{plan.start}..{plan.end}",
        state,
        totals["rows"],
        totals["bytes"],
        summary.seconds,
        retries=totals["retries"],
        failures=failures,
        dropped=totals["dropped"],
        checks=totals["checks"],
    )
    _append(ledger_dir, row)


def _append(ledger_dir: Path, row: metrics.MetricsRow) -> None:
    try:
        metrics.append(ledger_dir, [row])
    except OSError as exc:
        log.warning("could not append to %s: %s", metrics.metrics_path(ledger_dir), exc)
