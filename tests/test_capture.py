"""Captures: every answer byte for byte with its request, in tests/data's manifest shape, and nothing of the user's.

Made by the real client against the simulator over loopback (``doctor --capture``, ``run --capture``),
then replayed through the client and the converter as tests/data's captures are.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from replay import DATA, Recorded, entries, intact, replay
from spxdl import capture, cli
from spxdl.errors import BodyTruncated
from spxdl.datasets import GREEKS
from spxdl.simulator import Faults
from spxdl.terminal import TerminalClient
from test_replay import test_every_captured_answer_replays_through_the_client_and_the_converter as replays

DAY = "2024-03-14"
EXP, TRADE_DATE = date(2024, 3, 15), date(2024, 3, 14)


def spxdl(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


def test_the_manifest_has_the_shape_of_the_recorded_bodies(isolated, sim):
    directory = isolated / "capture"
    assert spxdl("doctor", "--terminal-url", sim.url, "--capture", str(directory)).exit_code == 0
    ours = json.loads((directory / "manifest.json").read_text())
    theirs = json.loads((DATA / "manifest.json").read_text())
    assert set(ours) == set(theirs)
    for fixture in ours["fixtures"]:
        assert set(fixture) == set(theirs["fixtures"][0]) and intact(directory, fixture)
        assert set(fixture["body"]) >= {"fidelity", "byte_length", "sha256", "ends_with_newline"}
        assert fixture["request"]["url"].startswith("http://127.0.0.1:") and fixture["request"]["recorded"]
    assert len(ours["fixtures"]) == 14  # status, 2 lists, 8 datasets, 3 calendar answers
    assert json.loads((directory / "doctor.json").read_text())["outcome"] == "ok"


@pytest.mark.parametrize("api", ["v3", "v2"])
def test_a_doctor_capture_replays_through_the_client_and_the_converter(isolated, sim, api):
    directory = isolated / api
    assert spxdl("doctor", "--terminal-url", sim.url, "--api", api, "--capture", str(directory)).exit_code == 0
    found = entries(directory)
    assert found and all(replay(directory, entry).error is None for entry in found)
    for entry in found:
        replays(directory, entry)


def test_nothing_of_the_user_is_kept(isolated, sim):
    directory = isolated / "private"
    port = sim.url.rsplit(":", 1)[1]
    assert spxdl("doctor", "--terminal-url", f"http://localhost:{port}", "--capture", str(directory)).exit_code == 0
    written = "".join(path.read_text(errors="replace") for path in directory.iterdir() if path.is_file())
    assert "localhost" not in written and str(isolated) not in written
    assert all(Recorded.of(directory, e).path.startswith("/v3/") for e in entries(directory))
    urls = [entry["request"]["url"] for entry in entries(directory)]
    assert all(url.startswith(f"http://127.0.0.1:{port}/") for url in urls)


def test_run_captures_the_first_answer_of_each_endpoint_once(isolated, sim):
    directory = isolated / "run-capture"
    result = spxdl("run", "--terminal-url", sim.url, "--date", DAY, "--data-dir", str(isolated / "data"),
                   "--dataset", "greeks,eod", "--max-dte", "8", "--capture", str(directory))
    assert result.exit_code == 0, result.output + result.stderr
    found = entries(directory)
    endpoints = [entry["endpoint"] for entry in found]
    assert sorted(endpoints) == sorted(set(endpoints))  # the first answer of each, once
    assert set(endpoints) >= {"/v3/terminal/mdds/status", "/v3/option/list/expirations",
                              "/v3/option/history/greeks/first_order", "/v3/option/history/eod"}
    for entry in found:
        replays(directory, entry)


def test_a_body_cut_on_its_way_is_not_kept_and_the_next_whole_one_is(isolated, clean_sim):
    directory = isolated / "cut"
    observer = capture.Capture(directory, first_only=True)
    with TerminalClient(clean_sim.url, api="v3", observer=observer, retries=0) as client:
        client.connect()
        clean_sim.set_faults(Faults(cut_rate=1.0))
        with pytest.raises(BodyTruncated):
            for page in client.history(GREEKS, "SPXW", EXP, TRADE_DATE):
                page.read()
        clean_sim.set_faults(Faults())
        greeks = "v3-option-history-greeks-first-order-SPXW.csv"
        assert not (directory / greeks).exists()
        for page in client.history(GREEKS, "SPXW", EXP, TRADE_DATE):
            page.read()
    capture.write_manifest(directory)
    assert (directory / greeks).stat().st_size > 0
    assert [entry["file"] for entry in entries(directory)] == ["v3-terminal-mdds-status-none.txt", greeks]


def test_a_failing_capture_never_fails_the_answer(isolated, sim):
    blocked = isolated / "not-a-dir"
    blocked.write_text("a file where the capture directory should be")
    with TerminalClient(sim.url, api="v3", observer=capture.Capture(blocked / "capture")) as client:
        assert client.status() == "CONNECTED"
        assert client.expirations("SPXW")
    assert not Path(blocked / "capture").exists()
