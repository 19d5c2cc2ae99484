"""Suite-wide hooks."""

from __future__ import annotations

import logging
import os
import sys

import pytest

_EXIT_STATUS: list[int] = []


@pytest.fixture(autouse=True)
def restore_spxdl_logging():
    """CLI invocations configure the ``spxdl`` logger; put it back so later tests see a plain one."""
    logger = logging.getLogger("spxdl")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave with pytest's own exit status once everything is reported, skipping interpreter teardown.

    Arrow's and DuckDB's native thread pools can abort a finished process during teardown
    ("terminate called without an active exception", apache/arrow#34314): a passed suite would
    then exit 134. Results and the summary are already written when this runs.
    """
    if _EXIT_STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[-1])
