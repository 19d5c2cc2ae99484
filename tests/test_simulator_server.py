"""The simulator over real loopback HTTP: endpoints, formats, pagination, errors, keep-alive."""

from __future__ import annotations

import csv
import http.client
import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from spxdl.errors import ConfigError
from spxdl.simulator import SIMULATOR_HEADER, Faults, Simulator

DATA = Path(__file__).parent / "data"
DAY, EXP = "20240314", "20240315"
V2_BULK = {"root": "SPXW", "exp": EXP, "start_date": DAY, "end_date": DAY, "ivl": "60000", "use_csv": "true"}
V3_HIST = {"symbol": "SPXW", "expiration": "2024-03-15", "date": DAY, "interval": "1m"}
V3_EOD = {"symbol": "SPXW", "expiration": "2024-03-15", "start_date": DAY, "end_date": DAY}
TINY_CONTRACTS = 10          # 5 strikes x 2 rights
RTH_MINUTES = 391            # 09:30 .. 16:00 inclusive


@pytest.fixture(scope="module")
def sim():
    with Simulator(profile="tiny", seed=7) as s:
        yield s


def get(sim, path, **params):
    return requests.get(sim.url + path, params=params, timeout=30)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- system and lists ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v2/system/mdds/status", "/v3/terminal/mdds/status"])
def test_status_answers_connected_as_plain_text(sim, path):
    r = get(sim, path)
    assert r.status_code == 200 and r.content == (DATA / "v3-terminal-mdds-status-none.txt").read_bytes()
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers[SIMULATOR_HEADER].endswith("; profile=tiny; seed=7")
    assert r.headers[SIMULATOR_HEADER].startswith("spxdl-sim/")


def test_v2_lists_in_csv_and_json(sim):
    roots = get(sim, "/v2/list/roots/option", use_csv="true")
    assert roots.content == b"root\r\nSPX\r\nSPXW\r\n"
    exps = get(sim, "/v2/list/expirations", root="SPXW").json()
    assert exps["header"]["format"] == ["date"] and exps["header"]["next_page"] == "null"
    assert exps["response"] == sorted(exps["response"]) and int(EXP) in exps["response"]
    csv_exps = csv_rows(get(sim, "/v2/list/expirations", root="SPXW", use_csv="true").text)
    assert csv_exps[0] == ["date"] and [int(r[0]) for r in csv_exps[1:]] == exps["response"]
    strikes = get(sim, "/v2/list/strikes", root="SPXW", exp=EXP).json()["response"]
    assert len(strikes) == 5 and all(k % 50_000 == 0 and k > 4_000_000 for k in strikes)
    dates = get(sim, "/v2/list/dates/option/quote", root="SPXW", exp=EXP, use_csv="true").text.split("\r\n")
    assert dates[0] == "date" and DAY in dates and "20240316" not in dates and dates[-1] == ""


def test_v3_lists_in_csv_and_json(sim):
    exps = get(sim, "/v3/option/list/expirations", symbol="SPXW").content
    assert exps.startswith(b"symbol,expiration\r\n") and b"SPXW,2024-03-15\r\n" in exps
    strikes = get(sim, "/v3/option/list/strikes", symbol="SPXW", expiration="20240315", format="json")
    assert strikes.headers["Content-Type"] == "application/json"
    assert strikes.content.startswith(b'{\n\t"response": [\n\t\t{"symbol":"SPXW","strike":')
    assert strikes.content.endswith(b"\n\t]\n}\n\n") and b".000}" in strikes.content
    dates = get(sim, "/v3/option/list/dates/quote", symbol="SPXW", expiration="2024-03-15", format="json").json()
    assert {"date": "2024-03-14"} in dates["response"]


def test_spx_monthly_is_its_own_root(sim):
    spx = get(sim, "/v2/list/expirations", root="SPX").json()["response"]
    assert 20240315 in spx and 20240322 not in spx
    assert 20140322 in spx           # before 2015 the AM monthly carries the Saturday date
    r = get(sim, "/v2/bulk_hist/option/quote", **(V2_BULK | {"root": "SPX", "start_date": "20240313",
                                                            "end_date": "20240313"}))
    assert r.status_code == 200 and r.text.split("\r\n")[1].startswith("SPX,20240315,")


# -- history ---------------------------------------------------------------------------------

def test_v2_greeks_csv_shape(sim):
    r = get(sim, "/v2/bulk_hist/option/greeks", **V2_BULK)
    assert r.status_code == 200 and r.headers["Next-Page"] == "null"
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert r.content.endswith(b"\r\n") and r.content.count(b"\n") == r.content.count(b"\r\n")
    rows = csv_rows(r.text)
    assert len(rows) == 1 + TINY_CONTRACTS * RTH_MINUTES
    first, last = dict(zip(rows[0], rows[1])), dict(zip(rows[0], rows[-1]))
    assert (first["root"], first["expiration"], first["right"], first["date"]) == ("SPXW", EXP, "C", DAY)
    assert first["ms_of_day"] == "34200000" and last["ms_of_day"] == "57600000" and last["right"] == "P"
    assert int(first["strike"]) % 50_000 == 0
    assert len(first["bid"].split(".")[1]) == 2 and len(first["delta"].split(".")[1]) == 4


@pytest.mark.parametrize("path", ["/v2/bulk_hist/option/greeks_second_order", "/v2/bulk_hist/option/quote",
                                  "/v2/bulk_hist/option/ohlc"])
def test_v2_interval_endpoints_give_one_row_per_contract_minute(sim, path):
    rows = csv_rows(get(sim, path, **V2_BULK).text)
    assert rows[0][:4] == ["root", "expiration", "strike", "right"] and rows[0][-1] == "date"
    assert len(rows) == 1 + TINY_CONTRACTS * RTH_MINUTES


@pytest.mark.parametrize("path", ["/v2/bulk_hist/option/open_interest", "/v2/bulk_hist/option/eod"])
def test_v2_daily_endpoints_give_one_row_per_contract_day(sim, path):
    rows = csv_rows(get(sim, path, **V2_BULK).text)
    assert len(rows) == 1 + TINY_CONTRACTS
    assert all(r[-1] == DAY for r in rows[1:])


def test_v2_json_bulk_envelope(sim):
    params = dict(V2_BULK)
    del params["use_csv"]
    doc = get(sim, "/v2/bulk_hist/option/quote", **params).json()
    assert doc["header"]["format"][0] == "ms_of_day" and doc["header"]["next_page"] == "null"
    assert len(doc["response"]) == TINY_CONTRACTS
    item = doc["response"][0]
    assert set(item) == {"ticks", "contract"} and len(item["ticks"]) == RTH_MINUTES
    assert item["contract"]["root"] == "SPXW" and item["contract"]["expiration"] == int(EXP)
    assert len(item["ticks"][0]) == len(doc["header"]["format"])


def test_v3_csv_and_json_carry_the_same_rows(sim):
    text = get(sim, "/v3/option/history/greeks/first_order", **V3_HIST).text
    rows = csv_rows(text)
    assert len(rows) == 1 + TINY_CONTRACTS * RTH_MINUTES
    first = dict(zip(rows[0], rows[1]))
    assert first["timestamp"] == "2024-03-14T09:30:00" and first["right"] == "CALL"
    assert first["expiration"] == "2024-03-15" and first["strike"].endswith(".000")
    doc = get(sim, "/v3/option/history/greeks/first_order", **V3_HIST, format="json").json()
    assert sum(len(c["data"]) for c in doc["response"]) == len(rows) - 1
    contract = doc["response"][0]["contract"]
    assert list(contract) == ["symbol", "expiration", "right", "strike"] and contract["right"] == "CALL"
    assert doc["response"][0]["data"][0]["delta"] == float(first["delta"])


def test_same_contract_minute_has_same_values_in_every_endpoint_and_api(sim):
    v2_greeks = csv_rows(get(sim, "/v2/bulk_hist/option/greeks", **V2_BULK).text)
    v2_quote = csv_rows(get(sim, "/v2/bulk_hist/option/quote", **V2_BULK).text)
    v2_second = csv_rows(get(sim, "/v2/bulk_hist/option/greeks_second_order", **V2_BULK).text)
    v3_greeks = csv_rows(get(sim, "/v3/option/history/greeks/first_order", **V3_HIST).text)
    v3_quote = csv_rows(get(sim, "/v3/option/history/quote", **V3_HIST).text)
    for i in (1, 200, 3000):
        g2, q2 = dict(zip(v2_greeks[0], v2_greeks[i])), dict(zip(v2_quote[0], v2_quote[i]))
        s2 = dict(zip(v2_second[0], v2_second[i]))
        g3, q3 = dict(zip(v3_greeks[0], v3_greeks[i])), dict(zip(v3_quote[0], v3_quote[i]))
        assert g2["bid"] == q2["bid"] == s2["bid"] == g3["bid"] == q3["bid"]
        assert g2["ask"] == q2["ask"] == g3["ask"] == q3["ask"]
        assert (g2["delta"], g2["implied_vol"], g2["underlying_price"]) == (
            g3["delta"], g3["implied_vol"], g3["underlying_price"])
        assert s2["implied_vol"] == g2["implied_vol"]
        assert q2["bid_size"] == q3["bid_size"]


def test_intervals_windows_and_the_late_window(sim):
    five = csv_rows(get(sim, "/v3/option/history/quote", **(V3_HIST | {"interval": "5m"})).text)
    assert len(five) == 1 + TINY_CONTRACTS * 79           # the 79 rows the docs report for 5 minutes
    late = csv_rows(get(sim, "/v3/option/history/quote", **(V3_HIST | {"end_time": "16:15:00"})).text)
    assert len(late) == 1 + TINY_CONTRACTS * 406
    window = csv_rows(get(sim, "/v2/bulk_hist/option/quote",
                          **(V2_BULK | {"start_time": "36000000", "end_time": "36600000"})).text)
    assert len(window) == 1 + TINY_CONTRACTS * 11
    seconds = csv_rows(get(sim, "/v3/option/history/quote", **(V3_HIST | {"interval": "30s",
                                                                          "end_time": "09:31:00"})).text)
    assert [r[4] for r in seconds[1:4]] == ["2024-03-14T09:30:00", "2024-03-14T09:30:30", "2024-03-14T09:31:00"]
    # The vendor's contract makes interval required (its listed default of 1s notwithstanding):
    # the contract wins over the simulator's earlier guess of defaulting to 1s.
    no_interval = {k: v for k, v in V3_HIST.items() if k != "interval"}
    missing = get(sim, "/v3/option/history/quote", **no_interval, end_time="09:31:00")
    assert missing.status_code == 473 and "interval" in missing.text


def test_v3_strike_and_right_filters(sim):
    strikes = get(sim, "/v3/option/list/strikes", symbol="SPXW", expiration=EXP).text.split("\r\n")[1:-1]
    strike = strikes[2].split(",")[1]
    rows = csv_rows(get(sim, "/v3/option/history/quote", **V3_HIST, strike=strike, right="put").text)
    assert len(rows) == 1 + RTH_MINUTES and {(r[2], r[3]) for r in rows[1:]} == {(strike, "PUT")}


def test_ohlc_empty_bars_carry_vwap_forward(sim):
    doc = get(sim, "/v3/option/history/ohlc", **V3_HIST, format="json").json()
    bars = [row for c in doc["response"] for row in c["data"]]
    empty = [b for b in bars if b["volume"] == 0]
    assert empty and all(b["open"] == b["high"] == b["close"] == 0.0 and b["count"] == 0 for b in empty)
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
               for b in bars if b["volume"] > 0)


def test_multi_day_v2_request_skips_non_trading_days(sim):
    rows = csv_rows(get(sim, "/v2/bulk_hist/option/eod", **(V2_BULK | {"start_date": "20240308",
                                                                       "end_date": "20240312"})).text)
    assert sorted({r[-1] for r in rows[1:]}) == ["20240308", "20240311", "20240312"]


# -- large bodies, pagination, determinism ---------------------------------------------------

def test_large_v3_bodies_are_chunked_and_v2_bodies_have_content_length(sim):
    r = get(sim, "/v3/option/history/greeks/first_order", **V3_HIST)
    assert r.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in r.headers
    small = get(sim, "/v3/option/history/eod", **V3_EOD)
    assert int(small.headers["Content-Length"]) == len(small.content)
    v2 = get(sim, "/v2/bulk_hist/option/greeks", **V2_BULK)
    assert int(v2.headers["Content-Length"]) == len(v2.content) > 100_000


@pytest.mark.parametrize("use_csv", ["true", "false"])
def test_pages_concatenate_to_the_unpaginated_rows(sim, use_csv):
    whole = get(sim, "/v2/bulk_hist/option/greeks", **V2_BULK)
    with Simulator(profile="tiny", seed=7, page_rows=1000) as paged:
        r = get(paged, "/v2/bulk_hist/option/greeks", **(V2_BULK | {"use_csv": use_csv}))
        bodies = [r]
        while True:
            nxt = r.headers["Next-Page"] if use_csv == "true" else r.json()["header"]["next_page"]
            assert nxt == r.headers["Next-Page"]
            if nxt == "null":
                break
            assert nxt.startswith(paged.url + "/v2/page/")
            r = requests.get(nxt, timeout=30)
            assert r.status_code == 200
            bodies.append(r)
        ids = [int(b.url.rsplit("/", 1)[1]) for b in bodies[1:]]
        assert ids == sorted(ids) and len(bodies) == 4
        if use_csv == "true":
            pages = [csv_rows(b.text) for b in bodies]
            assert all(p[0] == pages[0][0] for p in pages)             # every page has its header
            assert [row for p in pages for row in p[1:]] == csv_rows(whole.text)[1:]
        else:
            ticks = [(tuple(i["contract"].values()), t) for b in bodies for i in b.json()["response"]
                     for t in i["ticks"]]
            assert len(ticks) == TINY_CONTRACTS * RTH_MINUTES
            assert [t[1][0] for t in ticks[:2]] == [34_200_000, 34_260_000]
        counters = paged.counters()
        key = "v2 greeks SPXW 2024-03-15 2024-03-14..2024-03-14"
        assert counters["rows_by_request"] == {key: TINY_CONTRACTS * RTH_MINUTES}
        assert counters["requests"]["/v2/page"] == {"200": 3}


def test_unknown_page_is_477(sim):
    r = get(sim, "/v2/page/999999")
    assert r.status_code == 477 and r.headers["Content-Type"] == "text/plain"


def test_same_seed_gives_the_same_bytes_across_restarts():
    def bodies(seed):
        with Simulator(profile="tiny", seed=seed) as s:
            return [get(s, "/v2/bulk_hist/option/greeks", **V2_BULK).content,
                    get(s, "/v3/option/history/ohlc", **V3_HIST, format="json").content,
                    get(s, "/v2/list/strikes", root="SPXW", exp=EXP).content]
    first = bodies(3)
    assert bodies(3) == first
    assert bodies(4)[0] != first[0]


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"start_date": "20240316", "end_date": "20240316"},      # Saturday
    {"start_date": "20240329", "end_date": "20240329"},      # Good Friday
    {"exp": "20240322", "start_date": "20240325", "end_date": "20240325"},   # expired
    {"exp": "20250321", "start_date": "20240102", "end_date": "20240102"},   # not listed yet
    {"exp": "20240314"},                                      # a Thursday: no tiny SPXW expiry
    {"root": "AAPL"},
])
def test_no_data_is_472_plain_text(sim, params):
    r = get(sim, "/v2/bulk_hist/option/greeks", **(V2_BULK | params))
    assert r.status_code == 472 and r.headers["Content-Type"] == "text/plain"
    assert r.text.startswith("No data")


def test_v3_saturday_is_472(sim):
    assert get(sim, "/v3/option/history/greeks/first_order", **(V3_HIST | {"date": "20240316"})).status_code == 472


@pytest.mark.parametrize("params", [
    {"exp": "2024031"}, {"start_date": "notadate"}, {"ivl": "-5"}, {"use_csv": "maybe"},
    {"rate": "LIBOR"}, {"end_date": "20240301"},
])
def test_bad_v2_parameters_are_473(sim, params):
    r = get(sim, "/v2/bulk_hist/option/greeks", **(V2_BULK | params))
    assert r.status_code == 473 and r.text.startswith("Invalid parameters")


def test_missing_v2_parameter_is_473(sim):
    assert get(sim, "/v2/bulk_hist/option/greeks", root="SPXW", exp=EXP).status_code == 473


@pytest.mark.parametrize("params", [{"interval": "7m"}, {"start_time": "25:00:00"}, {"format": "xml"},
                                    {"right": "sideways"}])
def test_bad_v3_parameters_are_473(sim, params):
    assert get(sim, "/v3/option/history/quote", **(V3_HIST | params)).status_code == 473


def test_v2_parameter_on_v3_path_is_410_with_the_recorded_text(sim):
    r = get(sim, "/v3/option/list/strikes", symbol="AAPL", exp="20250221", format="json")
    assert r.status_code == 410 and r.headers["Content-Type"] == "text/plain"
    assert r.content == (DATA / "v3-option-list-strikes-deprecated-param-AAPL.txt").read_bytes()


def test_unknown_path_is_404(sim):
    assert get(sim, "/v2/bulk_hist/option/trade_greeks_fourth_order").status_code == 404
    assert get(sim, "/v4/anything").status_code == 404


def test_too_large_request_is_570(sim):
    params = V3_HIST | {"interval": "10ms"}
    r = get(sim, "/v3/option/history/quote", **params)
    assert r.status_code == 570


def test_v2_only_simulator_does_not_serve_v3():
    with Simulator(apis=("v2",)) as s:
        assert get(s, "/v2/system/mdds/status").status_code == 200
        assert get(s, "/v3/terminal/mdds/status").status_code == 404


# -- connections and addresses ---------------------------------------------------------------

def test_keep_alive_reuses_one_connection():
    with Simulator() as s:
        parts = urlsplit(s.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        for path in ("/v2/system/mdds/status", "/v3/option/history/eod?" + "&".join(
                f"{k}={v}" for k, v in V3_EOD.items()), "/v3/option/history/quote?" + "&".join(
                f"{k}={v}" for k, v in V3_HIST.items()), "/v2/page/1"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.version == 11 and resp.status in (200, 477)
        conn.close()
        counters = s.counters()
        assert counters["connections"] == 1 and counters["completed"]["responses"] == 3


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "", "no-such-host.invalid"])
def test_refuses_to_bind_a_non_loopback_address(host):
    with pytest.raises(ConfigError, match="loopback"):
        Simulator(host=host)


def test_binds_localhost_and_releases_the_port():
    with Simulator(host="localhost") as s:
        assert get(s, "/v2/system/mdds/status").text == "CONNECTED"
        port = urlsplit(s.url).port
    with Simulator(port=port) as again:
        assert again.url.endswith(f":{port}")


def test_busy_port_is_a_config_error(sim):
    with pytest.raises(ConfigError, match="cannot listen"):
        Simulator(port=urlsplit(sim.url).port)


@pytest.mark.parametrize("kwargs", [{"profile": "huge"}, {"apis": ("v1",)}, {"page_rows": 0}, {"body_cache_mb": 0}])
def test_bad_constructor_arguments_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        Simulator(**kwargs)


def test_the_body_cache_can_be_made_larger_than_the_profiles():
    with Simulator(profile="tiny", body_cache_mb=300) as s:  # a benchmark keeps a whole day's bodies
        assert s.app.terminal.bodies.max_bytes == 300 << 20
        assert get(s, "/v2/system/mdds/status").text == "CONNECTED"
    with Simulator(profile="tiny") as s:
        assert s.app.terminal.bodies.max_bytes == 32 << 20


def test_counters_over_http_and_reset(sim):
    requests.post(sim.url + "/sim/reset", timeout=10)
    get(sim, "/v2/bulk_hist/option/eod", **V2_BULK)
    get(sim, "/v2/bulk_hist/option/eod", **(V2_BULK | {"root": "AAPL"}))
    counters = requests.get(sim.url + "/sim/counters", timeout=10).json()
    assert counters["requests"]["/v2/bulk_hist/option/eod"] == {"200": 1, "472": 1}
    assert counters["completed"]["rows"] == TINY_CONTRACTS
    assert counters == json.loads(json.dumps(sim.counters()))
    assert requests.post(sim.url + "/sim/reset", timeout=10).status_code == 200
    assert sim.counters()["requests"] == {}


def test_v3_expirations_of_several_symbols_in_one_list(sim):
    both = csv_rows(get(sim, "/v3/option/list/expirations", symbol="SPX,SPXW").text)
    assert both[0] == ["symbol", "expiration"] and {r[0] for r in both[1:]} == {"SPX", "SPXW"}
    doc = get(sim, "/v3/option/list/expirations", symbol="SPX,SPXW", format="json").json()
    assert len(doc["response"]) == len(both) - 1


def test_control_endpoints_are_neither_faulted_nor_counted():
    with Simulator(faults=Faults(error_rate=1.0)) as s:
        assert requests.get(s.url + "/sim/counters", timeout=10).status_code == 200
        assert requests.get(s.url + "/sim/nothing", timeout=10).status_code == 404
        assert requests.post(s.url + "/sim/nothing", timeout=10).status_code == 404
        assert s.counters()["requests"] == {}

