"""The fork server the worker processes come from, and what multiprocessing leaves to end at exit.

Workers are forked from multiprocessing's fork server, which imports their code once
(``spxdl.engine.serving``: Arrow's converter, HTTP) and forks each worker from itself
(docs/engine.md); ``context`` is the multiprocessing context a run starts them from. It starts
with the first worker, with SIGINT and SIGTERM blocked (``signals_blocked``): a Ctrl-C or a
SIGTERM to the process group is the run's to handle, and a fork server killed by one would read,
to the parent, as the death of every worker.

``release_at_exit`` does what multiprocessing does at a normal exit, for a process that leaves at
once. This module imports the standard library only.
"""

from __future__ import annotations

import contextlib
import signal
from typing import Any, Iterator

PRELOAD = ["spxdl.engine.serving"]
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def context() -> Any:
    """The multiprocessing context a run starts its workers from: the fork server, loaded with their code."""
    import multiprocessing

    forkserver_context = multiprocessing.get_context("forkserver")
    forkserver_context.set_forkserver_preload(PRELOAD)
    return forkserver_context


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread: a process started meanwhile inherits the mask (the fork
    server, and through it every worker, which then ignores them: the parent tells them to stop).
    Starting the resource tracker unblocks them again: a crew starts it first (its queue)."""
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
        for helper in helpers:
            with contextlib.suppress(Exception):
                helper._stop()  # private, there since 3.8: what CPython's own tests call
    _run_finalizers(getattr(util, "_remove_temp_dir", None))


def _run_finalizers(callback: Any) -> None:
    """Run (once) multiprocessing's finalizers that call ``callback``."""
    from multiprocessing import util

    for finalizer in list(getattr(util, "_finalizer_registry", {}).values()):  # private, but stable since 3.4
        if callback is not None and getattr(finalizer, "_callback", None) is callback:
            with contextlib.suppress(Exception):
                finalizer()
