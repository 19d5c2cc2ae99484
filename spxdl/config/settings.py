"""The frozen ``Settings`` of one spxdl invocation, with their defaults and how values are shown."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Mapping

from spxdl import datasets, trading_calendar
from spxdl.errors import ConfigError
from spxdl.urls import redact

RATES = ("SOFR",) + tuple(
    f"TREASURY_{t}" for t in ("M1", "M3", "M6", "Y1", "Y2", "Y3", "Y5", "Y7", "Y10", "Y20", "Y30")
)
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")
LEVELLED_CODECS = ("zstd", "gzip", "brotli")


PROCESS_EXECUTOR = "process"  # [engine] executor: worker processes of this machine (else dask://HOST:PORT)
DEFAULT_THREADS = 2  # two conversions at once keep a worker within 256 MB on chains of 4x the strikes


def engine_shape(max_in_flight: int, workers: int | None = None, threads: int | None = None) -> tuple[int, int]:
    """(worker processes, threads per worker) for ``max_in_flight`` requests at once; None derives one.

    Derived values give more request threads than slots by at least one worker's threads (the
    in-flight semaphore caps them): a thread that is writing its file, or a worker between
    tasks, leaves its slot to a waiting thread of another worker instead of idle. Unset both:
    ``threads`` 2 and ``ceil(max_in_flight / 2) + 1`` workers (Value 2: 2 x 2, Standard 4: 3 x 2,
    Pro 8: 5 x 2). Workers set alone: ``ceil(max_in_flight / workers) + 1`` threads each.
    """
    if threads is None:
        threads = DEFAULT_THREADS if workers is None else math.ceil(max_in_flight / workers) + 1
    if workers is None:
        workers = math.ceil(max_in_flight / threads) + 1
    return workers, threads


@dataclass(frozen=True)
class Settings:
    """Every effective setting of one spxdl invocation; ``sources`` says where each came from."""

    terminal_url: str | None = None
    terminal_api: str = "auto"
    source: str = "terminal"  # terminal (a ThetaData Terminal or thetadatadx-server) or direct (the SDK)
    max_in_flight: int = 4
    connect_timeout: float = 5.0
    # thetadatadx-server sends an answer only when the whole chain is built (within its own 300 s
    # request deadline and upstream retries); a full SPXW chain must not time out before that.
    read_timeout: float = 360.0
    retries: int = 5
    outage_limit: float = 120.0

    roots: tuple[str, ...] = ("SPXW",)
    datasets: tuple[str, ...] = ("greeks",)
    interval: str = "1m"
    min_dte: int = 0
    max_dte: int = 60
    start_date: date | None = None
    start_time: time = time(9, 30)
    end_time: time = time(16, 0)
    rate: str | None = None
    rate_value: float | None = None
    annual_div: float | None = None
    lookback: int = 3

    workers: int | None = None  # None: derived from max_in_flight (engine_shape); see worker_processes
    threads: int | None = None
    expiration_attempts: int = 3
    heartbeat_seconds: float = 10.0
    stale_after: float = 60.0
    executor: str = PROCESS_EXECUTOR  # or dask://HOST:PORT: the tasks run on that Dask scheduler's workers

    data_dir: Path | str = Path("data")  # a local path, or an object-store URI (text: s3://bucket/prefix)
    ledger_dir: Path | None = None  # None: the data dir (which must then be local)
    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 131_072

    validation_mode: str = "flag"

    log_level: str = "INFO"
    log_format: str = "text"
    log_file: Path | None = None

    calendar_overrides: Path | None = None
    calendar_source: str = "builtin"

    notify_command: str | None = None
    notify_timeout: float = 60.0

    # Set by the program, never by a key: the days the terminal's calendar decides ([calendar]
    # source = terminal, resolved once before planning), and where to capture answers (--capture).
    calendar_sessions: tuple[tuple[date, str], ...] = ()
    capture_dir: Path | None = None

    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def start_ms(self) -> int:
        """Start of the intraday window in ms after midnight, New York time."""
        return _ms_of_day(self.start_time)

    @property
    def end_ms(self) -> int:
        """End of the intraday window in ms after midnight, New York time (inclusive)."""
        return _ms_of_day(self.end_time)

    @property
    def data_is_local(self) -> bool:
        """Whether the archive is a local (or mounted) directory, not an object store."""
        return not isinstance(self.data_dir, str)

    @property
    def ledger_path(self) -> Path:
        """Where the ledger lives (its lock, status, run records, logs): ``ledger_dir``, else the data dir."""
        if self.ledger_dir is not None:
            return self.ledger_dir
        if isinstance(self.data_dir, str):
            raise ConfigError(ledger_dir_needed(self.data_dir), key="storage.ledger_dir")
        return self.data_dir

    @property
    def data_dir_shown(self) -> str:
        """The data dir as logs and reports show it: a URI without its credentials."""
        return redact(str(self.data_dir))

    @property
    def worker_processes(self) -> int:
        """How many worker processes a run starts (``workers``, or derived from ``max_in_flight``)."""
        return engine_shape(self.max_in_flight, self.workers, self.threads)[0]

    @property
    def worker_threads(self) -> int:
        """Download threads per worker process (``threads``, or derived from ``max_in_flight``)."""
        return engine_shape(self.max_in_flight, self.workers, self.threads)[1]

    @property
    def on_dask(self) -> bool:
        """Whether the tasks run on a Dask cluster (``executor`` is ``dask://HOST:PORT``)."""
        return self.executor != PROCESS_EXECUTOR

    def archives(self) -> list[str]:
        """The archive directory names this configuration writes, e.g. ``["greeks-1m"]``."""
        return [datasets.get_dataset(name).archive_name(self.interval) for name in self.datasets]

    def calendar(self) -> trading_calendar.TradingCalendar:
        """The trading calendar in effect: built in, the overrides file, and the terminal's days if resolved."""
        return trading_calendar.load_calendar(self.calendar_overrides, dict(self.calendar_sessions))

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (values already typed); sources say ``program``."""
        return self.replace_from("program", **changes)

    def replace_from(self, source: str, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (values already typed); ``source`` says where they came from."""
        sources = dict(self.sources)
        sources.update({name: source for name in changes})
        return dataclasses.replace(self, sources=sources, **changes)


def ledger_dir_needed(data_dir: str) -> str:
    """Why an object-store data dir needs ``ledger_dir``, and how to give it."""
    return (f"data_dir {redact(data_dir)} is an object store, and the ledger needs a local (or shared POSIX) "
            "directory for its lock: set [storage] ledger_dir (or --ledger-dir, SPXDL_STORAGE_LEDGER_DIR), "
            "e.g. ~/.local/share/spxdl/ledger")


def _ms_of_day(value: time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1000 + value.microsecond // 1000


def format_value(value: Any) -> str:
    """How a setting's value is shown (and written back to an ini file)."""
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, time):
        return value.isoformat()
    return str(value)
