"""Quirks: the simulator answers CSV the way a real terminal might differ, one respect at a time."""

from __future__ import annotations

import pytest
import requests

from spxdl.errors import ConfigError
from spxdl.simulator import Quirks

GREEKS = ("/v3/option/history/greeks/first_order", {"symbol": "SPXW", "expiration": "20240315", "date": "20240314",
                                                    "interval": "1h"})


@pytest.fixture(name="quirky")
def fixture_quirky(sim):
    yield sim
    sim.set_quirks(Quirks())


def get(sim, path: str, params: dict) -> bytes:
    answer = requests.get(sim.url + path, params=params, timeout=30)
    assert answer.status_code == 200
    return answer.content


def test_no_quirk_changes_nothing(quirky):
    assert Quirks().apply("/v3/x", b"a,b\r\n1,2\r\n") == b"a,b\r\n1,2\r\n"
    body = get(quirky, *GREEKS)
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == body.count(b"\n")


def test_each_quirk_changes_one_respect(quirky):
    plain = get(quirky, *GREEKS)
    quirky.set_quirks(Quirks(line_end="lf"))
    assert get(quirky, *GREEKS) == plain.replace(b"\r\n", b"\n")
    quirky.set_quirks(Quirks(final_newline=False))
    assert get(quirky, *GREEKS) == plain[:-2]
    quirky.set_quirks(Quirks(renamed=(("delta", "dlt"),)))
    assert get(quirky, *GREEKS).split(b"\r\n")[0] == plain.split(b"\r\n")[0].replace(b",delta,", b",dlt,")
    quirky.set_quirks(Quirks(quoted_text=True))
    assert get(quirky, *GREEKS).split(b"\r\n")[1].startswith(b'"SPXW","2024-03-15",')
    quirky.set_quirks(Quirks(strike_units="swapped"))
    strike = float(plain.split(b"\r\n")[1].split(b",")[2])  # dollars, "4900.000"
    assert get(quirky, *GREEKS).split(b"\r\n")[1].split(b",")[2] == b"%d" % (strike * 1000)
    v2 = get(quirky, "/v2/list/strikes", {"root": "SPXW", "exp": "20240315", "use_csv": "true"})
    assert v2.split(b"\r\n")[1] == b"%.3f" % strike
    quirky.set_quirks(Quirks(crossed_every=3))
    header, *rows = get(quirky, *GREEKS).decode().split("\r\n")[:-1]
    bid, ask = header.split(",").index("bid"), header.split(",").index("ask")
    crossed = [n for n, row in enumerate(rows, start=1) if float(row.split(",")[bid]) > float(row.split(",")[ask])]
    assert crossed == list(range(3, len(rows) + 1, 3))


def test_quirks_are_set_over_http_and_checked(quirky):
    answer = requests.post(quirky.url + "/sim/quirks", json={"line_end": "lf"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["line_end"] == "lf"
    assert b"\r" not in get(quirky, *GREEKS)
    assert requests.post(quirky.url + "/sim/quirks", json={"colour": 1}, timeout=10).status_code == 400
    with pytest.raises(ConfigError):
        Quirks(line_end="cr")
