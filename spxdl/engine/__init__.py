"""The batch engine: a date range becomes tasks, worker processes download them, signals stop cleanly.

``records`` (Plan, Event, TaskResult, RunSummary, state names), ``planning`` (plan, estimate,
ranges, what resume runs), ``recording`` (the run's record in the ledger), ``metering``
(metrics.csv rows), ``preparing`` (the data dir, the terminal, the listings before the first
task), ``pool`` and ``processes`` (the parent: run, the crew of workers, signals, events),
``serving``, ``worker``, ``download`` and ``fetchers`` (the child processes), ``streams``
(stop-aware pages), ``shared`` (what both sides use).

Names are loaded on first use, so that ``from spxdl.engine.records import Plan`` (the CLI) does
not pay for Arrow and process machinery it does not need.
"""

from __future__ import annotations

from spxdl.lazy import lazy_getattr

_EXPORTS = {
    "Plan": "records", "Event": "records", "TaskResult": "records", "RunSummary": "records",
    "task_state": "records", "ResultState": "records", "RunState": "records",
    "plan": "planning", "estimate": "planning", "archive_datasets": "planning", "days_back_range": "planning",
    "update_range": "planning", "resume_plans": "planning",
    "run": "pool", "prepare": "preparing",
    "run_task": "serving", "init_worker": "serving",
    "client_for": "shared", "retrying": "shared", "SharedFlag": "shared", "RUN_STOPPERS": "shared",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
