"""last_run.json: how the latest download ended, for notify's first success after a failure."""

from __future__ import annotations

import json

from spxdl import storage
from spxdl.ledger import Ledger
from spxdl.ledger.outcome import last_run_failed, record_run


def test_each_record_returns_whether_the_one_before_failed(tmp_path):
    ledger = Ledger(tmp_path)
    assert last_run_failed(ledger) is None
    assert record_run(ledger, failed=True, exit_code=1, command="update") is None
    assert record_run(ledger, failed=False, exit_code=0, command="update") is True
    assert record_run(ledger, failed=False, exit_code=0, command="run") is False
    content = json.loads(storage.last_run_path(tmp_path).read_text())
    assert (content["ok"], content["exit_code"], content["command"]) == (True, 0, "run") and content["at"]


def test_a_corrupt_record_is_moved_aside_and_read_as_none(tmp_path):
    storage.last_run_path(tmp_path).write_text("{not json")
    assert last_run_failed(Ledger(tmp_path)) is None
    assert [path.name for path in tmp_path.iterdir() if ".corrupt-" in path.name]
    assert record_run(Ledger(tmp_path), failed=True, exit_code=1, command="update") is None
    assert last_run_failed(Ledger(tmp_path)) is True
