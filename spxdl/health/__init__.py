"""What ``spxdl health`` and ``spxdl doctor`` check, returned as reports the CLI renders.

One responsibility per module, each importing only those before it in this list:

- ``checks``: single checks (terminal, data dir, disk), ``Check``, ``Finding`` and ``Verdict``;
- ``answers``: ``Recorder`` (every answer kept whole) and the checks of one answer's bytes;
- ``direct``: health and doctor through the SDK (``[terminal] source = direct``);
- ``report``: ``health_report`` (with the terminal's calendar against spxdl's);
- ``rows``: the rows of one history answer against what was asked;
- ``doctor``: ``doctor_report``, one small request per endpoint family and dataset, every answer judged.

Names are loaded on first use, so that the command line (which registers ``health`` and
``doctor``) loads neither HTTP nor Arrow for a run with nothing to do.
"""

from __future__ import annotations

from spxdl.lazy import lazy_getattr

_EXPORTS = {
    "Check": "checks", "Finding": "checks", "TerminalCheck": "checks", "Verdict": "checks",
    "check_archive": "checks", "check_data_dir": "checks", "check_disk": "checks", "check_terminal": "checks",
    "DoctorReport": "doctor", "doctor_report": "doctor",
    "CalendarCheck": "report", "HealthReport": "report", "check_calendar": "report", "health_report": "report",
}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)
