"""spxdl.terminal.breaker: one thread probes while the others wait; a probe that gives up fails them all."""

from __future__ import annotations

import threading

from spxdl.errors import TerminalUnavailable
from spxdl.terminal import CircuitBreaker


def test_breaker_lets_one_thread_probe_while_the_others_wait():
    breaker = CircuitBreaker()
    breaker.trip()
    probing, release = threading.Event(), threading.Event()
    probes = []

    def probe():
        probes.append(threading.get_ident())
        probing.set()
        assert release.wait(10)

    passed = []
    threads = [threading.Thread(target=lambda: (breaker.wait_until_closed(probe), passed.append(1))) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert probing.wait(10)
    assert passed == []
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(probes) == 1 and len(passed) == 4 and not breaker.is_open


def test_breaker_waiters_fail_when_the_probe_gives_up():
    breaker = CircuitBreaker()
    breaker.trip()
    probing, release = threading.Event(), threading.Event()

    def failing_probe():
        probing.set()
        assert release.wait(10)
        raise TerminalUnavailable("still down")

    outcomes = []

    def request():
        try:
            breaker.wait_until_closed(failing_probe)
            outcomes.append("passed")
        except TerminalUnavailable:
            outcomes.append("failed")

    first = threading.Thread(target=request)
    first.start()
    assert probing.wait(10)
    others = [threading.Thread(target=request) for _ in range(3)]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert outcomes == ["failed"] * 4 and breaker.is_open
