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


def test_a_whole_day_asks_every_expiration_and_an_index_none():
    from spxdl.datasets import EOD, GREEKS, INDEX_PRICE

    day = date(2024, 3, 14)
    v2_day = terminal.v2_history_params(terminal.HistoryQuery(EOD, "SPXW", None, day))
    v3_day = terminal.v3_history_params(terminal.HistoryQuery(EOD, "SPXW", None, day))
    assert v2_day["exp"] == "0" and v3_day["expiration"] == "*"
    v2_index = terminal.v2_history_params(terminal.HistoryQuery(INDEX_PRICE, "SPX", None, day))
    v3_index = terminal.v3_history_params(terminal.HistoryQuery(INDEX_PRICE, "SPX", None, day))
    assert "exp" not in v2_index and v2_index["root"] == "SPX" and v2_index["ivl"] == "60000"
    assert "expiration" not in v3_index and v3_index["symbol"] == "SPX" and v3_index["date"] == "20240314"
    one = terminal.v3_history_params(terminal.HistoryQuery(GREEKS, "SPXW", date(2024, 3, 15), day, strike=5152.5,
                                                           right="P"))
    assert (one["strike"], one["right"]) == ("5152.500", "put")
    assert "strike" not in terminal.v2_history_params(terminal.HistoryQuery(GREEKS, "SPXW", date(2024, 3, 15), day,
                                                                            strike=5152.5, right="P"))


@pytest.mark.parametrize(
    "text, first",
    [
        ("date,type,open,close\r\n2024-03-29,full_close,,\r\n", (date(2024, 3, 29), "full_close", None, None)),
        ('{"response": [{"date": "2024-07-03", "type": "early_close", "open": "09:30:00", "close": "13:00:00"}]}',
         (date(2024, 7, 3), "early_close", "09:30:00", "13:00:00")),
        ("type,open,close\nOPEN,09:30:00,16:00:00\n", (None, "open", "09:30:00", "16:00:00")),
    ],
)
def test_calendar_answers_are_read_as_csv_or_json(text, first):
    days = terminal.parse_calendar_body(text, endpoint="/v3/calendar/year_holidays")
    assert (days[0].day, days[0].kind, days[0].open, days[0].close) == first


def test_a_calendar_answer_cut_mid_line_or_without_a_type_is_an_error():
    from spxdl.errors import BodyTruncated, SchemaMismatch

    with pytest.raises(BodyTruncated):
        terminal.parse_calendar_body("date,type\r\n2024-03-29,full_cl", endpoint="/v3/calendar/year_holidays")
    with pytest.raises(SchemaMismatch):
        terminal.parse_calendar_body("date,kind\r\n2024-03-29,x\r\n", endpoint="/v3/calendar/year_holidays")
