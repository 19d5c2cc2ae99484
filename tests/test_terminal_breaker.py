"""spxdl.terminal.breaker: one thread probes while the others wait; a probe that gives up fails them all."""

from __future__ import annotations

import threading

from spxdl.errors import Interrupted, TerminalGone, TerminalUnavailable
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


def test_breaker_waiters_learn_that_the_terminal_is_gone_when_the_probe_says_so():
    """A probe that waited out outage_limit fails its waiters with TerminalGone (which stops a run);
    any other failed probe (a stop, say) with plain TerminalUnavailable."""
    for raised, expected in ((TerminalGone("gone for good"), TerminalGone), (Interrupted("stopping"), TerminalUnavailable)):
        breaker = CircuitBreaker()
        breaker.trip()
        probing, release = threading.Event(), threading.Event()

        def failing_probe(error=raised):
            probing.set()
            assert release.wait(10)
            raise error

        caught = []

        def request():
            try:
                breaker.wait_until_closed(failing_probe)
            except BaseException as exc:  # the prober gets the probe's own error, the waiters the breaker's
                caught.append(exc)

        first = threading.Thread(target=request)
        first.start()
        assert probing.wait(10)
        waiter = threading.Thread(target=request)
        waiter.start()
        while not breaker._cond._waiters:  # the waiter waits on the probe before it fails (private, but exact)
            threading.Event().wait(0.01)
        release.set()
        for thread in (first, waiter):
            thread.join(10)
        assert caught[0] is raised
        assert type(caught[1]) is expected, caught
        if expected is TerminalGone:  # the waiters say what the probe found
            assert str(caught[1]) == str(raised)
