"""Every spxdl exception survives the pickle round trip that carries it out of a worker process."""

import pickle

import pytest

from spxdl import errors


@pytest.mark.parametrize("cls", errors.ALL_ERRORS, ids=lambda c: c.__name__)
def test_error_survives_pickle_round_trip(cls):
    error = cls("something went wrong")
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is cls
    assert str(restored) == str(error)


def test_terminal_error_keeps_its_details_through_pickle():
    error = errors.Throttled(
        "terminal busy",
        endpoint="/v2/bulk_hist/option/greeks",
        params={"root": "SPXW", "exp": "20240315"},
        status=429,
        body="x" * 500,
        retry_after=1.5,
    )
    restored = pickle.loads(pickle.dumps(error))
    assert restored.retry_after == 1.5
    assert restored.status == 429
    assert restored.params == {"root": "SPXW", "exp": "20240315"}
    assert restored.body == "x" * 200
    assert "HTTP 429" in str(restored)


def test_every_error_class_is_under_the_one_root():
    public = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert set(public) == set(errors.ALL_ERRORS)
    assert all(issubclass(cls, errors.SpxdlError) for cls in public)


def test_builtin_mixins_let_callers_catch_by_builtin_type():
    assert isinstance(errors.TerminalUnavailable("x"), ConnectionError)
    assert isinstance(errors.LedgerBusy("x"), TimeoutError)
    assert isinstance(errors.ConfigError("x"), ValueError)
