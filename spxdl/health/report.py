"""``spxdl health``: the terminal, the data dir, the disk, and the terminal's calendar against spxdl's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spxdl import calendars
from spxdl.config import Settings
from spxdl.errors import PermissionDenied, SpxdlError
from spxdl.health.checks import Check, TerminalCheck, check_archive, check_disk, check_terminal, probe_client
from spxdl.health.direct import check_direct, direct_source
from spxdl.sources import DIRECT
from spxdl.terminal import TerminalClient

MOST_SHOWN = 8  # differing days named in one line


@dataclass(frozen=True)
class CalendarCheck:
    """The terminal's calendar against spxdl's for some years; ``agrees`` unless a day differs and spxdl's wins."""

    agrees: bool
    detail: str
    years: tuple[int, ...]
    differences: tuple[calendars.DayDifference, ...] = ()
    compared: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"agrees": self.agrees, "compared": self.compared, "years": list(self.years), "detail": self.detail,
                "differences": [{"date": d.day.isoformat(), "terminal": d.terminal, "spxdl": d.spxdl}
                                for d in self.differences]}


def differing_days(differences: tuple[calendars.DayDifference, ...]) -> str:
    shown = "; ".join(d.describe() for d in differences[:MOST_SHOWN])
    more = len(differences) - MOST_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def check_calendar(settings: Settings, client: TerminalClient, years: tuple[int, ...]) -> CalendarCheck:
    """Compare spxdl's calendar (with the overrides file) and the terminal's, day by day, for ``years``."""
    shown_years = " and ".join(str(year) for year in years)
    if client.api != "v3":
        return CalendarCheck(True, f"API {client.api} serves no calendar: nothing compared", years, compared=False)
    try:
        terminal = calendars.terminal_days(client, years)
    except PermissionDenied:
        return CalendarCheck(True, "the terminal's calendar is not in your subscription (Value and up): "
                                   "nothing compared", years, compared=False)
    found = tuple(calendars.differences(settings.calendar(), terminal, years))
    if not found:
        return CalendarCheck(True, f"spxdl's calendar and the terminal's agree on {shown_years}", years)
    if settings.calendar_source == "terminal":
        return CalendarCheck(True, f"{len(found)} day(s) differ in {shown_years}, and the terminal's calendar wins "
                                   f"([calendar] source = terminal): {differing_days(found)}", years, found)
    return CalendarCheck(False, f"{len(found)} day(s) differ in {shown_years}: {differing_days(found)}; set "
                                "[calendar] source = terminal, or list them in the overrides file", years, found)


@dataclass(frozen=True)
class HealthReport:
    """Every check of ``spxdl health``; healthy when the terminal, the data dir and the disk passed.

    The calendar is reported, not judged: days where spxdl's calendar is wrong are a gap or a
    wasted request, not a reason to stop the nightly run.
    """

    terminal: TerminalCheck
    data_dir: Check
    disk: Check
    calendar: CalendarCheck | None = None

    @property
    def healthy(self) -> bool:
        return self.terminal.ok and self.data_dir.ok and self.disk.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "terminal": self.terminal.as_dict(),
            "data_dir": {"ok": self.data_dir.ok, "detail": self.data_dir.detail},
            "disk": {"ok": self.disk.ok, "detail": self.disk.detail},
            "calendar": None if self.calendar is None else self.calendar.as_dict(),
        }


def health_report(settings: Settings) -> HealthReport:
    """Every check of ``spxdl health`` for ``settings`` (with the direct source: the SDK's login)."""
    if settings.source == DIRECT:
        with direct_source(settings) as source:
            terminal = check_direct(source)
        calendar = CalendarCheck(True, "the direct source serves no calendar: spxdl's own (and the overrides "
                                       "file) is in charge", calendars.comparison_years(), compared=False)
        return HealthReport(terminal, check_archive(settings), check_disk(settings.ledger_path), calendar)
    with probe_client(settings) as client:
        terminal = check_terminal(settings, client)
        calendar = None
        if terminal.ok:
            try:
                calendar = check_calendar(settings, client, calendars.comparison_years())
            except SpxdlError as exc:  # the calendar is a report, never a reason to fail health
                calendar = CalendarCheck(True, f"not compared: {exc}", calendars.comparison_years(), compared=False)
    return HealthReport(terminal, check_archive(settings), check_disk(settings.ledger_path), calendar)
