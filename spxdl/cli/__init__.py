"""The ``spxdl`` command line: the only package that imports click, prints and picks exit codes.

``base`` holds the group, the exit codes and the one-line error handling; ``options`` the shared
options and settings; ``render`` and ``progress`` what a user sees; ``download``, ``archive`` and
``service`` and ``doctor`` the commands. Importing this package registers every command on ``cli``.
"""

from spxdl.cli import archive, doctor, download, service  # noqa: F401 - importing registers the commands
from spxdl.cli.base import (
    EXIT_BROKEN_PIPE,
    EXIT_INCOMPLETE,
    EXIT_NO_SPACE,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_TRY_LATER,
    EXIT_USAGE,
    EXIT_WIRE,
    Abort,
    cli,
    exit_code_for,
    fix_hint,
    main,
)
from spxdl.cli.progress import Progress
from spxdl.cli.render import print_summary, summary_exit_code

__all__ = [
    "EXIT_BROKEN_PIPE", "EXIT_INCOMPLETE", "EXIT_NO_SPACE", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM", "EXIT_TRY_LATER",
    "EXIT_USAGE", "EXIT_WIRE",
    "Abort", "Progress", "cli", "exit_code_for", "fix_hint", "main", "print_summary", "summary_exit_code",
]
