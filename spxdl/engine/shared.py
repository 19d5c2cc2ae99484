"""What both sides of the process boundary use: the stop flag, the run-stopping errors, retries, the source.

The parent makes the ``SharedFlag`` and hands it to every worker; a worker builds its own source
(a ``TerminalClient``, or the SDK's ``DirectSource``) with ``client_for`` after it starts (a
session must never cross a fork).
"""

from __future__ import annotations

import ctypes
import logging
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from spxdl import storage
from spxdl.archive_fs import Archive, open_archive
from spxdl.config import Settings
from spxdl.errors import (
    BodyTruncated,
    BucketMissing,
    ConfigError,
    DiskFull,
    Interrupted,
    InvalidSession,
    ObjectStoreDenied,
    ObjectStoreUnreachable,
    PageExpired,
    PermissionDenied,
    SchemaMismatch,
    TerminalGone,
    TerminalUnavailable,
)
from spxdl.ledger import Ledger

if TYPE_CHECKING:
    from spxdl.direct import DirectSource
    from spxdl.sources import Source

log = logging.getLogger(__name__)
T = TypeVar("T")

RUN_CAPTURE = "spxdl run --capture"
RETRYABLE = (BodyTruncated, PageExpired, TerminalUnavailable)
# What would repeat for every request or write: the first one stops the whole run. A terminal
# gone for longer than outage_limit, a full disk, or an object store that does not answer (or
# refuses us, or lacks the bucket) leaves the rest to `spxdl resume`.
STORE_STOPPERS = (ObjectStoreUnreachable, ObjectStoreDenied, BucketMissing)
RUN_STOPPERS = (PermissionDenied, InvalidSession, SchemaMismatch, TerminalGone, DiskFull, *STORE_STOPPERS)
STOPS = (Interrupted, *RUN_STOPPERS)


def client_for(settings: Settings, **kwargs: Any) -> Source:
    """The source ``settings`` describe: the terminal client (URL, API, timeouts, retries, threads), or
    with ``[terminal] source = direct`` the SDK's ``DirectSource`` (retries, deadline); ``kwargs`` override.

    With ``settings.capture_dir`` the client's first answer of each endpoint is captured there.
    """
    # Imported here: planning a run with nothing to do never loads HTTP, Arrow or the SDK's shell.
    from spxdl.sources import DIRECT
    from spxdl.terminal import TerminalClient

    if settings.source == DIRECT:
        return direct_source(settings, **kwargs)
    options: dict[str, Any] = {
        "threads": settings.worker_threads,
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "retries": settings.retries,
        "outage_limit": settings.outage_limit,
    }
    if settings.capture_dir is not None:
        from spxdl.capture import Capture

        options["observer"] = Capture(settings.capture_dir, first_only=True, command=RUN_CAPTURE)
    options.update(kwargs)
    return TerminalClient(settings.terminal_url, settings.terminal_api, **options)


def direct_source(settings: Settings, **kwargs: Any) -> DirectSource:
    """The SDK's source for ``settings``; a terminal client's options in ``kwargs`` are ignored."""
    from spxdl.direct import DirectSource

    if settings.capture_dir is not None:
        raise ConfigError("--capture keeps a terminal's HTTP answers byte for byte; the direct source has none: "
                          "leave --capture out, or use [terminal] source = terminal", key="source")
    options: dict[str, Any] = {"retries": settings.retries, "read_timeout": settings.read_timeout, **kwargs}
    return DirectSource(**options)


def ledger_for(settings: Settings, owner: str | None = None, run_pid: int | None = None) -> Ledger:
    """The ledger of ``settings``' data dir (in its ledger dir), with its claim staleness and its archive;
    its claims made for ``owner`` (a run, where one process works for several), naming the run's
    process ``run_pid`` (a worker's)."""
    return Ledger(settings.ledger_path, stale_after=settings.stale_after, archive=archive_for(settings), owner=owner,
                  run_pid=run_pid)


def archive_for(settings: Settings) -> Archive:
    """Where ``settings``' data files live: the data dir on disk, or an object store (spooled in the ledger dir)."""
    return open_archive(settings.data_dir, storage.spool_dir(settings.ledger_path))


def prepare_storage(settings: Settings) -> Ledger:
    """Make the ledger dir and the archive ready for a run, sweeping temp files their writers left; the ledger.

    Raises what reaching an object store found (ObjectStoreUnreachable, ObjectStoreDenied, BucketMissing).
    """
    ledger = ledger_for(settings)
    settings.ledger_path.mkdir(parents=True, exist_ok=True)
    ledger.archive.prepare()
    if ledger.mirror is not None:
        storage.sweep_temp_files(settings.ledger_path)
    ledger.archive.sweep_temp_files()
    return ledger


def retrying(call: Callable[[], T], attempts: int, what: str, check: Callable[[], None] = lambda: None) -> T:
    """``call()``, made again after a cut body, an expired page or an unavailable terminal."""
    for attempt in range(1, attempts + 1):
        check()
        try:
            return call()
        except RUN_STOPPERS:
            raise
        except RETRYABLE as exc:
            check()  # a failure caused by the stop is no reason to try again
            if attempt == attempts:
                raise
            log.info("%s: attempt %d of %d failed (%s); trying again", what, attempt, attempts, exc)
    raise AssertionError("unreachable: the last attempt returns or raises")


class SharedFlag:
    """A stop flag in shared memory: no lock, so a signal handler or a dying process never blocks it."""

    def __init__(self, context: Any) -> None:
        self._value = context.RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        self._value.value = True

    def is_set(self) -> bool:
        return bool(self._value.value)
