"""A worker's fetch threads: the next task's work starts while a task's last expirations finish, and a
worker never downloads more than ``threads`` at once. Real runs against the simulator, whose
counters tell how many requests were in flight at most."""

from __future__ import annotations

import threading
from datetime import date

from engine_helpers import make_settings
from spxdl import engine
from spxdl.engine.fetchers import Fetchers
from spxdl.simulator import Faults

LATENCY = 0.3  # long enough for requests to overlap when the engine lets them


def run_with_latency(sim, settings, start, end):
    sim.set_faults(Faults(latency=LATENCY))
    sim.reset_counters()
    try:
        summary = engine.run(engine.plan(settings, start, end), settings)
    finally:
        sim.set_faults(Faults())
    assert summary.complete, summary.by_state()
    return sim.counters()


def test_the_next_tasks_work_starts_while_a_tasks_last_expiration_is_fetched(sim, tmp_path):
    # one worker, two threads, one expiration per task (tiny lists Fridays; DTE 0..4): one task at
    # a time would leave a thread idle throughout; the next task fills it
    settings = make_settings(tmp_path, sim.url, workers=1, threads=2, max_dte=4, max_in_flight=4)
    served = run_with_latency(sim, settings, date(2024, 1, 8), date(2024, 1, 12))  # five tasks
    assert served["max_concurrency"] == 2


def test_a_worker_downloads_no_more_than_its_threads_at_once(sim, tmp_path):
    # the worker's spare thread finishes files; it never adds a third request
    settings = make_settings(tmp_path, sim.url, workers=1, threads=2, max_dte=29, max_in_flight=8)
    served = run_with_latency(sim, settings, date(2024, 1, 8), date(2024, 1, 9))  # four or five expirations each
    assert served["max_concurrency"] == 2


def test_a_task_takes_its_turn_once_everything_queued_before_has_started():
    release = threading.Event()
    started: list[str] = []
    fetchers = Fetchers(1, stopping=lambda: False)  # one download at once, one spare thread

    def fetch(name: str) -> None:
        started.append(name)
        release.wait(10)

    with fetchers.turn(fetchers.ticket()):
        first = fetchers.submit(fetch, ["a1", "a2", "a3"])
    turn_taken = threading.Event()
    ticket = fetchers.ticket()

    def next_task() -> None:
        with fetchers.turn(ticket):
            turn_taken.set()

    waiter = threading.Thread(target=next_task)
    waiter.start()
    assert not turn_taken.wait(0.3)  # a3 waits for a thread: the next task may not queue yet
    release.set()
    assert turn_taken.wait(10)
    waiter.join()
    for future in first:
        future.result(10)
    fetchers.shutdown()
    assert started == ["a1", "a2", "a3"]


def test_a_stop_ends_the_wait_for_a_turn():
    stop = threading.Event()
    fetchers = Fetchers(1, stopping=stop.is_set)
    block = threading.Event()
    with fetchers.turn(fetchers.ticket()):
        fetchers.submit(lambda _: block.wait(60), [1, 2, 3])
    stop.set()
    entered = threading.Event()

    ticket = fetchers.ticket()

    def next_task() -> None:
        with fetchers.turn(ticket):  # although fetches still wait: the task then sees the stop and returns
            entered.set()

    waiter = threading.Thread(target=next_task, daemon=True)
    waiter.start()
    assert entered.wait(5), "a task waiting for its turn did not see the stop"
    block.set()
    fetchers.shutdown()


def test_tasks_take_their_turns_in_the_order_they_came():
    fetchers = Fetchers(2, stopping=lambda: False)
    tickets = [fetchers.ticket() for _ in range(4)]
    order: list[int] = []

    def take_turn(ticket: int) -> None:
        with fetchers.turn(ticket):
            order.append(ticket)

    waiters = [threading.Thread(target=take_turn, args=(ticket,)) for ticket in reversed(tickets)]
    for waiter in waiters:  # the last ticket asks first
        waiter.start()
    for waiter in waiters:
        waiter.join(10)
    fetchers.shutdown()
    assert order == tickets
