"""The one exception tree of spxdl.

Every class pickles: worker processes raise these and ``concurrent.futures`` carries them back
to the parent. ``BaseException.__reduce__`` rebuilds an exception as ``cls(*self.args)`` and
then restores ``__dict__``, so every constructor takes the message as its only positional
argument and everything else as keywords with defaults (``test_errors.py`` proves the round
trip for each class).
"""

from __future__ import annotations

from typing import Any, Mapping


class SpxdlError(Exception):
    """Root of every error spxdl raises on purpose."""


class ConfigError(SpxdlError, ValueError):
    """A setting, flag, date or file the user gave is not usable; the message names the fix."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.source = source


class CalendarError(ConfigError):
    """The trading calendar or its overrides file cannot be used."""


class TerminalError(SpxdlError):
    """The terminal answered badly or not at all.

    Carries the endpoint path (the SDK's method for the direct source), the request parameters
    (never the host), the HTTP status if there was one and the first 200 characters of the body
    (the SDK's message); ``said_by`` names who said it.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        params: Mapping[str, Any] | None = None,
        status: int | None = None,
        body: str | None = None,
        said_by: str = "terminal",
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.params = dict(params) if params else {}
        self.status = status
        self.body = (body or "")[:200]
        self.said_by = said_by

    def __str__(self) -> str:
        text = super().__str__()
        details = []
        if self.endpoint:
            details.append(self.endpoint)
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.body and self.body not in text:
            details.append(f"{self.said_by} said: {self.body.strip()!r}")
        return f"{text} ({'; '.join(details)})" if details else text


class TerminalUnavailable(TerminalError, ConnectionError):
    """Refused connection, timeout, 474 DISCONNECTED, 571 SERVER_STARTING or another 5xx."""


class TerminalGone(TerminalUnavailable):
    """The terminal stayed unavailable for longer than ``outage_limit``: the whole run stops (exit 75)."""


class Throttled(TerminalError):
    """429: the terminal's queue is full; retried after ``retry_after`` seconds, outside the budget."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NoData(TerminalError):
    """472: a valid, empty answer. Never retried within the request."""


class PermissionDenied(TerminalError):
    """471 or 403, or a terminal whose credentials were rejected: the subscription lacks access."""


class InvalidSession(TerminalError):
    """478 INVALID_SESSION_ID: more than one terminal runs on the account. Stops the run."""


class RequestTooLarge(TerminalError):
    """570: too much data in one request; a coarser interval or a smaller window is needed."""


class BadRequest(TerminalError):
    """473, 475, 476, 410 or another 4xx: the request itself is wrong. Never retried."""


class BodyTruncated(TerminalError):
    """The body ended before its Content-Length or chunk terminator, or in the middle of a line."""


class PageExpired(TerminalError):
    """477: a page of a paginated answer is gone; the whole expiration is fetched again."""


class DataError(SpxdlError):
    """The data the terminal sent cannot be stored as it is."""


class SchemaMismatch(DataError):
    """The answer lacks a pinned column, or is not CSV at all; ``columns`` names what is missing.

    It would repeat for every request, so the run stops at the first one.
    """

    def __init__(self, message: str, *, columns: list[str] | None = None) -> None:
        super().__init__(message)
        self.columns = list(columns or [])


class ValidationFailed(DataError):
    """A check failed while ``validation = fail``; ``counts`` holds the failing checks."""

    def __init__(self, message: str, *, counts: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.counts = dict(counts or {})


class StorageError(SpxdlError):
    """A file could not be written, read back or verified."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class DiskFull(StorageError):
    """A write found no space: the disk or a quota is full, or a file-size limit was reached.

    Every later write would fail too, so the run stops; the file being written is discarded.
    """


class ArchiveMismatch(StorageError):
    """The data dir holds data of another shape (interval, window, greeks parameters, source)."""


class ObjectStoreError(StorageError):
    """The object store holding the archive (``data_dir = s3://...``) refused or failed a request.

    ``path`` is the object's URI as shown (never with credentials).
    """


class ObjectStoreUnreachable(ObjectStoreError):
    """The object store's endpoint does not answer: every later request would fail too (exit 75)."""


class ObjectStoreDenied(ObjectStoreError):
    """The object store refused the credentials or the permission (403): a configuration to fix (exit 2)."""


class BucketMissing(ObjectStoreError):
    """The bucket ``data_dir`` names does not exist: a configuration to fix (exit 2)."""


class LedgerError(SpxdlError):
    """The ledger cannot be read or written."""


class LedgerBusy(LedgerError, TimeoutError):
    """The ledger lock was not acquired within the wait timeout."""


class LedgerCorrupt(LedgerError):
    """A ledger file is unreadable; it was moved aside to ``moved_to``."""

    def __init__(self, message: str, *, path: str | None = None, moved_to: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.moved_to = moved_to


class ClusterUnavailable(SpxdlError, ConnectionError):
    """The Dask scheduler of ``--executor dask://`` does not answer, has no worker, or went away mid-run."""


class ClusterMismatch(ConfigError):
    """The Dask cluster's workers cannot run this run: other versions (spxdl, Python, Dask, pyarrow)
    than this client's, or a data dir they do not share with it."""


class Interrupted(SpxdlError):
    """The run was asked to stop (signal, or the parent process went away)."""


ALL_ERRORS: tuple[type[SpxdlError], ...] = (
    SpxdlError,
    ConfigError,
    CalendarError,
    TerminalError,
    TerminalUnavailable,
    TerminalGone,
    Throttled,
    NoData,
    PermissionDenied,
    InvalidSession,
    RequestTooLarge,
    BadRequest,
    BodyTruncated,
    PageExpired,
    DataError,
    SchemaMismatch,
    ValidationFailed,
    StorageError,
    DiskFull,
    ArchiveMismatch,
    ObjectStoreError,
    ObjectStoreUnreachable,
    ObjectStoreDenied,
    BucketMissing,
    LedgerError,
    LedgerBusy,
    LedgerCorrupt,
    ClusterUnavailable,
    ClusterMismatch,
    Interrupted,
)
