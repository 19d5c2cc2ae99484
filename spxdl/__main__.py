"""``python -m spxdl`` and the ``spxdl`` command: the command line, loaded on first use.

Kept small on purpose: every worker process a run spawns imports its parent's main module again
(``multiprocessing``), and needs nothing of the command line.
"""


def main() -> None:
    """Run the command line; a command that downloads first starts the fork server its workers come from."""
    import sys

    from spxdl.engine import forking

    forking.start_early(sys.argv[1:])  # it loads the workers' code while the command line loads
    from spxdl.cli import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
