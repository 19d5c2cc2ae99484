"""A simulated terminal in a process of its own, built through the Python API (options the CLI lacks).

``sim_process.start_simulator`` runs ``spxdl sim``; this one runs ``Simulator`` in a spawned
process, so a benchmark can give it a body cache that holds a whole day (``body_cache_mb``) and
faults (a fixed latency, a concurrency cap) without measuring it: it never shares a process with
spxdl.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import urllib.request
from typing import Any, Iterator


def _serve(connection: Any, options: dict[str, Any]) -> None:
    from spxdl.simulator import Faults, Simulator

    faults = Faults(**options.pop("faults", {}))
    simulator = Simulator(faults=faults, **options)
    connection.send(simulator.url)
    simulator.serve_forever()


@contextlib.contextmanager
def simulator_process(profile: str, *, body_cache_mb: int | None = None, **faults: Any) -> Iterator[str]:
    """A ``profile`` simulator serving from its own process; yields its URL, ends it afterwards."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    options: dict[str, Any] = {"profile": profile, "faults": faults}
    if body_cache_mb is not None:
        options["body_cache_mb"] = body_cache_mb
    process = context.Process(target=_serve, args=(send, options), daemon=True, name=f"simulator-{profile}")
    process.start()
    try:
        if not receive.poll(60):
            raise SystemExit(f"the {profile} simulator did not start")
        yield receive.recv()
    finally:
        process.terminate()
        process.join(30)


def counters(url: str) -> dict[str, Any]:
    """The simulator's counters (``/sim/counters``)."""
    with urllib.request.urlopen(f"{url}/sim/counters", timeout=30) as answer:
        return json.load(answer)


def reset_counters(url: str) -> None:
    """Zero the simulator's counters (``/sim/reset``)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/sim/reset", method="POST"), timeout=30).close()
