"""spxdl.engine.shared: retries of what may pass, never of what stops the run."""

from __future__ import annotations

import pytest

from spxdl.engine.shared import RUN_STOPPERS, retrying
from spxdl.errors import BodyTruncated, DiskFull, TerminalGone, TerminalUnavailable


def calls_failing_with(error: Exception, then: str | None = None):
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if then is None or len(calls) == 1:
            raise error
        return then

    return call, calls


@pytest.mark.parametrize("error", [BodyTruncated("cut"), TerminalUnavailable("refused")])
def test_retrying_makes_the_call_again_after_a_passing_fault(error):
    call, calls = calls_failing_with(error, then="listed")
    assert retrying(call, 3, "listing SPXW") == "listed" and len(calls) == 2


@pytest.mark.parametrize("error", [TerminalGone("gone for good"), DiskFull("no space")])
def test_retrying_never_repeats_what_stops_the_run_though_it_is_a_kind_of_unavailability(error):
    assert isinstance(error, RUN_STOPPERS)
    call, calls = calls_failing_with(error)
    with pytest.raises(type(error)):
        retrying(call, 3, "listing SPXW")
    assert len(calls) == 1
