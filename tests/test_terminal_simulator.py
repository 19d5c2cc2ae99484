"""TerminalClient against the built-in simulator over real loopback HTTP."""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
from datetime import date

import pytest

from spxdl.datasets import GREEKS
from spxdl.errors import BodyTruncated, PageExpired, TerminalUnavailable
from spxdl.simulator import Faults, Simulator
from spxdl.terminal import TerminalClient

TRADE_DATE = date(2024, 3, 14)
LAST_EXPIRATION = date(2024, 4, 30)


def no_sleep(_seconds: float) -> None:
    """Retry waits are skipped: the simulator's faults are random draws, not timed."""


def settled_counters(sim: Simulator) -> dict:
    """The counters once the server has booked every answer it sent (it books after writing)."""
    previous = sim.counters()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.05)
        current = sim.counters()
        if current == previous:
            return current
        previous = current
    return previous


def expirations_of_the_day(client: TerminalClient) -> list[date]:
    return [e for e in client.expirations("SPXW") if TRADE_DATE <= e <= LAST_EXPIRATION]


def fetch_pages(client: TerminalClient, expiration: date) -> list[bytes]:
    return [page.read() for page in client.history(GREEKS, "SPXW", expiration, TRADE_DATE)]


def data_rows(pages: list[bytes]) -> list[bytes]:
    """The rows of every page without the header line each page repeats."""
    header = pages[0].split(b"\r\n", 1)[0]
    rows = []
    for body in pages:
        first, *rest = body.split(b"\r\n")
        assert first == header and rest[-1] == b""
        rows.extend(rest[:-1])
    return rows


def test_a_chain_paginated_into_many_pages_equals_the_unpaginated_one():
    page_rows = 500
    with Simulator(page_rows=None) as whole, Simulator(page_rows=page_rows) as paged:
        whole_client = TerminalClient(whole.url, api="v2").connect()
        paged_client = TerminalClient(paged.url, api="v2").connect()
        expirations = expirations_of_the_day(paged_client)[:2]
        assert expirations
        for expiration in expirations:
            unpaginated = fetch_pages(whole_client, expiration)
            paginated = fetch_pages(paged_client, expiration)
            rows = data_rows(unpaginated)
            assert len(unpaginated) == 1 and len(rows) > 3 * page_rows
            assert len(paginated) == math.ceil(len(rows) / page_rows)
            assert data_rows(paginated) == rows
        assert "/v2/page" in settled_counters(paged)["requests"]


@pytest.mark.parametrize("flavor, api", [("terminal", "v2"), ("terminal", "v3"), ("thetadatadx", "v3")])
def test_under_faults_every_cut_is_raised_and_refetching_yields_every_row(flavor, api):
    faults = Faults(throttle_rate=0.1, error_rate=0.1, cut_rate=0.05, retry_after=0.0)
    with Simulator(page_rows=1000, seed=7, flavor=flavor) as sim:
        client = TerminalClient(sim.url, api=api, sleep=no_sleep, retries=8)
        expirations = expirations_of_the_day(client)
        clean = {e: data_rows(fetch_pages(client, e)) for e in expirations}
        settled_counters(sim)  # the clean answers are booked before the counters restart
        sim.reset_counters()
        sim.set_faults(faults)
        truncations = rows_in_completed_pages = 0
        fetched = {}
        for expiration in expirations:
            for _attempt in range(30):
                pages: list[bytes] = []
                try:
                    for page in client.history(GREEKS, "SPXW", expiration, TRADE_DATE):
                        pages.append(page.read())
                        rows_in_completed_pages += pages[-1].count(b"\n") - 1
                except BodyTruncated as exc:
                    assert exc.status == 200 and exc.endpoint
                    truncations += 1
                    continue
                except (PageExpired, TerminalUnavailable):
                    continue
                fetched[expiration] = data_rows(pages)
                break
        counters = settled_counters(sim)
    assert fetched == clean
    assert truncations == counters["cut"]["responses"] > 0
    history_rows = sum(counters["rows_by_request"].values())
    assert rows_in_completed_pages == counters["completed"]["rows"] == history_rows
    throttle = "503" if flavor == "thetadatadx" else "429"  # thetadatadx-server: 503 with Retry-After
    throttled = sum(by_status.get(throttle, 0) for by_status in counters["requests"].values())
    failed = sum(by_status.get(s, 0) for by_status in counters["requests"].values() for s in ("500", "474", "571"))
    assert throttled > 0 and failed > 0


# ---------------------------------------------------------------------------------------------
# the in-flight cap across processes


def fetch_in_two_threads(client: TerminalClient, expiration: date, rounds: int) -> None:
    """Two threads sharing ``client``, each fetching the first hour of ``expiration`` ``rounds`` times."""

    def fetch() -> None:
        for _ in range(rounds):
            for page in client.history(GREEKS, "SPXW", expiration, TRADE_DATE, end_ms=37_800_000):
                page.read()

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def worker_process(url: str, slots, phase, expiration: date) -> None:
    """One worker: the same load twice, first with an uncapped client, then with a capped one."""
    uncapped = TerminalClient(url, api="v2", threads=2, sleep=no_sleep).connect()
    capped = TerminalClient(url, api="v2", threads=2, in_flight=slots, sleep=no_sleep).connect()
    phase.wait(60)  # every worker connected: start together
    fetch_in_two_threads(uncapped, expiration, rounds=4)
    phase.wait(60)  # the parent reads and resets the counters
    phase.wait(60)
    fetch_in_two_threads(capped, expiration, rounds=4)


def test_the_in_flight_cap_holds_across_processes_and_threads():
    cap = 3
    context = multiprocessing.get_context("spawn")
    slots = context.BoundedSemaphore(cap)
    phase = context.Barrier(5)  # 4 workers and this process
    with Simulator(faults=Faults(latency=0.04)) as sim:
        expiration = expirations_of_the_day(TerminalClient(sim.url, api="v2"))[0]
        workers = [context.Process(target=worker_process, args=(sim.url, slots, phase, expiration)) for _ in range(4)]
        for worker in workers:
            worker.start()
        phase.wait(60)
        phase.wait(60)
        uncapped = settled_counters(sim)["max_concurrency"]
        sim.reset_counters()
        phase.wait(60)
        for worker in workers:
            worker.join(60)
        capped = settled_counters(sim)["max_concurrency"]
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert uncapped > cap  # without the semaphore the 8 threads overlap
    assert capped <= cap


def test_an_answer_slower_than_the_read_timeout_fails_and_a_longer_timeout_waits_for_it():
    with Simulator(flavor="thetadatadx") as sim:
        impatient = TerminalClient(sim.url, api="v3", read_timeout=0.3, retries=0, sleep=no_sleep).connect()
        patient = TerminalClient(sim.url, api="v3", read_timeout=30.0, retries=0, sleep=no_sleep).connect()
        expiration = expirations_of_the_day(patient)[0]
        sim.set_faults(Faults(latency=1.0))  # the server takes a second before its first byte
        with pytest.raises(TerminalUnavailable, match="did not answer within the read timeout"):
            fetch_pages(impatient, expiration)
        assert len(data_rows(fetch_pages(patient, expiration))) > 1000
