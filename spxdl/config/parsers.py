"""Parsers of setting values: text (from a file, the environment or a flag) to a typed value.

Each raises ``ValueError`` with what was expected; the loader adds the key and the source.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import date, time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from spxdl import datasets
from spxdl.config.settings import PROCESS_EXECUTOR, RATES
from spxdl.urls import check_store_uri, check_terminal_url, uri_scheme

ROOT_PATTERN = re.compile(r"^[A-Z]{1,6}$")


def parse_number(low: float, high: float, *, whole: bool = False) -> Callable[[str], Any]:
    """A parser of numbers from ``low`` to ``high``; ``whole`` numbers only, as ``int``, when asked."""
    kind, noun = (int, "a whole number") if whole else (float, "a number")

    def parse(text: str) -> Any:
        try:
            number = kind(text)
        except ValueError:
            raise ValueError(f"expected {noun}") from None
        if not low <= number <= high:
            raise ValueError(f"expected {noun} from {low:g} to {high:g}")
        return number

    return parse


def parse_int(low: int, high: int) -> Callable[[str], int]:
    """Whole numbers from ``low`` to ``high``."""
    return parse_number(low, high, whole=True)


def parse_float(low: float, high: float) -> Callable[[str], float]:
    """Numbers from ``low`` to ``high``."""
    return parse_number(low, high)


def parse_auto_int(low: int, high: int) -> Callable[[str], int | None]:
    """Whole numbers from ``low`` to ``high``, or ``auto`` (None: derived from other settings)."""
    parse = parse_int(low, high)

    def parse_auto(text: str) -> int | None:
        if text.strip().lower() == "auto":
            return None
        try:
            return parse(text)
        except ValueError as exc:
            raise ValueError(f"{exc}, or auto") from None

    return parse_auto


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


def parse_executor(text: str) -> str:
    """``process``, or ``dask://HOST:PORT`` (a Dask scheduler's address; spxdl connects to ``tcp://HOST:PORT``)."""
    value = text.strip()
    if value.lower() == PROCESS_EXECUTOR:
        return PROCESS_EXECUTOR
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme.lower() != "dask" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError("expected process, or a Dask scheduler as dask://HOST:PORT (e.g. dask://127.0.0.1:8786)")
    return f"dask://{parts.netloc}"


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


def parse_data_dir(text: str) -> Path | str:
    """Where the archive lives: a local path (``file://`` too), or an object-store URI kept as text."""
    scheme = uri_scheme(text)
    if scheme is None:
        return parse_path(text)
    if scheme == "file":
        return parse_path(text.strip()[len("file://"):])
    return check_store_uri(text)


def parse_log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected one of: DEBUG, INFO, WARNING, ERROR")
    return value


def parse_command(text: str) -> str:
    """A shell command line (``/bin/sh -c`` runs it); its quotes must balance."""
    command = text.strip()
    try:
        shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"not a command line /bin/sh can run ({exc})") from None
    return command
