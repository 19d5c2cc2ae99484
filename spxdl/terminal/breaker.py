"""``CircuitBreaker``: when a request spends its retry budget, one thread probes while the rest wait."""

from __future__ import annotations

import threading
from typing import Callable

from spxdl.errors import TerminalGone, TerminalUnavailable


class CircuitBreaker:
    """Shared by one client's threads. Closed: requests flow. Open: one thread probes, the rest wait.

    A probe that gives up fails every request that waited for it (with ``TerminalGone`` when the
    probe's own failure was one); the breaker stays open and the next request probes again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = False
        self._probing = False
        self._failed_probes = 0
        self._gone: TerminalGone | None = None  # what the last failed probe ended in, if the terminal is gone

    @property
    def is_open(self) -> bool:
        return self._open

    def trip(self) -> None:
        """Open the breaker: requests from now on wait for a successful probe."""
        with self._cond:
            self._open = True

    def wait_until_closed(self, probe: Callable[[], None]) -> None:
        """Return at once when closed; else run ``probe`` (one thread) or wait for it (the others)."""
        with self._cond:
            if not self._open:
                return
            generation = self._failed_probes
            while self._open and self._probing:
                self._cond.wait()
                if self._failed_probes != generation:
                    if self._gone is not None:
                        raise TerminalGone(*self._gone.args, endpoint=self._gone.endpoint)
                    raise TerminalUnavailable("the terminal is still unavailable: the status probe gave up")
            if not self._open:
                return
            self._probing = True
        try:
            probe()
        except BaseException as exc:
            with self._cond:
                self._probing = False
                self._gone = exc if isinstance(exc, TerminalGone) else None
                self._failed_probes += 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._open = False
            self._probing = False
            self._cond.notify_all()
