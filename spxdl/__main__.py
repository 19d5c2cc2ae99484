"""``python -m spxdl`` runs the command line."""

from spxdl.cli import main

if __name__ == "__main__":
    main()
