"""The simulator driven from another process, `check` as `spxdl sim --check` runs it, Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from spxdl.errors import TerminalError, TerminalUnavailable
from spxdl.simulator import Faults, Simulator, check

SERVE = ("from spxdl.simulator import Simulator; s = Simulator(seed=2); "
         "print(s.url, flush=True); s.serve_forever(); print('\\n'.join(s.counter_lines()), flush=True)")


def test_foreground_server_is_driven_over_http_and_stops_cleanly_on_ctrl_c():
    proc = subprocess.Popen([sys.executable, "-c", SERVE], stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert requests.get(url + "/v2/system/mdds/status", timeout=10).text == "CONNECTED"
        assert requests.post(url + "/sim/faults", json={"throttle_rate": 1.0}, timeout=10).status_code == 200
        assert requests.get(url + "/v2/system/mdds/status", timeout=10).status_code == 429
        counters = requests.get(url + "/sim/counters", timeout=10).json()
        assert counters["requests"]["/v2/system/mdds/status"] == {"200": 1, "429": 1}
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "/v2/system/mdds/status  200: 1, 429: 1" in out and "highest concurrency: 1" in out


def test_check_exercises_every_endpoint_family_in_every_format():
    with Simulator(page_rows=30) as s:
        lines = check(s.url)
        counters = s.counters()
    text = "\n".join(lines)
    for path in ("/v2/system/mdds/status", "/v3/terminal/mdds/status", "/v2/list/roots/option",
                 "/v2/list/expirations", "/v2/list/strikes", "/v2/list/dates/option/quote",
                 "/v3/option/list/expirations", "/v3/option/list/strikes", "/v3/option/list/dates/quote",
                 "/v2/bulk_hist/option/greeks ", "/v2/bulk_hist/option/greeks_second_order",
                 "/v2/bulk_hist/option/quote", "/v2/bulk_hist/option/ohlc", "/v2/bulk_hist/option/open_interest",
                 "/v2/bulk_hist/option/eod", "/v3/option/history/greeks/first_order", "/v3/option/history/quote",
                 "/v3/option/history/ohlc", "/v3/option/history/open_interest", "/v3/option/history/eod"):
        assert path in text
    assert "70 rows in 3 page(s)" in text and counters["requests"]["/v2/page"]["200"] >= 8


def test_check_raises_a_terminal_error_when_the_simulator_misbehaves():
    with Simulator(faults=Faults(error_rate=1.0)) as s:
        with pytest.raises(TerminalError) as info:
            check(s.url)
    assert info.value.status in (500, 474, 571)


def test_check_raises_unavailable_when_nothing_listens():
    with Simulator() as s:
        url = s.url
    with pytest.raises(TerminalUnavailable):
        check(url)
