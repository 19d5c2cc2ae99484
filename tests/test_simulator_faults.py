"""Faults on demand: 429 with Retry-After, 5xx, cut bodies, latency, the concurrency cap, page expiry."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

from spxdl.errors import ConfigError
from spxdl.simulator import Faults, Simulator

V2_BULK = ("/v2/bulk_hist/option/greeks?root=SPXW&exp=20240315&start_date=20240314&end_date=20240314"
           "&ivl=60000&use_csv=true")
V3_HIST = "/v3/option/history/greeks/first_order?symbol=SPXW&expiration=20240315&date=20240314&interval=1m"
STATUS = "/v2/system/mdds/status"


def fetch(sim, path):
    return requests.get(sim.url + path, timeout=30)


def test_throttle_answers_429_with_retry_after():
    with Simulator(faults=Faults(throttle_rate=1.0, retry_after=0.25)) as s:
        r = fetch(s, STATUS)
        assert r.status_code == 429 and r.headers["Retry-After"] == "0.25"
        s.set_faults(Faults())
        assert fetch(s, STATUS).status_code == 200
        assert s.counters()["requests"][STATUS] == {"200": 1, "429": 1}


def test_error_rate_gives_500_474_and_571():
    with Simulator(faults=Faults(error_rate=1.0)) as s:
        statuses = {fetch(s, STATUS).status_code for _ in range(40)}
        assert statuses == {500, 474, 571}


def test_partial_rates_mix_faults_with_answers():
    with Simulator(faults=Faults(throttle_rate=0.5)) as s:
        statuses = [fetch(s, STATUS).status_code for _ in range(60)]
        assert set(statuses) == {200, 429}


@pytest.mark.parametrize("path", [V2_BULK, V3_HIST])
def test_cut_body_is_an_incomplete_read(path):
    with Simulator(faults=Faults(cut_rate=1.0)) as s:
        parts = urlsplit(s.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
        conn.close()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            requests.get(s.url + path, timeout=10).content
        counters = s.counters()
        assert counters["cut"]["responses"] == 2 and counters["completed"]["responses"] == 0
        assert counters["cut"]["rows"] == 2 * 3910 and counters["rows_by_request"] == {}
        assert 0 < counters["cut"]["bytes"]


def test_cut_rows_never_count_as_completed_rows():
    with Simulator(faults=Faults(cut_rate=0.5)) as s:
        completed = 0
        for _ in range(12):
            try:
                completed += requests.get(s.url + V2_BULK, timeout=10).text.count("\r\n") - 1
            except requests.exceptions.ChunkedEncodingError:
                pass
        counters = s.counters()
        assert counters["completed"]["rows"] == completed
        assert counters["cut"]["responses"] + counters["completed"]["responses"] == 12
        assert counters["cut"]["responses"] > 0 and completed > 0


def test_latency_is_added_to_every_request():
    with Simulator(faults=Faults(latency=0.2)) as s:
        start = time.monotonic()
        fetch(s, STATUS)
        fetch(s, STATUS)
        assert time.monotonic() - start >= 0.4


def test_concurrency_cap_answers_429_above_it():
    with Simulator(faults=Faults(latency=0.4, max_concurrent=2)) as s:
        results = []
        threads = [threading.Thread(target=lambda: results.append(fetch(s, STATUS).status_code))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [200, 200, 429, 429]
        assert s.counters()["max_concurrency"] >= 3      # a 429 is only given above two in flight


def test_page_expiry_answers_477():
    with Simulator(page_rows=1000, faults=Faults(page_expire_rate=1.0)) as s:
        first = fetch(s, V2_BULK)
        assert first.status_code == 200
        assert requests.get(first.headers["Next-Page"], timeout=10).status_code == 477
        s.set_faults(Faults())
        assert requests.get(first.headers["Next-Page"], timeout=10).status_code == 200


def test_faults_are_set_over_http():
    with Simulator() as s:
        r = requests.post(s.url + "/sim/faults", json={"throttle_rate": 1.0, "retry_after": 1}, timeout=10)
        assert r.status_code == 200 and r.json()["throttle_rate"] == 1.0
        assert s.faults == Faults(throttle_rate=1.0, retry_after=1)
        assert fetch(s, STATUS).status_code == 429
        assert requests.get(s.url + "/sim/faults", timeout=10).json()["retry_after"] == 1
        bad = requests.post(s.url + "/sim/faults", json={"explode": 1}, timeout=10)
        assert bad.status_code == 400 and "explode" in bad.text
        assert requests.post(s.url + "/sim/faults", data=b"[1]", timeout=10).status_code == 400
        assert requests.post(s.url + "/sim/faults", json={}, timeout=10).json() == Faults().as_dict()
        assert fetch(s, STATUS).status_code == 200


@pytest.mark.parametrize("kwargs", [{"throttle_rate": 1.5}, {"latency": -1}, {"max_concurrent": 0}])
def test_bad_faults_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        Faults(**kwargs)


def test_client_leaving_mid_body_counts_as_cut_and_prints_nothing(capfd):
    with Simulator() as s:
        parts = urlsplit(s.url)
        big = "/v3/option/history/quote?symbol=SPXW&expiration=20240315&date=20240314&interval=1s"
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(f"GET {big} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 20
        while s.counters()["cut"]["responses"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        counters = s.counters()
        assert counters["cut"]["responses"] == 1 and counters["completed"]["responses"] == 0
        assert get_ok(s)
    assert "Traceback" not in capfd.readouterr().err


def get_ok(sim) -> bool:
    return fetch(sim, STATUS).status_code == 200
