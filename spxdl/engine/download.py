"""One task's download inside a worker process: list, filter, fetch on threads, convert, store, record.

Runs in a worker process only (``worker.py`` builds it for each claimed task). Every expiration of
the DTE window is streamed from the terminal, converted, written to a hidden temp file, verified,
renamed into place and recorded in the ledger the moment it lands; a cut body, an expired page or
an unavailable terminal fetches that expiration again, within ``expiration_attempts``.

Two kinds of task take another road. A daily dataset (``all_expirations``: eod, open_interest,
greeks_eod) asks the whole day once, for every expiration; the rows are split by expiration, the
DTE window keeps some, and each kept expiration becomes the same file and ledger record a
per-expiration request would have made. An index (``is_index``) has no expirations: one file per
trade date, recorded under the trade date.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import logging
import queue
from datetime import date
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator

from spxdl import convert, datasets, storage
from spxdl.archive_fs import Archive, Location
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.engine.planning import in_window, window_expirations
from spxdl.engine.records import EXPIRATION_DONE, EXPIRATION_PROGRESS, EXPIRATIONS_LISTED, RETRY, Outcome, Share
from spxdl.engine.shared import RETRYABLE, RUN_STOPPERS, STOPS, STORE_STOPPERS, retrying
from spxdl.engine.streams import Meter, stoppable
from spxdl.errors import Interrupted, NoData, SpxdlError, StorageError, ValidationFailed
from spxdl.instants import early_close_ms
from spxdl.ledger import ExpirationState, Task
from spxdl.sources import SourcePage

if TYPE_CHECKING:
    from spxdl.engine.worker import Worker

log = logging.getLogger(__name__)


HELPERS_WAIT_SECONDS = 0.2  # how often a task waiting for its helpers looks at the stop


class TaskDownload:
    """The expirations of one claimed task (or one share of them), fetched on the worker's fetch threads."""

    def __init__(
        self, worker: Worker, task: Task, min_dte: int, max_dte: int, force: bool, share: Share | None = None
    ) -> None:
        self.worker = worker
        self.task = task
        self.min_dte = min_dte
        self.max_dte = max_dte
        self.force = force
        self.share = share
        self.settings: Settings = worker.settings
        self.dataset: Dataset = worker.archives[task.archive]
        self.archive: Archive = worker.ledger.archive  # where the data files go: the data dir, or an object store
        self.landed: list[Outcome] = []  # expirations stored by this download, also when it is stopped

    def landed_totals(self) -> dict[str, Any]:
        """Rows, bytes and complete expirations stored so far: what an interrupted task keeps."""
        landed = list(self.landed)
        count = {ExpirationState.COMPLETE: len(landed)} if landed else {}
        return {"rows": sum(o.rows for o in landed), "bytes": sum(o.bytes for o in landed), "expirations": count}

    def run(self, turn_over: Callable[[], None] = lambda: None) -> list[Outcome]:
        """Every expiration of the DTE window (or of this worker's share, then the helpers'
        outcomes): complete ones skipped, the rest fetched on the process's fetch threads
        (``Fetchers``; a daily dataset's one request on one of them). ``turn_over`` is called as
        soon as the rest are queued: the next task may then take its turn."""
        daily = self.dataset.all_expirations
        try:
            if daily:
                outcomes, futures = [], self.worker.fetchers.submit(lambda _: self.run_day(), [None])
            else:
                outcomes, futures = self.queue_missing()
        finally:
            turn_over()
        cf.wait(futures)
        stops = [f.exception() for f in futures if isinstance(f.exception(), STOPS)]
        if stops:
            raise next((exc for exc in stops if isinstance(exc, RUN_STOPPERS)), stops[0])
        if daily:
            return futures[0].result()
        return outcomes + [future.result() for future in futures] + self.helpers_outcomes()

    def queue_missing(self) -> tuple[list[Outcome], list[cf.Future]]:
        """The window's complete expirations (skipped), and the others queued on the fetch threads."""
        helping = self.share is not None and not self.share.helpers
        window = [] if helping else [self.task.trade_date] if self.dataset.is_index else self.expirations()
        wanted = list(self.share.expirations) if self.share else window
        complete = set() if self.force else self.complete_expirations()
        outcomes = [Outcome(e, ExpirationState.COMPLETE, skipped=True) for e in wanted if e in complete]
        missing = [expiration for expiration in wanted if expiration not in complete]
        log.info("%s: %d expiration(s) in DTE %d..%d, %d to fetch", self.task.key, len(wanted), self.min_dte,
                 self.max_dte, len(missing))
        if not helping:  # the task's owner counts the whole window, its helpers' shares too
            self.worker.ledger.note_listed(self.task, len(window))
            self.worker.emit(EXPIRATIONS_LISTED, self.task, total=sum(e not in complete for e in window))
        return outcomes, self.worker.fetchers.submit(self.fetch, missing)

    def helpers_outcomes(self) -> list[Outcome]:
        """The outcomes the helpers report for the rest of the window (none without helpers)."""
        helpers = self.share.helpers if self.share else 0
        box = self.worker.helped.get(self.task)
        outcomes: list[Outcome] = []
        while helpers:
            self.check()  # a stop, or a claim taken over: the helpers stop too and are not waited for
            try:
                outcomes += box.get(timeout=HELPERS_WAIT_SECONDS)
            except queue.Empty:
                continue
            helpers -= 1
        return outcomes

    def run_day(self) -> list[Outcome]:
        """A daily dataset: one request for the whole day, then one file per expiration in the window.

        NoData (the day has none) and a fetch that fails ``expiration_attempts`` times raise: the
        task is then ``no_data`` or ``failed`` as a whole. Expirations already complete are skipped.
        """
        split = self.fetch_day()
        self.worker.ledger.note_listed(self.task, len(split.parts))
        complete = set() if self.force else self.complete_expirations()
        outcomes = []
        for expiration, part in sorted(split.parts.items()):
            if expiration in complete:
                outcomes.append(Outcome(expiration, ExpirationState.COMPLETE, skipped=True))
                continue
            outcomes.append(self.store_part(expiration, part))
        log.info("%s: %d expiration(s) in DTE %d..%d from one request (%d row(s) of others left out), %d stored",
                 self.task.key, len(split.parts), self.min_dte, self.max_dte, split.left_out,
                 sum(not outcome.skipped for outcome in outcomes))
        return outcomes

    def fetch_day(self) -> convert.DaySplit:
        """The day's answer split by expiration; fetched again on a cut body or an unavailable terminal."""
        worker, task, settings = self.worker, self.task, self.settings
        attempts = settings.expiration_attempts
        for attempt in range(1, attempts + 1):
            self.check()
            try:
                pages = self.pages(None)
                with self.worker.fetchers.converting(), contextlib.closing(stoppable(pages, self.check)) as stopping:
                    return convert.split_by_expiration(stopping, self.convert_spec(None), self.in_window)
            except STOPS as exc:
                if isinstance(exc, RUN_STOPPERS):
                    worker.stop_run()
                raise
            except RETRYABLE as exc:
                worker.check()
                if attempt == attempts:
                    raise
                log.info("%s: attempt %d of %d: %s; again", task.key, attempt, attempts, exc)
                worker.emit(RETRY, task, attempt=attempt, error=str(exc))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def store_part(self, expiration: date, part: convert.DayPart) -> Outcome:
        """Write, verify and record one expiration of a day's answer; a failure fails only it."""
        written: list[convert.ConvertResult] = []

        def write(sink: BinaryIO) -> int:
            written.append(convert.write_batches(part.batches, sink, part.spec, part.converter))
            return written[0].rows

        try:
            info = self.archive.write_verified_parquet(self.data_path(expiration), write)
        except STORE_STOPPERS:  # an object store that does not answer (or refuses us): every write would fail
            raise
        except Exception as exc:  # the disk: this expiration fails, the others go on
            outcome = self.failed(expiration, 1, exc)
        else:
            outcome = self.record_complete(expiration, info, written[0], 1)
        self.worker.emit(EXPIRATION_DONE, self.task, expiration=expiration, state=outcome.state, rows=outcome.rows,
                         bytes=outcome.bytes, attempt=1)
        return outcome

    def in_window(self, expiration: date) -> bool:
        """Whether ``expiration`` is in ``trade_date + [min_dte, max_dte]`` and still trades on the trade date."""
        return in_window(expiration, self.task, self.min_dte, self.max_dte, self.worker.calendar)

    def expirations(self) -> list[date]:
        """The root's expirations (listed once per process) within ``trade_date + [min_dte, max_dte]``
        that still trade on the trade date (an SPX AM monthly stops the day before it settles)."""
        worker, task = self.worker, self.task
        if task.root not in worker.expirations:
            try:
                call = functools.partial(worker.client.expirations, task.root)
                listed = retrying(call, self.settings.expiration_attempts, f"listing {task.root}", worker.check)
            except NoData:
                listed = []
            worker.expirations[task.root] = listed
        if not worker.expirations[task.root]:
            raise NoData(f"the terminal lists no expiration for {task.root} (unknown root, or not in the subscription)")
        return window_expirations(worker.expirations[task.root], task, self.min_dte, self.max_dte, worker.calendar)

    def check(self) -> None:
        """Raise Interrupted once the run stops or another run has taken this task's claim over."""
        self.worker.check()
        if self.task in self.worker.lost:
            raise Interrupted(f"{self.task.key} was taken over by another run")

    def complete_expirations(self) -> set[date]:
        """Expirations the ledger calls complete whose file is in place, and those a killed run left
        in place unrecorded (adopted)."""
        complete = set()
        states = self.worker.ledger.expiration_states(self.task)
        task = self.task
        in_place = set(self.archive.data_files(task.archive, task.root, task.trade_date).values()) if states else set()
        for expiration, state in states.items():
            path = self.data_path(expiration)
            if path in in_place and (state == ExpirationState.COMPLETE
                                  or state == ExpirationState.PENDING and self.adopted(expiration, path)):
                complete.add(expiration)
        return complete

    def adopted(self, expiration: date, path: Location) -> bool:
        """Record as complete a file in place that a run killed between its rename and its record left.

        A file is renamed into place only after its footer was read back with the rows written, so
        it is whole; fetching it again would download it twice. Its footer is read once more here.
        """
        try:
            info = self.archive.verify_parquet(path)
        except StorageError as exc:
            log.info("%s exp %s: %s; fetching it again", self.task.key, expiration, exc)
            return False
        self.worker.ledger.record_expiration(self.task, expiration, ExpirationState.COMPLETE, info=info)
        log.info("%s exp %s: %s is whole but was never recorded (its run was killed); adopted", self.task.key,
                 expiration, path.name)
        return True

    def data_path(self, expiration: date) -> Location:
        """The file of one expiration (an index: the trade date's one file)."""
        task = self.task
        if self.dataset.is_index:
            return self.archive.day_file(task.archive, task.root, task.trade_date)
        return self.archive.data_file(task.archive, task.root, task.trade_date, expiration)

    def fetch(self, expiration: date) -> Outcome:
        """Fetch one expiration, again on a cut body, an expired page or an unavailable terminal."""
        worker, task, ledger = self.worker, self.task, self.worker.ledger
        attempts = self.settings.expiration_attempts
        for attempt in range(1, attempts + 1):
            self.check()
            ledger.record_expiration(task, expiration, ExpirationState.DOWNLOADING, attempts=attempt)
            try:
                outcome = self.download(expiration, attempt)
            except STOPS as exc:
                if isinstance(exc, RUN_STOPPERS):
                    worker.stop_run()
                raise
            except NoData:
                ledger.record_expiration(task, expiration, ExpirationState.NO_DATA, attempts=attempt)
                outcome = Outcome(expiration, ExpirationState.NO_DATA, attempts=attempt)
            except RETRYABLE as exc:
                worker.check()  # a body cut by the stop is no reason to fetch again
                if attempt < attempts:
                    log.info("%s exp %s: attempt %d of %d: %s; again", task.key, expiration, attempt, attempts, exc)
                    worker.emit(RETRY, task, expiration=expiration, attempt=attempt, error=str(exc))
                    continue
                outcome = self.failed(expiration, attempt, exc)
            except Exception as exc:  # the terminal's answer, the data, the disk: this expiration fails
                worker.check()
                if not isinstance(exc, SpxdlError):
                    log.error("%s exp %s: unexpected %r", task.key, expiration, exc, exc_info=True)
                outcome = self.failed(expiration, attempt, exc)
            worker.emit(
                EXPIRATION_DONE, task, expiration=expiration, state=outcome.state, rows=outcome.rows,
                bytes=outcome.bytes, attempt=attempt,
            )
            return outcome
        raise AssertionError("unreachable: the last attempt returns")

    def failed(self, expiration: date, attempt: int, exc: Exception) -> Outcome:
        log.warning("%s exp %s failed after %d attempt(s): %s", self.task.key, expiration, attempt, exc)
        self.worker.ledger.record_expiration(self.task, expiration, ExpirationState.FAILED, attempts=attempt, error=str(exc))
        counted = exc.counts if isinstance(exc, ValidationFailed) else {}  # what made [validation] mode = fail fail it
        return Outcome(expiration, ExpirationState.FAILED, attempts=attempt, error=str(exc), checks=counted)

    def pages(self, expiration: date | None) -> Iterator[SourcePage]:
        """The source's pages of one expiration (None: every expiration of the day, or an index's day)."""
        settings, dataset = self.settings, self.dataset
        return self.worker.client.history(
            dataset,
            self.task.root,
            expiration,
            self.task.trade_date,
            interval=settings.interval,
            start_ms=settings.start_ms,
            end_ms=settings.end_ms,
            **greeks_params(dataset, settings),
        )

    def download(self, expiration: date, attempt: int) -> Outcome:
        """Stream, convert, store atomically, verify and record one expiration (an index: the day)."""
        asked = None if self.dataset.is_index else expiration
        spec = self.convert_spec(asked)
        pages = self.pages(asked)
        converted: list[convert.ConvertResult] = []
        meter = Meter(functools.partial(self.received, expiration, attempt))

        def write(sink: BinaryIO) -> int:
            with self.worker.fetchers.converting(), contextlib.closing(stoppable(pages, self.check, meter)) as stopping_pages:
                converted.append(convert.write_parquet(stopping_pages, sink, spec, on_rows=meter.parsed))
            return converted[0].rows

        info = self.archive.write_verified_parquet(self.data_path(expiration), write)
        return self.record_complete(expiration, info, converted[0], attempt)

    def record_complete(
        self, expiration: date, info: storage.FileInfo, result: convert.ConvertResult, attempt: int
    ) -> Outcome:
        """Record a verified file in the ledger the moment it lands; its outcome."""
        task, settings = self.task, self.settings
        self.worker.ledger.record_expiration(
            task, expiration, ExpirationState.COMPLETE, info=info, attempts=attempt, checks=result.checks,
            extra_columns=result.extra_columns, dropped=result.dropped,
        )
        flagged = {name: count for name, count in result.checks.items() if count}
        if flagged:
            log.debug("%s exp %s: checks flagged %s (validation=%s)", task.key, expiration, flagged,
                      settings.validation_mode)
        outcome = Outcome(
            expiration, ExpirationState.COMPLETE, rows=info.rows, bytes=info.bytes, attempts=attempt, checks=flagged,
            extra_columns=result.extra_columns, dropped=result.dropped,
        )
        self.landed.append(outcome)
        return outcome

    def received(self, expiration: date, attempt: int, rows: int, count: int) -> None:
        """Report the rows and bytes one attempt at ``expiration`` has received so far."""
        self.worker.emit(EXPIRATION_PROGRESS, self.task, expiration=expiration, rows=rows, bytes=count, attempt=attempt)

    def convert_spec(self, expiration: date | None) -> convert.ConvertSpec:
        """What the file of ``expiration`` holds and how it is checked (None: an index, or a whole day)."""
        settings, dataset, task = self.settings, self.dataset, self.task
        return convert.ConvertSpec(
            dataset=dataset,
            api=self.worker.client.api,
            root=task.root,
            expiration=expiration,
            trade_date=task.trade_date,
            start_ms=settings.start_ms,
            end_ms=settings.end_ms,
            interval_ms=datasets.interval_ms(settings.interval) if dataset.uses_interval else None,
            validation=settings.validation_mode,
            row_group_rows=settings.row_group_rows,
            compression=settings.compression,
            compression_level=settings.compression_level,
            metadata=greeks_params(dataset, settings),
            early_close_ms=early_close_ms(self.worker.calendar, task.trade_date),
        )


def greeks_params(dataset: Dataset, settings: Settings) -> dict[str, Any]:
    """The greeks parameters the user set (the terminal's defaults apply to the others)."""
    if not dataset.greeks_params:
        return {}
    params = {"rate": settings.rate, "rate_value": settings.rate_value, "annual_div": settings.annual_div}
    return {name: value for name, value in params.items() if value is not None}
