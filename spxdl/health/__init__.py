"""What ``spxdl health`` and ``spxdl doctor`` check, returned as reports the CLI renders.

One responsibility per module, each importing only those before it in this list:

- ``checks``: single checks (terminal, data dir, disk), ``Check``, ``Finding`` and ``Verdict``;
- ``answers``: ``Recorder`` (every answer kept whole) and the checks of one answer's bytes;
- ``direct``: health and doctor through the SDK (``[terminal] source = direct``);
- ``report``: ``health_report`` (with the terminal's calendar against spxdl's);
- ``rows``: the rows of one history answer against what was asked;
- ``doctor``: ``doctor_report``, one small request per endpoint family and dataset, every answer judged.
"""

from spxdl.health.checks import (
    Check,
    Finding,
    TerminalCheck,
    Verdict,
    check_archive,
    check_data_dir,
    check_disk,
    check_terminal,
)
from spxdl.health.doctor import DoctorReport, doctor_report
from spxdl.health.report import CalendarCheck, HealthReport, check_calendar, health_report

__all__ = [
    "CalendarCheck", "Check", "DoctorReport", "Finding", "HealthReport", "TerminalCheck", "Verdict",
    "check_archive", "check_calendar", "check_data_dir", "check_disk", "check_terminal", "doctor_report", "health_report",
]
