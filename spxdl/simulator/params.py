"""The simulated terminal's answers and query parsing: ``Reply``, ``Problem`` (an error answer) and the parsers.

Every parser raises ``Problem(473, ...)`` naming the parameter, as the routes answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from spxdl import trading_calendar
from spxdl.errors import CalendarError

TEXT_TYPE = "text/plain"
NO_ROWS = "no_rows"  # a Problem's reason: the query was good, and its window holds no row


class Problem(Exception):
    """An error answer: status and plain-text body; ``reason`` tells a flavour why (``NO_ROWS``)."""

    def __init__(self, status: int, text: str, *, reason: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.reason = reason


@dataclass
class Reply:
    """One answer: status, body and what the counters need to know about it."""

    status: int
    body: bytes
    content_type: str = TEXT_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    key: str | None = None           # the request a history body belongs to (pages included)
    chunked: bool = False
    reason: str = ""                 # why an error answer was given (``NO_ROWS``), for the flavour


def problem_reply(p: Problem) -> Reply:
    return Reply(p.status, p.text.encode(), reason=p.reason)


def rows_key(api: str, dataset: str, root: str, expiration: str, first: date, last: date,
             contracts: str = "") -> str:
    """The counters' name for one history request (all its pages share it); ``expiration`` ISO or ``*``."""
    key = f"{api} {dataset} {root} {expiration} {first.isoformat()}..{last.isoformat()}"
    return key + (f" {contracts}" if contracts else "")


def param(params: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = params.get(name)
    return values[-1] if values else default


def required_param(params: dict[str, list[str]], name: str) -> str:
    value = param(params, name)
    if value is None or value == "":
        raise Problem(473, f"Invalid parameters: missing required parameter '{name}'")
    return value


def parse_date(text: str, name: str) -> date:
    """YYYYMMDD or YYYY-MM-DD."""
    m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text.strip())
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        pass
    raise Problem(473, f"Invalid parameters: {name}={text!r} is not a date (YYYYMMDD)")


def parse_int(text: str, name: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise Problem(473, f"Invalid parameters: {name}={text!r} is not an integer") from None
    if value < minimum:
        raise Problem(473, f"Invalid parameters: {name}={text!r} is below {minimum}")
    return value


def parse_float(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise Problem(473, f"Invalid parameters: {name}={text!r} is not a number") from None


def parse_bool(text: str, name: str) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise Problem(473, f"Invalid parameters: {name}={text!r} is not true or false")


def parse_clock(text: str, name: str) -> int:
    """v3 time of day HH:MM:SS[.SSS] as ms since midnight."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?", text.strip())
    if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3]) > 59:
        raise Problem(473, f"Invalid parameters: {name}={text!r} is not HH:MM:SS[.SSS]")
    return ((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * 1000 + int((m[4] or "0").ljust(3, "0"))


def days_between(first: date, last: date) -> list[date]:
    """Trading days in [first, last]; 473 for a reversed or unsupported range."""
    if last < first:
        raise Problem(473, "Invalid parameters: end_date is before start_date")
    try:
        return trading_calendar.trading_days(first, last)
    except CalendarError as exc:
        raise Problem(473, f"Invalid parameters: {exc}") from None
