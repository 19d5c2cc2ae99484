"""Logging set-up for the command line: a console handler and a rotating file, text or JSON lines.

Library modules only call ``logging.getLogger(__name__)``; ``cli.py`` calls :func:`configure`
once per invocation.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import datetime, timezone
from pathlib import Path

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO), level, logger, process, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ConsoleHandler(logging.StreamHandler):
    """stderr logging that can share the terminal with a live progress line.

    While ``live`` is set, each record first clears the progress line, so that it is not
    appended to it; the display redraws itself at its next update.
    """

    CLEAR_LINE = "\r\033[K"

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.live = False

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return self.CLEAR_LINE + text if self.live else text


class ArchiveLogHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file, which drops what it cannot write.

    On a full disk every record would otherwise print logging's own traceback to stderr; the
    console still shows the record, and the run reports the disk itself (exit 74).
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's naming)
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


def console_handler() -> ConsoleHandler | None:
    """The console handler :func:`configure` installed, if any."""
    for handler in logging.getLogger("spxdl").handlers:
        if isinstance(handler, ConsoleHandler):
            return handler
    return None


def configure(
    *,
    level: str = "INFO",
    console_level: str | None = None,
    fmt: str = "text",
    log_file: Path | None = None,
) -> None:
    """Route spxdl's loggers to stderr (``console_level``) and, if given, a rotating ``log_file``."""
    root = logging.getLogger("spxdl")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    root.propagate = False

    console = ConsoleHandler()
    console.setLevel(console_level or level)
    console.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(CONSOLE_FORMAT, "%H:%M:%S"))
    root.addHandler(console)

    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = ArchiveLogHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
        file_handler.setLevel(level)
        file_handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(file_handler)
