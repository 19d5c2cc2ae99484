"""The fork server the worker processes come from: started early, loaded with their code, ended at exit.

Workers are forked from multiprocessing's fork server, which imports their code once
(``spxdl.engine.serving``: Arrow's converter, HTTP) and forks each worker from itself
(docs/engine.md). That import takes about a third of a second, so a command that downloads starts
the fork server as its very first step (``start_early``, from the entry point): it loads on the
second core while the command line loads, plans and finds the terminal on the first, instead of
after them. A run uses the same fork server (``context``); one that never does (nothing to do, a
usage error, a Dask cluster) is killed at exit, loaded or not.

``release_at_exit`` does what multiprocessing does at a normal exit, for a process that leaves at
once. This module imports the standard library only: the entry point loads it before anything else.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any, Iterator, Sequence

PRELOAD = ["spxdl.engine.serving"]
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
# The commands that may start worker processes, and the options with which they do not.
DOWNLOADING = frozenset({"run", "download", "backfill", "update", "resume"})
NOT_DOWNLOADING = frozenset({"--help", "-h", "--version", "--dry-run"})

_used = False  # a run asked for the fork server (context()): it has forked workers, or is about to


def context() -> Any:
    """The multiprocessing context a run starts its workers from: the fork server, loaded with their code."""
    import multiprocessing

    global _used
    _used = True
    return _configured(multiprocessing.get_context("forkserver"))


def _configured(forkserver_context: Any) -> Any:
    forkserver_context.set_forkserver_preload(PRELOAD)
    return forkserver_context


def downloads(arguments: Sequence[str]) -> bool:
    """Whether the command line ``arguments`` name a command that downloads (and not its help or a
    dry run). A word that only looks like one (``--data-dir run``) costs an unused fork server."""
    words = set(arguments)
    return bool(words & DOWNLOADING) and not words & NOT_DOWNLOADING


def start_early(arguments: Sequence[str]) -> bool:
    """Start the fork server now when the command line ``arguments`` name a command that downloads;
    whether it started. A server that cannot start is left for the run to start (and to report)."""
    if not downloads(arguments):
        return False
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker

    try:
        _configured(multiprocessing.get_context("forkserver"))
        # A Ctrl-C or a SIGTERM to the process group is the run's to handle, not the server's: it
        # starts with them blocked. The resource tracker first, since starting it unblocks them.
        resource_tracker.ensure_running()
        with signals_blocked():
            forkserver.ensure_running()
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread: a process started meanwhile inherits the mask (the fork
    server, and through it every worker, which then ignores them: the parent tells them to stop)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def release_at_exit(reap: bool = False) -> None:
    """What multiprocessing does at a normal exit, done before this process leaves at once
    (``os._exit``): unlink its named semaphores, and remove its temp dir (``pymp-*``, where the
    fork server's socket is). ``reap``: also end its helper processes, the fork server and the
    resource tracker, and wait for them, so that no process of the run outlives it and its
    workers' CPU and memory count as this process's children (``make bench`` measures them so);
    not from a signal handler (it takes their locks).

    Otherwise the resource tracker, finding the process gone, prints "There appear to be N leaked
    semaphore objects" after the shell's prompt has returned, and every run leaves a directory in
    the temp dir. Each registers a finalizer that does exactly this at a normal exit; a hard exit
    skips them. Workers still running keep their open handles.
    """
    import multiprocessing
    from multiprocessing import forkserver, resource_tracker, synchronize, util

    _run_finalizers(synchronize.SemLock._cleanup)
    # The fork server first: it ends as soon as it is asked. The tracker ends once every process
    # holding its pipe has, so it is waited for only when no worker is left (never a hang at exit).
    if reap:
        helpers = [getattr(forkserver, "_forkserver", None)]
        if not multiprocessing.active_children():
            helpers.append(getattr(resource_tracker, "_resource_tracker", None))
        if not _used:
            _kill_unused(helpers)
        for helper in helpers:
            with contextlib.suppress(Exception):
                helper._stop()  # private, there since 3.8: what CPython's own tests call
    _run_finalizers(getattr(util, "_remove_temp_dir", None))


def _kill_unused(helpers: list[Any]) -> None:
    """Kill the helper processes of a fork server no run used, rather than wait for them: asked to
    stop, one started early would first finish loading (a third of a second), and a resource
    tracker that has tracked nothing would first finish starting. Neither has a worker whose CPU
    time its reaping would count."""
    for helper in helpers:
        pid = getattr(helper, "_forkserver_pid", None) or getattr(helper, "_pid", None)
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _run_finalizers(callback: Any) -> None:
    """Run (once) multiprocessing's finalizers that call ``callback``."""
    from multiprocessing import util

    for finalizer in list(getattr(util, "_finalizer_registry", {}).values()):  # private, but stable since 3.4
        if callback is not None and getattr(finalizer, "_callback", None) is callback:
            with contextlib.suppress(Exception):
                finalizer()
