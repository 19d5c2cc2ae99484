"""Downloads made once per module and copied per test: what many tests only read or change in their copy.

``cli_once`` runs ``spxdl ARGS`` in-process (Click's CliRunner) in a home of its own, as a user with no
configuration (what ``isolated`` makes of each test), and leaves the ``spxdl`` logger as it found it
(the command adds its file handler there). A module-scoped fixture calls it; each test then takes
``copy_into``'s copy of what it made, so that nothing one test changes reaches another.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from spxdl import cli


def cli_once(home: Path, *args: str) -> Result:
    """``spxdl ARGS`` with ``home`` as working directory and HOME and no SPXDL_* variable; the Click result."""
    logger = logging.getLogger("spxdl")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(home)
            patch.setenv("HOME", str(home))
            for name in [name for name in os.environ if name.startswith("SPXDL_")]:
                patch.delenv(name)
            result = CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)
    finally:
        for handler in [handler for handler in logger.handlers if handler not in saved[0]]:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
    assert result.exit_code == 0, result.output + result.stderr
    return result


def copy_into(made: Path, where: Path) -> Path:
    """This test's own copy of the directory ``made`` at ``where`` (which may exist, empty: a test's tmp_path)."""
    return Path(shutil.copytree(made, where, dirs_exist_ok=True))
