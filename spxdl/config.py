"""Settings: one frozen object, built once from defaults < ini file < environment < flags.

Every value is validated here, once, with a message that names the key, the value and where it
came from. Nothing else in spxdl reads configuration: it is handed a ``Settings``.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, Callable, Mapping

from spxdl import datasets
from spxdl.errors import ConfigError
from spxdl.urls import check_terminal_url

ENV_PREFIX = "SPXDL_"
CONFIG_ENV = "SPXDL_CONFIG"
USER_CONFIG = Path("~/.config/spxdl/spxdl.ini")
LOCAL_CONFIG = Path("spxdl.ini")

ROOT_PATTERN = re.compile(r"^[A-Z]{1,6}$")
RATES = ("SOFR",) + tuple(
    f"TREASURY_{t}" for t in ("M1", "M3", "M6", "Y1", "Y2", "Y3", "Y5", "Y7", "Y10", "Y20", "Y30")
)
COMPRESSIONS = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")
LEVELLED_CODECS = ("zstd", "gzip", "brotli")


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    """Every effective setting of one spxdl invocation; ``sources`` says where each came from."""

    terminal_url: str | None = None
    terminal_api: str = "auto"
    max_in_flight: int = 4
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 5

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

    workers: int = field(default_factory=_default_workers)
    threads: int = 2
    expiration_attempts: int = 3
    heartbeat_seconds: float = 10.0
    stale_after: float = 60.0

    data_dir: Path = Path("data")
    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 131_072

    validation_mode: str = "flag"

    log_level: str = "INFO"
    log_format: str = "text"
    log_file: Path | None = None

    calendar_overrides: Path | None = None

    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def start_ms(self) -> int:
        """Start of the intraday window in ms after midnight, New York time."""
        return _ms_of_day(self.start_time)

    @property
    def end_ms(self) -> int:
        """End of the intraday window in ms after midnight, New York time (inclusive)."""
        return _ms_of_day(self.end_time)

    def archives(self) -> list[str]:
        """The archive directory names this configuration writes, e.g. ``["greeks-1m"]``."""
        return [datasets.get_dataset(name).archive_name(self.interval) for name in self.datasets]

    def describe(self) -> list[tuple[str, str, str]]:
        """``(section.key, value, source)`` for every setting, in documentation order."""
        rows = []
        for spec in KEYS:
            value = getattr(self, spec.field)
            rows.append((f"{spec.section}.{spec.key}", format_value(value), self.sources.get(spec.field, "default")))
        return rows

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied (values already typed); sources say ``program``."""
        sources = dict(self.sources)
        sources.update({name: "program" for name in changes})
        return dataclasses.replace(self, sources=sources, **changes)


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


# ---------------------------------------------------------------- parsers: str -> typed value


def parse_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return number

    return parse


def parse_float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if not low <= number <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return number

    return parse


def parse_workers(text: str) -> int:
    """A worker count, or ``auto`` for min(4, CPUs)."""
    if text.strip().lower() == "auto":
        return _default_workers()
    return parse_int(1, 64)(text)


def parse_choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return value

    return parse


def optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """Empty text means 'not set'."""

    def parse_optional(text: str) -> Any:
        return None if text.strip() == "" else parse(text)

    return parse_optional


def parse_date(text: str) -> date:
    """An ISO date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("expected a date as YYYY-MM-DD") from None


def parse_time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("expected a time as HH:MM or HH:MM:SS (New York time)") from None


def parse_url(text: str) -> str:
    """The terminal's base URL, checked by the client's own check (``spxdl.urls``)."""
    return check_terminal_url(text)


def parse_roots(text: str) -> tuple[str, ...]:
    roots = tuple(dict.fromkeys(r.strip().upper() for r in text.split(",") if r.strip()))
    if not roots:
        raise ValueError("expected at least one root, e.g. SPXW or SPXW,SPX")
    for root in roots:
        if not ROOT_PATTERN.match(root):
            raise ValueError(f"root {root!r} is not 1-6 letters, e.g. SPXW")
    return roots


def parse_datasets(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if not names:
        raise ValueError("expected at least one dataset")
    for name in names:
        if name not in datasets.DATASETS:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(datasets.DATASETS)}")
    return names


def parse_interval(text: str) -> str:
    value = text.strip()
    if value not in datasets.INTERVALS:
        raise ValueError(f"expected one of: {', '.join(datasets.INTERVALS)}")
    return value


def parse_rate(text: str) -> str:
    value = text.strip().upper()
    if value not in RATES:
        raise ValueError(f"expected one of: {', '.join(RATES)}")
    return value


def parse_path(text: str) -> Path:
    if not text.strip():
        raise ValueError("expected a path")
    return Path(os.path.expanduser(text.strip()))


def parse_log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected one of: DEBUG, INFO, WARNING, ERROR")
    return value


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
    KeySpec("terminal", "max_in_flight", "max_in_flight", parse_int(1, 64), "requests in flight across all workers"),
    KeySpec("terminal", "connect_timeout", "connect_timeout", parse_float(0.1, 600), "seconds to connect"),
    KeySpec("terminal", "read_timeout", "read_timeout", parse_float(0.1, 3600), "seconds without a byte before a read fails"),
    KeySpec("terminal", "retries", "retries", parse_int(0, 50), "attempts per request while the terminal is unavailable"),
    KeySpec("download", "roots", "roots", parse_roots, "comma list of roots: SPXW (PM weeklies), SPX (AM monthlies)"),
    KeySpec("download", "datasets", "datasets", parse_datasets, "comma list: greeks, greeks_second_order, quote, ohlc, open_interest, eod"),
    KeySpec("download", "interval", "interval", parse_interval, "bar interval for greeks, quote and ohlc"),
    KeySpec("download", "min_dte", "min_dte", parse_int(0, 3650), "keep expirations at least this many days after the trade date"),
    KeySpec("download", "max_dte", "max_dte", parse_int(0, 3650), "keep expirations at most this many days after the trade date"),
    KeySpec("download", "start_date", "start_date", optional(parse_date), "first trade date of the archive (backfill starts here)"),
    KeySpec("download", "start_time", "start_time", parse_time, "start of the intraday window, New York time"),
    KeySpec("download", "end_time", "end_time", parse_time, "end of the intraday window, New York time (inclusive)"),
    KeySpec("download", "rate", "rate", optional(parse_rate), "greeks interest rate series; empty: the terminal's default (SOFR)"),
    KeySpec("download", "rate_value", "rate_value", optional(parse_float(-0.5, 1.0)), "greeks interest rate as a fraction (0.0342 = 3.42%); overrides rate"),
    KeySpec("download", "annual_div", "annual_div", optional(parse_float(0.0, 1000.0)), "greeks annual dividend in index points"),
    KeySpec("download", "lookback", "lookback", parse_int(0, 60), "trading days that update re-checks before the latest session"),
    KeySpec("engine", "workers", "workers", parse_workers, "worker processes; auto: min(4, CPUs)"),
    KeySpec("engine", "threads", "threads", parse_int(1, 32), "download threads per worker"),
    KeySpec("engine", "expiration_attempts", "expiration_attempts", parse_int(1, 20), "fetches of one expiration before it is marked failed"),
    KeySpec("engine", "heartbeat_seconds", "heartbeat_seconds", parse_float(0.05, 600), "seconds between a worker's heartbeats on the tasks it claimed"),
    KeySpec("engine", "stale_after", "stale_after", parse_float(0.2, 86_400), "seconds without a heartbeat after which another run takes a claim over"),
    KeySpec("storage", "data_dir", "data_dir", parse_path, "where the archive lives"),
    KeySpec("storage", "compression", "compression", parse_choice(*COMPRESSIONS), "Parquet compression codec"),
    KeySpec("storage", "compression_level", "compression_level", optional(parse_int(-7, 22)), "codec level (zstd, gzip, brotli); empty: the codec's default"),
    KeySpec("storage", "row_group_rows", "row_group_rows", parse_int(1_000, 10_000_000), "rows per Parquet row group"),
    KeySpec("validation", "mode", "validation_mode", parse_choice("flag", "drop", "fail"), "flag: count bad rows; drop: remove them; fail: fail the expiration"),
    KeySpec("logging", "level", "log_level", parse_log_level, "DEBUG, INFO, WARNING or ERROR"),
    KeySpec("logging", "format", "log_format", parse_choice("text", "json"), "log file format: text or json (one object per line)"),
    KeySpec("logging", "file", "log_file", optional(parse_path), "log file; empty: <data_dir>/logs/spxdl.log"),
    KeySpec("calendar", "overrides", "calendar_overrides", optional(parse_path), "file of closures announced after this release"),
)
KEYS_BY_FIELD = {spec.field: spec for spec in KEYS}
KEYS_BY_NAME = {(spec.section, spec.key): spec for spec in KEYS}
SECTIONS = tuple(dict.fromkeys(spec.section for spec in KEYS))


def _parse(spec: KeySpec, raw: str, source: str) -> Any:
    try:
        return spec.parse(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{spec.section}.{spec.key} = {raw!r} from {source}: {exc}",
            key=f"{spec.section}.{spec.key}",
            source=source,
        ) from None


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """The ini file to read: ``--config``, else ``$SPXDL_CONFIG``, else the user's, else ``./spxdl.ini``."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; fix the --config path", source="--config")
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) does not exist; fix or unset ${CONFIG_ENV}", source=CONFIG_ENV)
        return path
    for candidate in (USER_CONFIG.expanduser(), LOCAL_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, tuple[str, str]]:
    """Raw values from an ini file: ``{field: (text, source)}``; unknown sections or keys are errors."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.Error, UnicodeDecodeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} cannot be parsed: {first_line}", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}", source=str(path)) from None
    raw: dict[str, tuple[str, str]] = {}
    for section in parser.sections():
        if section not in SECTIONS:
            raise ConfigError(
                f"config file {path}: unknown section [{section}]; known: {', '.join(SECTIONS)}",
                source=str(path),
            )
        for key, text in parser.items(section):
            spec = KEYS_BY_NAME.get((section, key))
            if spec is None:
                known = ", ".join(s.key for s in KEYS if s.section == section)
                raise ConfigError(
                    f"config file {path}: unknown key {key!r} in [{section}]; known: {known}",
                    key=f"{section}.{key}",
                    source=str(path),
                )
            raw[spec.field] = (text, f"file {path}")
    return raw


def read_environment(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Raw values from ``SPXDL_<SECTION>_<KEY>`` variables; an unknown key in a known section is an error."""
    by_env = {spec.env_name: spec for spec in KEYS}
    raw: dict[str, tuple[str, str]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        spec = by_env.get(name)
        if spec is not None:
            raw[spec.field] = (text, f"env {name}")
            continue
        section = name[len(ENV_PREFIX):].split("_", 1)[0].lower()
        if section in SECTIONS:
            raise ConfigError(
                f"environment variable {name} is not a setting; known in [{section}]: "
                + ", ".join(s.env_name for s in KEYS if s.section == section),
                key=name,
                source="environment",
            )
    return raw


def load(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the effective ``Settings``: defaults < ini file < ``SPXDL_*`` env < ``flags``.

    ``flags`` maps field names to values from the command line (``None`` means not given);
    strings are parsed like file values, other values are taken as already typed.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    path = find_config_file(config_path, env)
    layers = [read_config_file(path) if path else {}, read_environment(env)]
    for layer in layers:
        for name, (text, source) in layer.items():
            values[name] = _parse(KEYS_BY_FIELD[name], text, source)
            sources[name] = source
    for name, value in (flags or {}).items():
        if value is None:
            continue
        spec = KEYS_BY_FIELD[name]
        source = f"flag --{name.replace('_', '-')}"
        values[name] = _parse(spec, value, source) if isinstance(value, str) else value
        sources[name] = source
    if "compression_level" not in values and values.get("compression", "zstd") not in LEVELLED_CODECS:
        values["compression_level"] = None  # the default level 3 belongs to zstd
    settings = Settings(**values, sources=sources)
    check_consistency(settings)
    return settings


def check_consistency(settings: Settings) -> None:
    """Checks that involve more than one setting."""
    if settings.min_dte > settings.max_dte:
        raise ConfigError(
            f"min_dte {settings.min_dte} is above max_dte {settings.max_dte} "
            f"({settings.sources.get('min_dte', 'default')} / {settings.sources.get('max_dte', 'default')}); "
            "make min_dte <= max_dte",
            key="download.min_dte",
        )
    if settings.compression_level is not None and settings.compression not in LEVELLED_CODECS:
        raise ConfigError(
            f"compression_level {settings.compression_level} does not apply to {settings.compression}; "
            "leave [storage] compression_level empty or use zstd, gzip or brotli",
            key="storage.compression_level",
        )
    if settings.start_time >= settings.end_time:
        raise ConfigError(
            f"start_time {settings.start_time} is not before end_time {settings.end_time}; fix [download] start_time/end_time",
            key="download.start_time",
        )
    if settings.heartbeat_seconds * 2 > settings.stale_after:
        raise ConfigError(
            f"heartbeat_seconds {settings.heartbeat_seconds:g} is more than half of stale_after "
            f"{settings.stale_after:g}: a live claim could look stale; make stale_after at least twice the heartbeat",
            key="engine.stale_after",
        )
    interval_ms = datasets.interval_ms(settings.interval)
    if interval_ms < 60_000 and (settings.end_ms - settings.start_ms) // interval_ms > 100_000:
        raise ConfigError(
            f"interval {settings.interval} over the whole window is too fine for one request; use 1m or coarser",
            key="download.interval",
        )
