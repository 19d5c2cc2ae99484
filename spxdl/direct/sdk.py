"""The thetadatadx-py SDK: loading it (or one line on what to install), its credentials and its configuration.

The SDK (PyPI ``thetadatadx-py``, import ``thetadatadx``; Apache-2.0) needs CPython 3.12 or newer.
Its credentials come from its own chain, in this order: ``THETADATA_API_KEY`` in the environment;
a ``.env`` file (``THETADATA_API_KEY``, or ``THETADATA_EMAIL`` and ``THETADATA_PASSWORD``); a
``creds.txt`` (email on the first line, password on the second): each file looked for in the
working directory, then in ``~/.config/spxdl``. spxdl never reads a secret itself, never writes
one and never logs one: it hands the SDK the variable's name or the file's path, and reports only
where the credentials came from. The SDK's own configuration (``Config.production()``) applies its
environment overrides (``THETADATA_MARKET_DATA_HOST``, ``THETADATA_MARKET_DATA_PORT``,
``THETADATA_NEXUS_URL``); spxdl sets only the retries, the request deadline and the fetch order.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from spxdl.errors import ConfigError

PACKAGE = "thetadatadx-py"
MODULE = "thetadatadx"
MIN_PYTHON = (3, 12)
API_KEY_VARIABLE = "THETADATA_API_KEY"
DOTENV, CREDS_FILE = ".env", "creds.txt"
USER_DIR = Path("~/.config/spxdl")
INSTALL = "pip install 'spxdl[direct]' (make install does it on Python 3.12+)"


def sdk_missing_reason(version: tuple[int, ...], import_error: BaseException | None) -> str | None:
    """Why the SDK cannot be used (one line naming what to install), or None when it can."""
    shown = ".".join(str(part) for part in version[:3])
    if tuple(version[:2]) < MIN_PYTHON:
        return (f"--source direct needs the {PACKAGE} SDK, which needs Python 3.12 or newer, and this is Python "
                f"{shown}: install Python 3.12+, then make install (it picks the newest Python), or use "
                f"[terminal] source = terminal")
    if import_error is not None:
        return f"--source direct needs the {PACKAGE} SDK, which is not installed: {INSTALL}"
    return None


def load_sdk() -> ModuleType:
    """The SDK's module; ConfigError (one line naming what to install) when it cannot be used here."""
    error: BaseException | None = None
    module = None
    if sys.version_info[:2] >= MIN_PYTHON:
        try:
            module = importlib.import_module(MODULE)
        except ImportError as exc:
            error = exc
    reason = sdk_missing_reason(tuple(sys.version_info), error)
    if reason is not None:
        raise ConfigError(reason, key="source")
    return module


def sdk_version(sdk: ModuleType) -> str:
    return str(getattr(sdk, "__version__", "unknown"))


def search_dirs() -> tuple[Path, ...]:
    """Where a ``.env`` or ``creds.txt`` is looked for: the working directory, then ``~/.config/spxdl``."""
    return (Path.cwd(), USER_DIR.expanduser())


@dataclass(frozen=True)
class Found:
    """The SDK's credentials object and where they came from (a variable's name or a file's path; never a secret)."""

    credentials: Any
    origin: str


def find_credentials(sdk: ModuleType, directories: Sequence[Path] | None = None) -> Found:
    """The credentials by the SDK's own chain; ConfigError naming the three places when there are none."""
    if os.environ.get(API_KEY_VARIABLE):
        return Found(_made(sdk.Credentials.from_env, API_KEY_VARIABLE), API_KEY_VARIABLE)
    for directory in directories if directories is not None else search_dirs():
        dotenv = directory / DOTENV
        if dotenv.is_file():
            return Found(_made(sdk.Credentials.from_dotenv, str(dotenv), str(dotenv)), str(dotenv))
        creds = directory / CREDS_FILE
        if creds.is_file():
            return Found(_made(sdk.Credentials.from_file, str(creds), str(creds)), str(creds))
    places = " or ".join(str(d) for d in (directories if directories is not None else search_dirs()))
    raise ConfigError(
        f"the direct source found no ThetaData credentials: set {API_KEY_VARIABLE}, or put it (or THETADATA_EMAIL "
        f"and THETADATA_PASSWORD) in a {DOTENV}, or email and password on two lines in a {CREDS_FILE}, in "
        f"{places}",
        key="source",
    )


def _made(make: Any, origin: str, *args: str) -> Any:
    """``make(*args)``; ConfigError naming ``origin`` (never its content) when the SDK cannot read it."""
    try:
        return make(*args)
    except Exception as exc:  # the SDK's own error type for a file it cannot read
        raise ConfigError(f"the thetadatadx SDK could not read ThetaData credentials from {origin} "
                          f"({type(exc).__name__}): fix or remove it", key="source") from None


def make_config(sdk: ModuleType, *, retries: int, request_timeout: float) -> Any:
    """The SDK's production configuration (its environment overrides applied) with spxdl's retries and deadline.

    ``retries`` follows ``[terminal] retries``: the SDK makes ``retries + 1`` attempts, with its own
    backoff, for a busy or an unavailable upstream. One fetch per request in the server's order
    (``bulk_fetch = "off"``): spxdl asks one trade date at a time.
    """
    config = sdk.Config.production()
    config.bulk_fetch = "off"
    config.retry_max_attempts = retries + 1
    config.request_timeout_secs = max(1, int(request_timeout))
    return config
