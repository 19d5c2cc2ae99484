"""What the parent does before it hands out a run's first task, while its workers start.

``prepare`` makes the data dir ready (the temp-file sweep; an object store reached, its bucket
found, its stale temp objects swept), finds the source once (``connect``:
its URL and API, whether spxdl's simulator answers), checks or records each archive's shape, and
through the same connection lists once, for every worker, the expirations of each root whose
tasks need them (``list_expirations``; a daily dataset asks every expiration at once, an index
has none).
"""

from __future__ import annotations

import functools
import logging
from datetime import date
from typing import TYPE_CHECKING, Iterable

from spxdl import shapes
from spxdl.config import Settings
from spxdl.engine.planning import archive_datasets, lists_expirations
from spxdl.engine.shared import client_for, prepare_storage, retrying
from spxdl.errors import NoData, SpxdlError, TerminalUnavailable
from spxdl.ledger import Task

if TYPE_CHECKING:
    from spxdl.sources import Source

log = logging.getLogger(__name__)


def prepare(settings: Settings, tasks: Iterable[Task] = ()) -> tuple[Settings, bool, dict[str, list[date]]]:
    """Make the data dir ready, find the source once and check the archives' shapes; then, through
    the same connection, list the expirations ``tasks`` need. Settings naming the source's URL and
    API, whether spxdl's simulator answered, and the listings (``list_expirations``).
    """
    from spxdl.terminal import simulator_facts  # here: a run with nothing to do never loads HTTP

    ledger = prepare_storage(settings)  # an object store that does not answer, refuses us or lacks the bucket: raised
    with client_for(settings) as client:
        connect(client, settings.expiration_attempts)
        resolved = settings.replace(terminal_url=client.base_url, terminal_api=client.api)
        simulator = simulator_facts(client.simulator) if client.simulated else None
        by_archive = archive_datasets(settings)
        for dataset in by_archive.values():
            dataset.check_served(resolved.terminal_api, settings.interval)
        for archive, dataset in by_archive.items():
            shapes.ensure_archive_shape(settings.ledger_path, archive, shapes.archive_shape(dataset, settings, simulator),
                                        mirror=ledger.mirror)
        listed = list_expirations(client, resolved, tasks)
    return resolved, simulator is not None, listed


def connect(client: Source, attempts: int) -> None:
    """Find the terminal; a terminal that answered badly (a cut status) is asked again, one that nobody
    answers for fails at once (asking again would only repeat the same line)."""
    for attempt in range(1, attempts + 1):
        try:
            client.connect()
            return
        except TerminalUnavailable as exc:
            if exc.status is None or attempt == attempts:
                raise
            log.info("connecting to the terminal: attempt %d of %d failed (%s); trying again", attempt, attempts, exc)


def list_expirations(client: Source, settings: Settings, tasks: Iterable[Task]) -> dict[str, list[date]]:
    """The expirations of each root ``tasks`` list, once for every worker (``client`` connected).

    A root the source lists nothing for maps to an empty list; one whose listing fails is left
    out, for the workers to list themselves (and fail its tasks if it fails again).
    """
    by_archive = archive_datasets(settings)
    roots = sorted({task.root for task in tasks if lists_expirations(by_archive[task.archive])})
    listed: dict[str, list[date]] = {}
    for root in roots:
        try:
            listed[root] = retrying(functools.partial(client.expirations, root), settings.expiration_attempts,
                                    f"listing {root}")
        except NoData:
            listed[root] = []
        except SpxdlError as exc:
            log.info("listing %s in the parent failed (%s); the workers list it themselves", root, exc)
    return listed
