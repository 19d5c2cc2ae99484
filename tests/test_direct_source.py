"""DirectSource through the real thetadatadx SDK against loopback doubles of ThetaData's services.

The SDK is the installed wheel's code, run from a copy that trusts the doubles' throwaway
certificate (sdk_patch.py: why and how); it finds the doubles through its own configuration
variables and a test API key (conftest ``market``). The market-data double answers from the
simulator's market with the vendor's table encoding (market_double.py).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from datetime import date

import pyarrow as pa
import pytest

from engine_helpers import wait_until
from spxdl.datasets import EOD, GREEKS, QUOTE
from spxdl.direct import DirectSource
from spxdl.direct.chunks import stream_tables
from spxdl.errors import BadRequest, ConfigError, NoData, PermissionDenied, TerminalUnavailable, Throttled
from spxdl.terminal import TerminalClient

DAY, EXPIRATION = date(2024, 3, 14), date(2024, 3, 15)
KEY = "td1_test_key_of_the_doubles"


@pytest.fixture(name="fresh")
def fixture_fresh(market):
    """The doubles as the test found them: no error mode, nothing denied, 1000-row chunks."""
    market.data.mode, market.data.denied, market.data.encoder_rows = None, frozenset(), 1000
    market.data.mode_calls = None
    market.nexus.status, market.nexus.tier = 200, "standard"
    yield market
    market.data.mode, market.data.denied, market.data.encoder_rows = None, frozenset(), 1000
    market.data.mode_calls = None
    market.nexus.status = 200


def source(**options) -> DirectSource:
    return DirectSource(retries=0, **options)


def test_it_logs_in_with_the_key_from_the_environment_and_lists_the_terminals_expirations(fresh, sim):
    with source() as direct:
        listed = direct.expirations("SPXW")
        assert direct.credentials_origin == "THETADATA_API_KEY" and direct.status() == "CONNECTED"
        assert direct.subscription()["options"] == "Standard"
    assert listed == TerminalClient(sim.url, api="v3").expirations("SPXW")
    assert fresh.nexus.logins[-1]["body"] == {"apiKey": KEY}


def test_a_chain_arrives_one_chunk_at_a_time_in_the_terminals_order(fresh, sim):
    fresh.data.encoder_rows = 500
    with source() as direct:
        tables = list(direct.history(GREEKS, "SPXW", EXPIRATION, DAY))
    assert [table.num_rows for table in tables] == [500] * 7 + [410]
    whole = pa.concat_tables(tables)
    assert whole.column("strike").to_pylist()[:2] == [4900.0, 4900.0]
    assert whole.column("right").to_pylist()[390:392] == ["C", "P"]
    assert {"implied_volatility", "underlying_ms_of_day", "date", "expiration"} <= set(whole.column_names)
    method, query = fresh.data.served.calls[-1]
    assert method == "GetOptionHistoryGreeksFirstOrder"
    assert query == {"symbol": "SPXW", "expiration": "20240315", "date": "20240314", "interval": "1m",
                     "start_time": "09:30:00", "end_time": "16:00:00", "rate_type": "sofr", "format": "csv"}


def test_every_expiration_of_a_day_is_asked_with_a_star(fresh):
    with source() as direct:
        rows = sum(table.num_rows for table in direct.history(EOD, "SPXW", None, DAY))
    assert rows > 100 and fresh.data.served.calls[-1][1]["expiration"] == "*"


class SlowReader:
    """A stand-in for the SDK's builder: chunks handed over by a thread of its own, as the SDK does, counted."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.handed = chunks, 0
        self.thread: threading.Thread | None = None

    def stream_async(self, handler):
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def produce() -> None:
            for number in range(self.chunks):
                self.handed += 1
                try:
                    handler(Chunk(number))
                except Exception:  # as the SDK: a handler that raises stops the stream
                    return
            loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))

        self.thread = threading.Thread(target=produce, daemon=True)
        self.thread.start()
        return finished


class Chunk:
    def __init__(self, number: int) -> None:
        self.number = number

    def to_arrow(self) -> pa.Table:
        return pa.table({"n": [self.number]})


def test_the_next_chunk_waits_until_the_reader_asks_for_it():
    builder = SlowReader(chunks=6)
    tables = stream_tables(builder)
    first = next(tables)
    time.sleep(0.3)  # the SDK's thread may queue one chunk and prepare one more, never the rest
    assert first.column("n").to_pylist() == [0] and builder.handed <= 3
    assert [table.column("n")[0].as_py() for table in tables] == [1, 2, 3, 4, 5]


def test_closing_the_stream_early_lets_the_sdks_thread_go():
    builder = SlowReader(chunks=50)
    tables = stream_tables(builder)
    next(tables)
    assert wait_until(lambda: builder.handed >= 2, 10)  # the SDK's thread waits inside the handler
    tables.close()
    builder.thread.join(10)
    assert not builder.thread.is_alive() and builder.handed < 50  # stopped, not left waiting for a reader


@pytest.mark.parametrize("mode, error", [
    ("not_found", NoData), ("permission", PermissionDenied), ("unauthenticated", PermissionDenied),
    ("exhausted", Throttled), ("unavailable", TerminalUnavailable), ("invalid", BadRequest),
    ("internal", TerminalUnavailable),
])
def test_each_answer_of_the_service_becomes_spxdls_error(fresh, mode, error):
    fresh.data.mode = mode
    with source(max_throttles=0) as direct, pytest.raises(error) as caught:
        list(direct.history(QUOTE, "SPXW", EXPIRATION, DAY))
    assert caught.value.endpoint == "option_history_quote" and caught.value.params["expiration"] == "20240315"
    assert KEY not in str(caught.value)


def test_a_smaller_subscription_is_a_permission_answer(fresh):
    fresh.data.denied = frozenset({"GetOptionHistoryGreeksFirstOrder"})
    with source() as direct:
        with pytest.raises(PermissionDenied, match="does not include option_history_greeks_first_order"):
            list(direct.history(GREEKS, "SPXW", EXPIRATION, DAY))
        assert sum(table.num_rows for table in direct.history(QUOTE, "SPXW", EXPIRATION, DAY)) == 3910


def test_an_answer_without_a_row_is_no_data(fresh):
    with source() as direct, pytest.raises(NoData, match="without rows"):
        list(direct.history(GREEKS, "SPXW", EXPIRATION, DAY, start_ms=61_200_000, end_ms=63_000_000))


def test_refused_credentials_stop_with_what_to_check(fresh):
    fresh.nexus.status = 401
    with pytest.raises(PermissionDenied, match="ThetaData refused the credentials"):
        source().connect()


@pytest.mark.parametrize("name, content, origin", [
    (".env", "THETADATA_API_KEY=td1_from_dotenv\n", ".env"),
    ("creds.txt", "someone@example.invalid\nsecret-password\n", "creds.txt"),
])
def test_the_sdks_chain_finds_a_dotenv_or_a_creds_file(fresh, isolated, monkeypatch, caplog, name, content, origin):
    monkeypatch.delenv("THETADATA_API_KEY")
    (isolated / name).write_text(content)
    with caplog.at_level(logging.DEBUG, logger="spxdl"), source() as direct:
        direct.connect()
        assert direct.credentials_origin == str(isolated / origin)
    body = fresh.nexus.logins[-1]["body"]
    assert body == ({"apiKey": "td1_from_dotenv"} if name == ".env"
                    else {"email": "someone@example.invalid", "password": "secret-password"})
    secrets = ("td1_from_dotenv", "secret-password")
    assert not any(secret in record.getMessage() for record in caplog.records for secret in secrets)
    assert (isolated / name).read_text() == content  # read by the SDK, never written


def test_the_users_config_dir_is_searched_after_the_working_directory(fresh, isolated, monkeypatch):
    monkeypatch.delenv("THETADATA_API_KEY")
    home_dir = isolated / ".config" / "spxdl"
    home_dir.mkdir(parents=True)
    (home_dir / ".env").write_text("THETADATA_API_KEY=td1_from_home\n")
    with source() as direct:
        direct.connect()
    assert direct.credentials_origin == str(home_dir / ".env")


def test_no_credentials_anywhere_is_one_line_naming_the_three_places(fresh, monkeypatch):
    monkeypatch.delenv("THETADATA_API_KEY")
    with pytest.raises(ConfigError) as caught:
        source().connect()
    text = str(caught.value)
    assert "THETADATA_API_KEY" in text and ".env" in text and "creds.txt" in text and "\n" not in text


def test_a_service_that_is_not_there_is_unavailable(fresh, monkeypatch):
    monkeypatch.setenv("THETADATA_MARKET_DATA_PORT", "9")  # nothing listens there
    with pytest.raises(TerminalUnavailable):
        source().connect().expirations("SPXW")


def test_the_sdk_as_published_refuses_the_loopback_double(fresh, tmp_path):
    """The evidence: without the patched copy, the SDK will not talk TLS to a certificate of a private authority."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({key: value for key, value in fresh.env.items() if key != "PYTHONPATH"})
    script = ("from spxdl.direct import DirectSource\n"
              "from spxdl.errors import TerminalUnavailable\n"
              "try:\n    DirectSource(retries=0).connect().expirations('SPXW')\n"
              "except TerminalUnavailable as exc:\n    print('refused:', exc)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert "refused: the TLS handshake with the market-data server failed" in result.stdout, result.stdout + result.stderr
    assert "invalid peer certificate" in result.stdout  # BadSignature: the real anchor's key did not sign it


def test_the_strikes_of_an_expiration_are_the_terminals(fresh, sim):
    with source() as direct:
        assert direct.strikes("SPXW", EXPIRATION) == TerminalClient(sim.url, api="v3").strikes("SPXW", EXPIRATION)


def test_the_in_flight_slot_is_held_for_a_stream_and_given_back_after_it_and_after_an_error(fresh):
    slots = multiprocessing.get_context("spawn").BoundedSemaphore(1)
    with source(in_flight=slots) as direct:
        chunks = direct.history(QUOTE, "SPXW", EXPIRATION, DAY)
        next(chunks)
        assert not slots.acquire(timeout=0.2)  # held while the answer streams
        list(chunks)
        assert slots.acquire(timeout=5)
        slots.release()
        fresh.data.mode = "not_found"
        with pytest.raises(NoData):
            list(direct.history(QUOTE, "SPXW", EXPIRATION, DAY))
        assert slots.acquire(timeout=5)
        slots.release()


def test_a_throttle_is_waited_out_outside_the_retry_budget(fresh):
    fresh.data.mode, fresh.data.mode_calls = "exhausted", 3  # ResourceExhausted three times, then the answer
    waits: list[float] = []
    with source(sleep=waits.append) as direct:
        rows = sum(table.num_rows for table in direct.history(QUOTE, "SPXW", EXPIRATION, DAY))
    assert rows == 3910 and len(waits) == 3 and all(0 <= wait <= 30 for wait in waits)
    fresh.data.mode, fresh.data.mode_calls = "exhausted", None
    with source(sleep=waits.append, max_throttles=2) as direct, pytest.raises(Throttled):
        list(direct.history(QUOTE, "SPXW", EXPIRATION, DAY))
    fresh.data.mode_calls = None
