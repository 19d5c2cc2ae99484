"""Planning a run: which tasks a range holds, what is already done or held, and rough figures.

Also the ranges the commands ask for (the latest sessions for ``update``, the last N for
``--days-back``). Everything here reads the ledger and the calendar; nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, timedelta
from typing import Any, Collection, Iterable, Sequence

from spxdl import audit, datasets, metrics, storage, trading_calendar
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.engine.records import Plan
from spxdl.engine.shared import ledger_for
from spxdl.errors import ConfigError
from spxdl.ledger import RunView, Task

# Rough figures for estimate(): a near-term SPXW chain has ~330 contracts (the simulator's
# realistic one: 128,248 greeks rows over 391 minutes), and zstd Parquet takes ~13 bytes a row
# of its smooth synthetic greeks; real data compresses less, so the estimate says 20.
EST_CONTRACTS_PER_EXPIRATION = 330
EST_PARQUET_BYTES_PER_ROW = 20
MONTHLY_ROOTS = frozenset({"SPX"})  # AM-settled monthlies: third Fridays only
# A dry run's clock before any run has been measured: about what one worker stores from a real
# terminal (the simulator serves 450-600k rows/s on loopback, bench/engine_run.py; a terminal is slower).
DEFAULT_ROWS_PER_SECOND = 100_000


def plan(
    settings: Settings, start: date, end: date, force: bool = False, *, only: Collection[Task] | None = None
) -> Plan:
    """The tasks of ``start..end`` (trading days x archives x roots) minus done and held ones.

    ``only`` keeps just those tasks (resume). Writes nothing: a data dir the ledger never locked
    has nothing done and nothing held.
    """
    if start > end:
        raise ConfigError(f"the start date {start} is after the end date {end}", key="start")
    calendar = settings.calendar()
    by_archive = archive_datasets(settings)
    candidates = [
        Task(archive, root, day)
        for day in calendar.trading_days(start, end)
        for archive, dataset in by_archive.items()
        for root in dataset.roots_for(settings.roots)
    ]
    if only is not None:
        wanted = set(only)
        candidates = [task for task in candidates if task in wanted]
    if not storage.lock_path(settings.ledger_path).exists():
        return Plan(tuple(candidates), (), (), start, end, force)
    ledger = ledger_for(settings)
    todo: list[Task] = []
    done: list[Task] = []
    held: list[Task] = []
    for task in candidates:
        min_dte, max_dte = by_archive[task.archive].dte_window(settings.min_dte, settings.max_dte)
        if not force and ledger.is_done(task, min_dte=min_dte, max_dte=max_dte):
            done.append(task)
        elif ledger.is_held(task):
            held.append(task)
        else:
            todo.append(task)
    return Plan(tuple(todo), tuple(done), tuple(held), start, end, force)


def lists_expirations(dataset: Dataset) -> bool:
    """Whether a task of ``dataset`` fetches expiration by expiration from its root's listing (not
    a daily dataset, which asks every expiration at once, nor an index, which has none)."""
    return not (dataset.all_expirations or dataset.is_index)


def in_window(
    expiration: date, task: Task, min_dte: int, max_dte: int, calendar: trading_calendar.TradingCalendar
) -> bool:
    """Whether ``expiration`` is in ``task.trade_date + [min_dte, max_dte]`` and still trades on the
    trade date (an SPX AM monthly stops the day before it settles)."""
    trade_date = task.trade_date
    return (trade_date + timedelta(days=min_dte) <= expiration <= trade_date + timedelta(days=max_dte)
            and trade_date <= calendar.last_trading_day(task.root, expiration))


def window_expirations(
    listed: Iterable[date], task: Task, min_dte: int, max_dte: int, calendar: trading_calendar.TradingCalendar
) -> list[date]:
    """The listed expirations of ``task`` that are ``in_window``, in order."""
    return [expiration for expiration in listed if in_window(expiration, task, min_dte, max_dte, calendar)]


def shares(expirations: list[date], count: int) -> list[list[date]]:
    """``expirations`` dealt in turn into ``count`` shares (near and far ones mixed in each)."""
    return [expirations[index::count] for index in range(count)]


def resume_plans(
    settings: Settings, runs: Sequence[RunView], incomplete: Collection[Task], force: bool = False
) -> list[tuple[Settings, Plan]]:
    """What ``resume`` runs: the tasks each interrupted run left (days never started included),
    with that run's own roots, datasets, interval, DTE window and force, one plan per such
    selection; then the ledger's other unfinished tasks with ``settings``. Writes nothing.
    """
    groups: dict[tuple[object, ...], tuple[Settings, set[Task], list[str]]] = {}
    for run in (run for run in runs if run.remaining):
        chosen = run.selection
        own = settings.replace(roots=tuple(chosen["roots"]), datasets=tuple(chosen["datasets"]),
                               interval=chosen["interval"], min_dte=chosen["min_dte"], max_dte=chosen["max_dte"])
        group = groups.setdefault(_selection_key(own, chosen["force"] or force), (own, set(), []))
        group[1].update(run.remaining)
        group[2].append(run.id)
    resumed = set().union(*(tasks for _, tasks, _ in groups.values()))
    rest = {task for task in incomplete if task not in resumed}
    if rest:
        groups.setdefault(_selection_key(settings, force), (settings, set(), []))[1].update(rest)
    plans = []
    for key, (chosen_settings, tasks, run_ids) in groups.items():
        days = sorted(task.trade_date for task in tasks)
        found = plan(chosen_settings, days[0], days[-1], force=key[-1], only=tasks)
        plans.append((chosen_settings, dataclasses.replace(found, resumes=tuple(run_ids))))
    return plans


def _selection_key(settings: Settings, force: bool) -> tuple[object, ...]:
    return (settings.roots, settings.datasets, settings.interval, settings.min_dte, settings.max_dte, force)


def estimate(plan: Plan, settings: Settings) -> dict[str, Any]:
    """Rough figures for a dry run: requests, expirations, rows, Parquet bytes, and seconds at the rows/s of
    past runs in metrics.csv (``rate_from`` "past runs"), else at a stated default. Writes nothing."""
    calendar = settings.calendar()
    by_archive = archive_datasets(settings)
    expirations = rows = requests = 0
    for task in plan.tasks:
        dataset = by_archive[task.archive]
        count = 1 if dataset.is_index else _estimated_expirations(calendar, task, settings.min_dte, settings.max_dte)
        contracts = 1 if dataset.is_index else EST_CONTRACTS_PER_EXPIRATION
        expirations += count
        requests += 1 if dataset.all_expirations or dataset.is_index else count
        rows += count * contracts * _rows_per_contract(dataset, settings)
    listed = [task for task in plan.tasks if lists_expirations(by_archive[task.archive])]
    listings = len({task.root for task in listed})  # the parent lists each root once for every worker
    past = metrics.past_rows_per_second(settings.ledger_path)
    rate = past or DEFAULT_ROWS_PER_SECOND
    return {
        "tasks": len(plan.tasks),
        "expirations": expirations,
        "requests": requests + listings,
        "rows": rows,
        "bytes": rows * EST_PARQUET_BYTES_PER_ROW,
        "seconds": round(rows / rate),
        "rows_per_s": round(rate),
        "rate_from": "past runs" if past else "default",
    }


def skipped_days(plan: Plan, calendar: trading_calendar.TradingCalendar) -> list[tuple[date, str]]:
    """The days of the plan's range it downloads nothing for, each with why: the market is closed, every
    task of the day is complete or held by another live run, or (resume) nothing of the day is asked."""
    planned = {task.trade_date for task in plan.tasks}
    done = Counter(task.trade_date for task in plan.done)
    held = Counter(task.trade_date for task in plan.held)
    skipped = []
    day = plan.start
    while day <= plan.end:
        if not calendar.is_trading_day(day):
            holiday = calendar.holiday_name(day)
            skipped.append((day, f"markets closed: {holiday}" if holiday else f"a {day:%A}"))
        elif day not in planned:
            why = [f"{done[day]} task(s) complete"] if done[day] else []
            why += [f"{held[day]} held by another live run"] if held[day] else []
            skipped.append((day, "; ".join(why) or "nothing asked of it"))
        day += timedelta(days=1)
    return skipped


def _estimated_expirations(calendar: trading_calendar.TradingCalendar, task: Task, min_dte: int, max_dte: int) -> int:
    days = calendar.trading_days(task.trade_date + timedelta(days=min_dte), task.trade_date + timedelta(days=max_dte))
    if task.root in MONTHLY_ROOTS:
        return sum(day.weekday() == 4 and 15 <= day.day <= 21 for day in days)
    return len(days)


def _rows_per_contract(dataset: Dataset, settings: Settings) -> int:
    if not dataset.uses_interval:
        return 1
    return (settings.end_ms - settings.start_ms) // datasets.interval_ms(settings.interval) + 1


def archive_datasets(settings: Settings) -> dict[str, Dataset]:
    """Archive directory name -> its dataset, for the datasets ``settings`` asks for."""
    found = (datasets.get_dataset(name) for name in settings.datasets)
    return {dataset.archive_name(settings.interval): dataset for dataset in found}


def days_back_range(calendar: trading_calendar.TradingCalendar, last_session: date, count: int) -> tuple[date, date]:
    """The last ``count`` trading days up to and including ``last_session``."""
    first = last_session
    for _ in range(count - 1):
        first = calendar.previous_trading_day(first)
    return first, last_session


def update_range(
    settings: Settings, calendar: trading_calendar.TradingCalendar, last_session: date, lookback: int
) -> tuple[date, date]:
    """From the day after the last complete day in the archive to the latest session, re-checking ``lookback`` days.

    With an empty archive this is just the last ``lookback + 1`` sessions; backfill fills history.
    """
    first = days_back_range(calendar, last_session, lookback + 1)[0]
    last_complete = None
    if settings.ledger_path.exists():
        last_complete = audit.last_complete_day(audit.task_lines(ledger_for(settings)))
    if last_complete is not None and last_complete < first:
        first = calendar.next_trading_day(last_complete)
    return first, last_session
