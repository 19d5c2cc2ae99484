"""Every configuration key: its ini section and name, its ``Settings`` field, its parser and its help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from spxdl.config.parsers import (
    optional,
    parse_auto_int,
    parse_choice,
    parse_command,
    parse_data_dir,
    parse_date,
    parse_datasets,
    parse_executor,
    parse_float,
    parse_int,
    parse_interval,
    parse_log_level,
    parse_path,
    parse_rate,
    parse_roots,
    parse_time,
    parse_url,
)
from spxdl.config.settings import COMPRESSIONS, Settings, format_value
from spxdl.urls import redact

ENV_PREFIX = "SPXDL_"


@dataclass(frozen=True)
class KeySpec:
    """One configuration key: where it lives in the ini file, its field and its parser."""

    section: str
    key: str
    field: str
    parse: Callable[[str], Any]
    help: str

    @property
    def env_name(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"


KEYS: tuple[KeySpec, ...] = (
    KeySpec("terminal", "url", "terminal_url", optional(parse_url), "terminal base URL; empty: try 127.0.0.1:25503 (v3), then :25510 (v2)"),
    KeySpec("terminal", "api", "terminal_api", parse_choice("auto", "v2", "v3"), "API version: auto, v2 or v3"),
    KeySpec("terminal", "source", "source", parse_choice("terminal", "direct"),
            "terminal: a ThetaData Terminal or thetadatadx-server at url; direct: ThetaData itself through the thetadatadx-py SDK (Python 3.12+)"),
    KeySpec("terminal", "max_in_flight", "max_in_flight", parse_int(1, 64), "requests in flight across all workers"),
    KeySpec("terminal", "connect_timeout", "connect_timeout", parse_float(0.1, 600), "seconds to connect (to the terminal, and to a Dask scheduler)"),
    KeySpec("terminal", "read_timeout", "read_timeout", parse_float(0.1, 3600), "seconds to wait for an answer's first byte (and between two): thetadatadx-server answers only once the whole chain is built, within its own 300 s deadline"),
    KeySpec("terminal", "retries", "retries", parse_int(0, 50), "attempts per request while the terminal is unavailable"),
    KeySpec("terminal", "outage_limit", "outage_limit", parse_float(1, 86_400), "seconds to wait for a terminal that stopped answering (status probes) before the run stops with exit 75"),
    KeySpec("download", "roots", "roots", parse_roots, "comma list of roots: SPXW (PM weeklies), SPX (AM monthlies)"),
    KeySpec("download", "datasets", "datasets", parse_datasets, "comma list: greeks, greeks_second_order, quote, ohlc, open_interest, eod, greeks_eod, index_price"),
    KeySpec("download", "interval", "interval", parse_interval, "bar interval for greeks, quote, ohlc and index_price"),
    KeySpec("download", "min_dte", "min_dte", parse_int(0, 3650), "keep expirations at least this many days after the trade date"),
    KeySpec("download", "max_dte", "max_dte", parse_int(0, 3650), "keep expirations at most this many days after the trade date"),
    KeySpec("download", "start_date", "start_date", optional(parse_date), "first trade date of the archive (backfill starts here)"),
    KeySpec("download", "start_time", "start_time", parse_time, "start of the intraday window, New York time"),
    KeySpec("download", "end_time", "end_time", parse_time, "end of the intraday window, New York time (inclusive)"),
    KeySpec("download", "rate", "rate", optional(parse_rate), "greeks interest rate series; empty: the terminal's default (SOFR)"),
    KeySpec("download", "rate_value", "rate_value", optional(parse_float(-0.5, 1.0)), "greeks interest rate as a fraction (0.0342 = 3.42%); overrides rate"),
    KeySpec("download", "annual_div", "annual_div", optional(parse_float(0.0, 1000.0)), "greeks annual dividend in index points"),
    KeySpec("download", "lookback", "lookback", parse_int(0, 60), "trading days that update re-checks before the latest session"),
    KeySpec("engine", "workers", "workers", parse_auto_int(1, 64), "worker processes; auto: max_in_flight / threads, plus one"),
    KeySpec("engine", "threads", "threads", parse_auto_int(1, 32), "download threads per worker; auto: 2 (max_in_flight / workers, plus one, when workers is set)"),
    KeySpec("engine", "expiration_attempts", "expiration_attempts", parse_int(1, 20), "fetches of one expiration before it is marked failed"),
    KeySpec("engine", "heartbeat_seconds", "heartbeat_seconds", parse_float(0.05, 600), "seconds between a worker's heartbeats on the tasks it claimed"),
    KeySpec("engine", "stale_after", "stale_after", parse_float(0.2, 86_400), "seconds without a heartbeat after which another run takes a claim over"),
    KeySpec("engine", "executor", "executor", parse_executor,
            "process: worker processes on this machine; dask://HOST:PORT: the tasks on that Dask scheduler's workers "
            "(pip install 'spxdl[dask]'; the data dir on a path every worker shares)"),
    KeySpec("storage", "data_dir", "data_dir", parse_data_dir,
            "where the archive lives: a local path, or an object store (s3://bucket/prefix, gs://, abfs://...) whose "
            "credentials come from its own chain (AWS_* variables, ~/.aws), never from this file"),
    KeySpec("storage", "ledger_dir", "ledger_dir", optional(parse_path),
            "where the ledger lives (its lock, status, runs, logs): a local or shared POSIX directory; empty: the "
            "data dir, which must then be local (an object store needs one)"),
    KeySpec("storage", "compression", "compression", parse_choice(*COMPRESSIONS), "Parquet compression codec"),
    KeySpec("storage", "compression_level", "compression_level", optional(parse_int(-7, 22)), "codec level (zstd, gzip, brotli); empty: the codec's default"),
    KeySpec("storage", "row_group_rows", "row_group_rows", parse_int(1_000, 10_000_000), "rows per Parquet row group"),
    KeySpec("validation", "mode", "validation_mode", parse_choice("flag", "drop", "fail"), "flag: count bad rows; drop: remove them; fail: fail the expiration"),
    KeySpec("logging", "level", "log_level", parse_log_level, "DEBUG, INFO, WARNING or ERROR"),
    KeySpec("logging", "format", "log_format", parse_choice("text", "json"), "log file format: text or json (one object per line)"),
    KeySpec("logging", "file", "log_file", optional(parse_path), "log file; empty: <ledger_dir>/logs/spxdl.log (the data dir's when it holds the ledger)"),
    KeySpec("calendar", "overrides", "calendar_overrides", optional(parse_path), "file of closures announced after this release"),
    KeySpec("calendar", "source", "calendar_source", parse_choice("builtin", "terminal"),
            "builtin: the calendar in spxdl (and the overrides file); terminal: the terminal's own calendar wins (v3)"),
    KeySpec("notify", "command", "notify_command", optional(parse_command),
            "run by /bin/sh after a download that failed, found no data or was interrupted, and after the first success "
            "after one; the run's summary as JSON on its stdin; empty: none"),
    KeySpec("notify", "timeout", "notify_timeout", parse_float(1, 3600), "seconds the notify command may take before it is killed"),
)
KEYS_BY_FIELD = {spec.field: spec for spec in KEYS}
KEYS_BY_NAME = {(spec.section, spec.key): spec for spec in KEYS}
SECTIONS = tuple(dict.fromkeys(spec.section for spec in KEYS))


DERIVED = {"workers": "worker_processes", "threads": "worker_threads"}  # auto: the value in use


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """``(section.key, value, source)`` for every setting, in documentation order."""
    return [
        (f"{spec.section}.{spec.key}", redact(_shown(settings, spec.field)), settings.sources.get(spec.field, "default"))
        for spec in KEYS
    ]


def _shown(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if value is None and name in DERIVED:
        return f"auto ({getattr(settings, DERIVED[name])} for max_in_flight {settings.max_in_flight})"
    return format_value(value)
