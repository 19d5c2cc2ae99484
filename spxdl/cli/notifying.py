"""How a download command ended, handed to ``spxdl.notify`` (``[notify] command``) once it has.

A download command (run, backfill, update, resume) wraps its work in :func:`told`. From the
moment it is about to download (``Told.arm``: planning is done and no question is left to ask),
however it ends is told: complete, failed or partial tasks, days without data, an error that
stopped it, an interruption. Usage errors before that, dry runs and a declined confirmation
tell nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator, Sequence

from spxdl import config, errors, notify
from spxdl.cli.base import EXIT_OK, EXIT_TRY_LATER, Abort, exit_code_for
from spxdl.engine.records import RunSummary


@dataclass
class Told:
    """What a download command did, gathered while it runs."""

    command: str
    settings: config.Settings | None = None
    summaries: list[RunSummary] = field(default_factory=list)
    span: tuple[date, date] | None = None
    armed: bool = False

    def arm(self, settings: config.Settings, span: tuple[date, date]) -> None:
        """From here on the command downloads (or finds nothing to do): how it ends is told."""
        self.settings = settings
        self.armed = True
        first, last = span if self.span is None else (min(self.span[0], span[0]), max(self.span[1], span[1]))
        self.span = (first, last)


def run_failed(code: int, summaries: Sequence[RunSummary], error: str | None) -> bool | None:
    """Whether a download failed; None when all it left were tasks another live run holds (exit 75)."""
    if error is None and code == EXIT_TRY_LATER and all(
        summary.stopped_by is None and summary.interrupted is None for summary in summaries
    ):
        return None
    return code != EXIT_OK


@contextlib.contextmanager
def told(command: str) -> Iterator[Told]:
    """Gather what the download command does; once it has ended (armed), tell ``notify``."""
    gathered = Told(command)
    code, error = EXIT_OK, None
    try:
        yield gathered
    except Abort as exc:
        code = exc.code
        raise
    except (errors.SpxdlError, OSError) as exc:
        code, error = exit_code_for(exc), str(exc)
        raise
    finally:
        if gathered.armed and gathered.settings is not None:
            tell(gathered, code, error)


def tell(gathered: Told, code: int, error: str | None) -> None:
    """Record the outcome in the ledger and run the notify command when it is due."""
    settings = gathered.settings
    assert settings is not None

    def payload(event: str) -> dict:
        return notify.summary_payload(command=gathered.command, exit_code=code, event=event, settings=settings,
                                      summaries=gathered.summaries, span=gathered.span, error=error)

    notify.report_outcome(settings, command=gathered.command, failed=run_failed(code, gathered.summaries, error),
                          exit_code=code, payload_for=payload)
