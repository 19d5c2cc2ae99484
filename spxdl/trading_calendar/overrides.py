"""The calendar overrides file: closures and early closes announced after the rules were written.

One entry per line, ``YYYY-MM-DD closed  # reason`` or ``YYYY-MM-DD early  # reason``; ``#``
starts a comment (``etc/closures.example.txt``). :func:`load_calendar` reads it into a
``TradingCalendar``; every malformed line is a CalendarError naming the file, the line and the fix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from spxdl.errors import CalendarError
from spxdl.trading_calendar.rules import FIRST_DATE, LAST_DATE
from spxdl.trading_calendar.sessions import TradingCalendar

log = logging.getLogger(__name__)

_OVERRIDE_LINE = re.compile(r"^(?P<day>\S+)\s+(?P<kind>\S+)$")
_OVERRIDE_FIX = "write 'YYYY-MM-DD closed  # reason' or 'YYYY-MM-DD early  # reason'"


def load_calendar(overrides_path: Path | None, sessions: Mapping[date, str] | None = None) -> TradingCalendar:
    """A calendar with the closures and early closes of ``overrides_path`` (None: no overrides), and
    the ``sessions`` another source decided (the terminal's calendar), which win over both.

    Raises CalendarError naming the file, the line and the fix when the file is missing,
    unreadable or has a malformed line.
    """
    if overrides_path is None:
        return TradingCalendar(sessions=sessions)
    path = Path(overrides_path)
    closures, early_closes = parse_overrides(read_overrides_text(path), path)
    try:
        calendar = TradingCalendar(extra_closures=closures, extra_early_closes=early_closes, sessions=sessions)
    except CalendarError as exc:
        raise CalendarError(f"{path}: {exc}", key="calendar_overrides", source=str(path)) from exc
    log.debug("calendar overrides %s: %d closures, %d early closes",
              path, len(closures), len(early_closes))
    return calendar


def read_overrides_text(path: Path) -> str:
    """The text of the overrides file; CalendarError if it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(
            f"cannot read the calendar overrides file {path}: {exc}; "
            "fix the path or remove the setting",
            key="calendar_overrides",
            source=str(path),
        ) from exc


def parse_overrides(text: str, path: Path) -> tuple[dict[date, str], dict[date, str]]:
    """Closures and early closes (``{date: reason}``) from the overrides file's text."""
    closures: dict[date, str] = {}
    early_closes: dict[date, str] = {}
    seen: dict[date, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = parse_override_line(line, path, number)
        if entry is None:
            continue
        day, kind, reason = entry
        if day in seen:
            raise override_error(path, number, f"{day.isoformat()} is already listed on line "
                                 f"{seen[day]}", "keep one line per date")
        seen[day] = number
        (closures if kind == "closed" else early_closes)[day] = reason
    return closures, early_closes


def parse_override_line(line: str, path: Path, number: int) -> tuple[date, str, str] | None:
    """``(date, 'closed' | 'early', reason)`` for an entry line; None for blanks and comments."""
    content, _, comment = line.partition("#")
    content = content.strip()
    if not content:
        return None
    match = _OVERRIDE_LINE.match(content)
    if match is None:
        raise override_error(path, number, f"cannot read {content!r}", _OVERRIDE_FIX)
    day = parse_override_date(match["day"], path, number)
    kind = match["kind"].lower()
    if kind not in ("closed", "early"):
        raise override_error(path, number, f"unknown kind {match['kind']!r}",
                             "use 'closed' or 'early'")
    default = "Closure (override)" if kind == "closed" else "Early close (override)"
    return day, kind, comment.strip() or default


def parse_override_date(text: str, path: Path, number: int) -> date:
    """The ``YYYY-MM-DD`` date of an overrides line, within the calendar's range."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise override_error(path, number, f"{text!r} is not a date", _OVERRIDE_FIX) from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise override_error(path, number, f"{text} is outside the calendar",
                             f"use a date from {FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}")
    return day


def override_error(path: Path, number: int, problem: str, fix: str) -> CalendarError:
    """A CalendarError naming the overrides file, the line number, the problem and the fix."""
    return CalendarError(
        f"{path}, line {number}: {problem}; {fix}",
        key="calendar_overrides",
        source=f"{path}:{number}",
    )
