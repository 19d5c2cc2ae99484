"""``python -m spxdl`` and the ``spxdl`` command: the command line, loaded on first use.

Kept small on purpose: every worker process a run spawns imports its parent's main module again
(``multiprocessing``), and needs nothing of the command line.
"""


def main() -> None:
    """Run the command line."""
    from spxdl.cli import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
