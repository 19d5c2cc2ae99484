"""The simulator's counters: requests in flight as a time integral (what slot utilization is measured with)."""

from __future__ import annotations

import threading

import requests

from spxdl.simulator import Faults, Simulator
from spxdl.simulator.counters import Counters


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_in_flight_seconds_integrate_the_requests_in_flight_over_time():
    clock = Clock()
    counters = Counters(clock=clock)
    assert counters.snapshot()["in_flight_seconds"] == 0 and counters.snapshot()["busy_from"] is None
    counters.enter()            # t=100: one in flight
    clock.now = 101.0
    counters.enter()            # t=101: two
    clock.now = 103.0
    counters.leave()            # t=103: one
    clock.now = 104.0
    assert counters.snapshot()["in_flight_seconds"] == 1 + 2 * 2 + 1  # the open one counts up to now
    counters.leave()            # t=104: none
    clock.now = 110.0           # idle time adds nothing
    snapshot = counters.snapshot()
    assert snapshot["in_flight_seconds"] == 6
    assert (snapshot["busy_from"], snapshot["busy_until"]) == (100.0, 104.0)
    assert snapshot["max_concurrency"] == 2


def test_a_reset_restarts_the_integral_and_keeps_the_requests_in_flight():
    clock = Clock()
    counters = Counters(clock=clock)
    counters.enter()
    clock.now = 105.0
    counters.reset()            # one request still in flight: it counts from the reset on
    clock.now = 107.0
    counters.leave()
    snapshot = counters.snapshot()
    assert snapshot["in_flight_seconds"] == 2
    assert (snapshot["busy_from"], snapshot["busy_until"]) == (105.0, 107.0)
    assert snapshot["max_concurrency"] == 1


def test_the_served_integral_covers_each_request_for_at_least_its_latency():
    latency = 0.2
    with Simulator(faults=Faults(latency=latency)) as sim:
        status = sim.url + "/v2/system/mdds/status"
        threads = [threading.Thread(target=requests.get, args=(status,), kwargs={"timeout": 10}) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counters = requests.get(sim.url + "/sim/counters", timeout=10).json()
    window = counters["busy_until"] - counters["busy_from"]
    assert counters["in_flight_seconds"] >= 3 * latency and window >= latency
    assert counters["in_flight_seconds"] <= counters["max_concurrency"] * window + 1e-9
