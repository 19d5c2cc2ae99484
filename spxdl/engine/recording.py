"""A run's record in the ledger: written before any worker starts, closed with why the run stopped.

``RunBook`` (``ledger/runs.py``) keeps the records; this module says what the engine puts in
them. A run that tried every task leaves no record (and closes those of the interrupted runs it
resumed); one that stopped early leaves one that ``spxdl resume`` finishes, never-started days
included.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from typing import Any, Iterator

from spxdl.config import Settings
from spxdl.engine.records import Plan, ResultState, RunSummary
from spxdl.engine.shared import ledger_for
from spxdl.errors import SpxdlError
from spxdl.ledger import RunBook

log = logging.getLogger(__name__)


def selection_of(settings: Settings, force: bool) -> dict[str, Any]:
    """What a run record keeps of the settings: enough to plan the same tasks again."""
    return {
        "roots": list(settings.roots),
        "datasets": list(settings.datasets),
        "interval": settings.interval,
        "min_dte": settings.min_dte,
        "max_dte": settings.max_dte,
        "force": force,
    }


def why_unfinished(summary: RunSummary) -> str | None:
    """Why a run stopped before it tried every task; None if it tried them all."""
    if summary.interrupted is not None:
        return f"stopped by {signal.Signals(summary.interrupted).name}"
    if summary.stopped_by is not None:
        return f"stopped: {summary.stopped_by}"
    interrupted = sum(result.state == ResultState.INTERRUPTED for result in summary.results)
    if summary.not_started or interrupted:
        return f"{len(summary.not_started)} task(s) not started, {interrupted} interrupted"
    return None


@contextlib.contextmanager
def recorded_run(plan: Plan, settings: Settings, summary: RunSummary) -> Iterator[str]:
    """Record the run (its range, selection and every planned task) for the block; the run's id.

    A failure to write the record at the start raises (a run nobody could resume does not
    start); at the end it is only logged: a record left ``running`` reads as a killed run.
    """
    ledger = ledger_for(settings)
    book = RunBook(ledger)
    run_id = book.begin(start=plan.start, end=plan.end, tasks=plan.tasks + plan.held,
                        selection=selection_of(settings, plan.force))
    reason: str | None = "the run ended without a summary"
    try:
        yield run_id
        reason = why_unfinished(summary)
    except BaseException as exc:
        reason = f"stopped by an error: {exc!r}"
        raise
    finally:
        try:
            book.end(run_id, reason=reason, finishes=plan.resumes if reason is None else ())
            ledger.publish_summaries()  # next to the data, when it lives elsewhere (an object store)
        except (SpxdlError, OSError) as exc:
            log.warning("could not close the record of run %s: %s", run_id, exc)
