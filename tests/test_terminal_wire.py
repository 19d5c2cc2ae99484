"""spxdl.terminal.wire: dates, times and numbers as the wire spells them; list bodies as terminals send them."""

from __future__ import annotations

from datetime import date

import pytest

from spxdl import terminal


def test_dates_times_and_numbers_as_the_wire_spells_them():
    assert terminal.wire_date(date(2024, 3, 5)) == "20240305"
    spellings = (20240305, '"20240305"', "2024-03-05", "2024-03-05T16:00:00")
    assert {terminal.parse_wire_date(value) for value in spellings} == {date(2024, 3, 5)}
    assert (terminal.v3_time(34_200_000), terminal.v3_time(58_500_123)) == ("09:30:00", "16:15:00.123")
    assert [terminal.plain_number(x) for x in (0.0342, 0.0342 * 100, 5.0, -0.0)] == ["0.0342", "3.42", "5", "0"]


def test_list_parameters_of_each_api():
    assert terminal.list_params("v2", "SPXW") == {"root": "SPXW", "use_csv": "true"}
    expected = {"symbol": "SPXW", "expiration": "20240315", "format": "csv"}
    assert terminal.list_params("v3", "SPXW", date(2024, 3, 15)) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("strike\n5000000\n", ["5000000"]),
        ("5000000\r\n5005000\r\n", ["5000000", "5005000"]),
        ('"symbol","strike"\r\n"SPXW","5000.000"\r\n', ["5000.000"]),
        ('{"response": [{"strike": 5000.000}]}\n\n', [5000.0]),
        ('{"header": {"next_page": null}, "response": [5000000]}', [5000000]),
    ],
)
def test_list_parser_tolerates_the_layouts_seen(text, expected):
    values, next_url = terminal.parse_list_body(text, ("strike",), endpoint="/v2/list/strikes")
    assert values == expected and next_url is None
