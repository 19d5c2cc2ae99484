"""The simulator's calendar endpoints: the built-in calendar, and the closures a test gives it."""

from __future__ import annotations

import csv
import io
from datetime import date

import requests

from spxdl.simulator import Simulator


def table(url: str, path: str, **params: str) -> list[dict[str, str]]:
    answer = requests.get(url + path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_a_years_holidays_and_early_closes_are_the_built_in_calendars(sim):
    days = {row["date"]: row for row in table(sim.url, "/v3/calendar/year_holidays", year="2024")}
    assert days["2024-03-29"]["type"] == "full_close" and days["2024-03-29"]["open"] == ""  # Good Friday
    assert days["2024-11-29"] == {"date": "2024-11-29", "type": "early_close", "open": "09:30:00", "close": "13:00:00"}
    assert len([d for d in days.values() if d["type"] == "full_close"]) == 10
    assert "2024-03-14" not in days and "2024-03-16" not in days  # regular sessions and weekends are not listed


def test_one_days_schedule(sim):
    assert table(sim.url, "/v3/calendar/on_date", date="20240314") == [{"type": "open", "open": "09:30:00",
                                                                          "close": "16:00:00"}]
    assert table(sim.url, "/v3/calendar/on_date", date="20240316")[0]["type"] == "weekend"
    assert table(sim.url, "/v3/calendar/on_date", date="20250109")[0]["type"] == "full_close"  # Carter's funeral


def test_a_closure_given_to_the_simulator_is_in_its_calendar_answers():
    with Simulator(calendar_closures={date(2024, 3, 14): "a test's closure"}) as sim:
        days = {row["date"]: row["type"] for row in table(sim.url, "/v3/calendar/year_holidays", year="2024")}
        assert days["2024-03-14"] == "full_close"
        assert table(sim.url, "/v3/calendar/on_date", date="2024-03-14")[0]["type"] == "full_close"
        json_body = requests.get(sim.url + "/v3/calendar/on_date", params={"date": "20240314", "format": "json"},
                                 timeout=30).json()
        assert json_body == {"response": [{"type": "full_close", "open": None, "close": None}]}
