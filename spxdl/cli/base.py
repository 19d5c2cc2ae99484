"""The ``spxdl`` group, the exit codes and how an error becomes one line: the frame every command uses.

``spxdl/cli/`` is the only package that imports click, prints, or picks exit codes. Each command
parses its options, builds ``Settings`` through ``config.load``, calls the library, and turns
library exceptions into one clear line and a documented exit code.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import logging
import os
import platform
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from spxdl import __version__, errors, storage

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_WIRE = 65  # sysexits EX_DATAERR: the terminal answers in a format spxdl does not know
EXIT_NO_SPACE = 74  # sysexits EX_IOERR: a write found no room (disk or quota full, file-size limit)
EXIT_TRY_LATER = 75
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for any program whose reader went away

EXIT_CODES_HELP = """\b
Exit codes:
  0    everything asked for is complete
  1    some tasks failed, are partial, or have no data yet
  2    usage or configuration error (an object store that refuses the
       credentials, or lacks the bucket, included)
  65   the terminal's answer is not the CSV spxdl expects (run stopped)
  74   no space to write (disk or quota full, file-size limit): run
       stopped, nothing partial kept; free space, then spxdl resume
  75   try later: terminal unreachable, not connected or gone mid-run,
       another terminal on the account (478), object store unreachable,
       ledger busy, tasks held by another run, or the Dask scheduler
       (--executor) unreachable
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM)
  141  the output's reader went away (spxdl status | head -1)"""


class Abort(Exception):
    """Raised inside a command to stop with ``code`` after printing ``message``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an exception that ends a command."""
    if isinstance(exc, (errors.ConfigError, errors.ArchiveMismatch, errors.ObjectStoreDenied, errors.BucketMissing)):
        return EXIT_USAGE
    if isinstance(exc, (errors.TerminalUnavailable, errors.InvalidSession, errors.LedgerBusy,
                        errors.ObjectStoreUnreachable, errors.ClusterUnavailable)):
        return EXIT_TRY_LATER
    if isinstance(exc, errors.SchemaMismatch):
        return EXIT_WIRE
    if isinstance(exc, errors.DiskFull) or (isinstance(exc, OSError) and exc.errno in storage.NO_SPACE_ERRNOS):
        return EXIT_NO_SPACE
    return EXIT_INCOMPLETE


def fix_hint(exc: BaseException) -> str:
    """A sentence telling the user what to do about ``exc``, where one helps."""
    if isinstance(exc, errors.TerminalGone):
        return " The run stopped; once the terminal answers again, `spxdl resume` finishes it."
    if isinstance(exc, errors.TerminalUnavailable):
        return (
            ". Start the ThetaData Terminal (java -jar ThetaTerminalv3.jar) and log in, or pass --terminal-url;"
            " --simulate runs spxdl without one."
        )
    if isinstance(exc, errors.PermissionDenied):
        return " Check that your ThetaData subscription includes SPX index options (Standard or Pro for greeks)."
    if isinstance(exc, errors.LedgerBusy):
        return " Another spxdl run is using this data dir; wait for it or run again later."
    if isinstance(exc, errors.SchemaMismatch):
        return " Nothing stored was touched; check the terminal's version, and report this line."
    if isinstance(exc, errors.DiskFull):
        return " Free space on the data dir's disk (or raise the limit), then run `spxdl resume`."
    return ""


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn spxdl errors into one line on stderr and their exit code (traceback only with --verbose)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except Abort as exc:
            if str(exc):
                click.echo(str(exc), err=True)
            ctx.exit(exc.code)
        except BrokenPipeError:
            # The reader of the output (`| head -1`) is gone: nothing is wrong, and nothing more to say.
            silence_output()
            ctx.exit(EXIT_BROKEN_PIPE)
        except errors.SpxdlError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            click.echo(f"spxdl: error: {exc}{fix_hint(exc)}", err=True)
            ctx.exit(exit_code_for(exc))
        except OSError as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            code = exit_code_for(exc)
            fix = "free space on its disk, then run again" if code == EXIT_NO_SPACE else "check the path and its permissions"
            click.echo(f"spxdl: error: {exc.strerror or exc}{where}; {fix}", err=True)
            ctx.exit(code)

    return wrapper


def versions() -> str:
    """``spxdl X (Python Y, pyarrow Z)``: what a bug report needs first (pyarrow's without importing it)."""
    try:
        arrow = importlib.metadata.version("pyarrow")
    except importlib.metadata.PackageNotFoundError:
        arrow = "not installed"
    return f"spxdl {__version__} (Python {platform.python_version()}, pyarrow {arrow})"


def print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: print the versions and exit."""
    if value and not ctx.resilient_parsing:
        click.echo(versions())
        ctx.exit(EXIT_OK)


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file (default: $SPXDL_CONFIG, ~/.config/spxdl/spxdl.ini, ./spxdl.ini).")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging, and a traceback with errors.")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors on the console.")
@click.option("--log-json", is_flag=True, help="Log as JSON lines (console and file).")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=print_version,
              help="Show spxdl's, Python's and pyarrow's versions and exit.")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool, quiet: bool, log_json: bool) -> None:
    """Keep a local Parquet archive of SPX/SPXW option data from a ThetaData Terminal.

    Start with `spxdl run --simulate` (no terminal needed), then `spxdl run` against your own
    terminal. `spxdl COMMAND --help` explains each command.
    """
    ctx.ensure_object(dict)
    ctx.obj.update(config_path=config_path, verbose=verbose, quiet=quiet, log_json=log_json)


class _Discard(io.TextIOBase):
    """An output that takes everything and keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)


def silence_output() -> None:
    """Send what is still to be printed nowhere: the output's reader is gone, and later writes must not fail.

    The broken streams are never flushed again: the command leaves through ``os._exit``.
    """
    sys.stdout = sys.stderr = _Discard()


@contextlib.contextmanager
def output_may_vanish() -> Iterator[None]:
    """Around a report whose reader may be gone: a broken pipe silences the output, the command goes on.

    A download's summary must not turn a complete run's exit code into a broken pipe's.
    """
    try:
        yield
    except BrokenPipeError:
        silence_output()


def main() -> None:
    """Console entry point: run the command, then exit with its code without interpreter teardown."""
    code: int = EXIT_OK
    try:
        cli(prog_name="spxdl")
    except BrokenPipeError:  # written outside a command (help, version)
        silence_output()
        code = EXIT_BROKEN_PIPE
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or EXIT_OK
        else:
            click.echo(str(exc.code), err=True)
            code = EXIT_INCOMPLETE
    exit_now(code)


def exit_now(code: int) -> None:
    """Flush and leave at once.

    Arrow's (and DuckDB's) native thread pools can abort an otherwise finished process while the
    interpreter tears down ("terminate called without an active exception", apache/arrow#34314),
    which would turn a clean run's exit code into 134 for the timer that started it.
    """
    logging.shutdown()
    forking = sys.modules.get("spxdl.engine.forking")  # loaded only where a command may start worker processes
    if forking is not None:
        forking.release_at_exit(reap=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
