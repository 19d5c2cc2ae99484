"""What the simulator has served: requests by path and status, rows and bytes, concurrency.

Concurrency is also kept as a time integral: ``in_flight_seconds`` adds up, for every moment, how
many requests were in flight (a request counts from its arrival until just before its answer's
last byte), between the first request's arrival and the last answer (``busy_from`` and
``busy_until``, ``time.monotonic()`` seconds). Over a run, ``in_flight_seconds / (cap *
(busy_until - busy_from))`` is the busy fraction of a terminal that allows ``cap`` at once.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any, Callable


class Counters:
    """Thread-safe tallies; ``snapshot()`` is plain JSON-ready data."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._in_flight = 0  # a gauge, not a tally: a reset leaves the requests in flight counted
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
            self._totals = {"completed": [0, 0, 0], "cut": [0, 0, 0]}   # responses, rows, bytes
            self._rows_by_request: dict[str, int] = defaultdict(int)
            self._max_concurrency = self._in_flight
            self._connections = 0
            self._in_flight_seconds = 0.0
            now = self._clock() if self._in_flight else None
            self._changed_at: float | None = now  # the last change of the in-flight count
            self._busy_from: float | None = now
            self._busy_until: float | None = None

    def _advance(self) -> float:
        """Add the in-flight time since the last change; now (under the lock)."""
        now = self._clock()
        if self._changed_at is not None:
            self._in_flight_seconds += self._in_flight * (now - self._changed_at)
        self._changed_at = now
        return now

    def connection_opened(self) -> None:
        with self._lock:
            self._connections += 1

    def enter(self) -> int:
        """A request started; returns how many are now in flight."""
        with self._lock:
            now = self._advance()
            if self._busy_from is None:
                self._busy_from = now
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
            return self._in_flight

    def leave(self) -> None:
        with self._lock:
            self._busy_until = self._advance()
            self._in_flight -= 1

    def record(self, path: str, status: int, *, rows: int = 0, sent: int = 0, cut: bool = False,
               key: str | None = None) -> None:
        """One answer: its status, and for bodies the rows it held and the bytes sent."""
        with self._lock:
            self._requests[path][status] += 1
            if status != 200:
                return
            totals = self._totals["cut" if cut else "completed"]
            totals[0] += 1
            totals[1] += rows
            totals[2] += sent
            if key is not None and not cut:
                self._rows_by_request[key] += rows

    def uncomplete(self, rows: int, size: int, key: str | None) -> None:
        """A response counted as completed lost its last bytes: count it as cut instead."""
        with self._lock:
            done, cut = self._totals["completed"], self._totals["cut"]
            done[0] -= 1
            done[1] -= rows
            done[2] -= size
            cut[0] += 1
            cut[1] += rows
            cut[2] += size
            if key is not None:
                self._rows_by_request[key] -= rows

    def snapshot(self) -> dict[str, Any]:
        """Everything counted so far."""
        with self._lock:
            return {
                "requests": {p: {str(s): n for s, n in sorted(c.items())}
                             for p, c in sorted(self._requests.items())},
                **{kind: {"responses": t[0], "rows": t[1], "bytes": t[2]}
                   for kind, t in self._totals.items()},
                "rows_by_request": dict(sorted(self._rows_by_request.items())),
                "max_concurrency": self._max_concurrency,
                "connections": self._connections,
                "in_flight_seconds": self._in_flight_seconds_until(self._clock()),
                "busy_from": self._busy_from,
                "busy_until": self._busy_until,
            }

    def _in_flight_seconds_until(self, now: float) -> float:
        """The integral including the requests still in flight now (under the lock)."""
        if self._changed_at is None:
            return self._in_flight_seconds
        return self._in_flight_seconds + self._in_flight * (now - self._changed_at)


def counter_lines(snapshot: dict[str, Any]) -> list[str]:
    """Human lines summarising a counters snapshot (what ``spxdl sim`` prints at exit)."""
    lines = []
    for path, by_status in snapshot["requests"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in by_status.items())
        lines.append(f"{path}  {statuses}")
    for kind in ("completed", "cut"):
        t = snapshot[kind]
        lines.append(f"{kind} responses: {t['responses']}, rows: {t['rows']}, bytes: {t['bytes']}")
    lines.append(f"highest concurrency: {snapshot['max_concurrency']}, connections: {snapshot['connections']}")
    return lines
