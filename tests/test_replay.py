"""Every capture under tests/data replays through spxdl's client and converter, judged by rule.

tests/data holds the recorded real bodies (tests/data/manifest.json) and any capture copied in
(``spxdl doctor --capture DIR`` or ``spxdl run --capture DIR``, then ``cp -r DIR tests/data/captures/``):
each becomes a regression test here without a code change. A body must be the one its manifest
describes; an answer of an endpoint spxdl calls is served again over loopback and read by the
client (and, for history, written to Parquet by the converter and read back):

- an error status raises the exception spxdl maps that status to;
- a history answer spxdl did not ask for in CSV (JSON) stops the run as a SchemaMismatch;
- any other history answer converts to exactly the rows its CSV body holds (pages followed);
- list, calendar and status answers parse.

A capture spxdl made must also show the very request spxdl sends today.
"""

from __future__ import annotations

import pytest

from urllib.parse import urlsplit

from replay import Recorded, body_lines, capture_dirs, entries, header, intact, replay
from spxdl.errors import SchemaMismatch
from spxdl.terminal import error_for_status

CASES = [(directory, entry) for directory in capture_dirs() for entry in entries(directory)]


def made_by_spxdl(entry: dict) -> bool:
    return str((entry.get("source") or {}).get("tool", "")).startswith("spxdl")


def asked_json(recorded: Recorded) -> bool:
    query = recorded.query
    return query.get("format") == "json" or (recorded.path.startswith("/v2/") and query.get("use_csv") != "true")


def chain_rows(directory, entry) -> int:
    """The data lines of an answer and of every page its Next-Page header leads to within the capture."""
    by_path = {recorded.path: recorded for recorded in (Recorded.of(directory, e) for e in entries(directory))}
    recorded, rows, seen = Recorded.of(directory, entry), 0, set()
    while recorded is not None and recorded.path not in seen:
        seen.add(recorded.path)
        rows += len(body_lines(recorded.body))
        following = header(recorded.headers, "next-page")
        recorded = by_path.get(urlsplit(following).path) if following.startswith("http") else None
    return rows


def test_tests_data_and_every_capture_in_it_are_found():
    directories = capture_dirs()
    assert directories[0].name == "data" and any("captures" in str(d) for d in directories)
    for directory in directories:
        kinds = {Recorded.of(directory, entry).path for entry in entries(directory)}
        assert kinds, f"{directory}: no body of its manifest is there"


@pytest.mark.parametrize("directory, entry", CASES, ids=[f"{d.name}/{e['file']}" for d, e in CASES])
def test_every_captured_answer_replays_through_the_client_and_the_converter(directory, entry):
    assert intact(directory, entry), f"{entry['file']} is not the body its manifest describes"
    recorded = Recorded.of(directory, entry)
    outcome = replay(directory, entry)
    if outcome.kind == "other":
        return  # an endpoint spxdl never calls: its bytes are evidence for docs/wire.md, checked above
    asked = [(path, query) for path, query in outcome.asked if path == recorded.path]
    assert asked, f"spxdl did not ask {recorded.path}: {outcome.asked}"
    if made_by_spxdl(entry) and recorded.status == 200:
        assert asked[0][1] == recorded.query, "spxdl no longer sends the request this capture answers"
    if recorded.status != 200:
        expected = type(error_for_status(recorded.status, endpoint=recorded.path))
        assert isinstance(outcome.error, expected), outcome.error
        assert recorded.body.decode("utf-8", "replace")[:40] in str(outcome.error)
    elif outcome.kind == "history" and asked_json(recorded):
        assert isinstance(outcome.error, SchemaMismatch), outcome.error
    elif outcome.kind == "history":
        assert outcome.error is None, outcome.error
        assert outcome.rows == chain_rows(directory, entry) > 0
    else:
        assert outcome.error is None, outcome.error
        assert outcome.value, f"{outcome.kind} answer read as empty"
