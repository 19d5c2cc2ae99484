"""Logging set-up for the command line: a console handler and a rotating file, text or JSON lines.

Library modules only call ``logging.getLogger(__name__)``; the CLI calls :func:`configure`
once per invocation, and :func:`attach_file` once it is about to change the archive: a command
that stops at a usage error creates nothing on disk, and the file still gets the records logged
before it was opened.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"
EARLY_RECORDS = 1000  # records kept for the log file before it is opened
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


class EarlyRecords(logging.Handler):
    """The last records logged before the log file is opened: written to it when it is, dropped if never."""

    def __init__(self, level: int | str) -> None:
        super().__init__(level)
        self.records: deque[logging.LogRecord] = deque(maxlen=EARLY_RECORDS)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


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

    root.addHandler(EarlyRecords(level))
    if log_file is not None:
        attach_file(log_file, fmt=fmt)


def attach_file(log_file: Path, *, fmt: str = "text") -> None:
    """Add the rotating ``log_file`` (its directory created) and write into it what was logged so far.

    Its level is the one :func:`configure` gave the file. OSError if the directory cannot be made.
    """
    root = logging.getLogger("spxdl")
    early = next((handler for handler in root.handlers if isinstance(handler, EarlyRecords)), None)
    level = early.level if early is not None else logging.INFO
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = ArchiveLogHandler(
        log_file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
    )
    file_handler.setLevel(level)
    file_handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    if early is not None:
        root.removeHandler(early)
        for record in early.records:
            file_handler.handle(record)
        early.close()
    root.addHandler(file_handler)
