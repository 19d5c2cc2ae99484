"""``spxdl doctor``: does this terminal answer the way spxdl expects? One small request per family and dataset.

The requests are the client's own (the same parameters a run sends), narrowed to be small: the
status, SPXW's expirations and the strikes of the nearest one, then for every dataset a few minutes
(10:00 to 10:04) of one strike's calls (v3; v2's bulk endpoints answer the chain) on the latest
complete session, and the calendar. Each answer is kept whole (``answers.Recorder``) and judged
byte by byte: status, content type, framing, line ends, quoting, header, pagination, rights,
strike units, expirations, times; then it goes through the converter as a run's would. The
checks are about what spxdl needs, not about one server's quirks.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from spxdl import calendars, capture, convert, datasets, storage
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.errors import ConfigError, NoData, PermissionDenied, SpxdlError, TerminalError, TerminalUnavailable
from spxdl.health.answers import Answer, Recorder, csv_answer, framing, content_type, header_columns, pagination
from spxdl.health.checks import Finding, Verdict, probe_client
from spxdl.health.direct import DirectDoctor, direct_source
from spxdl.health.report import check_calendar
from spxdl.health.rows import Asked, judge_rows, list_strike_units
from spxdl.sources import DIRECT
from spxdl.terminal import CALENDAR_PATHS, LIST_PATHS, STATUS_PATHS, TerminalClient, parse_list_body, parse_wire_date

log = logging.getLogger(__name__)

ROOT = "SPXW"
WINDOW_MS = (36_000_000, 36_240_000)  # 10:00:00 to 10:04:00 New York: five one-minute rows a contract
DOCTOR_CAPTURE = "spxdl doctor --capture"
REPORT_FILE = "doctor.json"


@dataclass
class DoctorReport:
    """Every finding of ``spxdl doctor``; ``outcome`` decides the exit code."""

    url: str
    configured: tuple[str, ...]  # the datasets the user's settings ask for
    api: str | None = None
    simulated: bool | None = None
    session: date | None = None
    findings: list[Finding] = field(default_factory=list)
    unreachable: TerminalError | None = None
    capture_dir: Path | None = None

    def add(self, found: list[Finding]) -> None:
        self.findings.extend(found)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.verdict] = counts.get(finding.verdict, 0) + 1
        return counts

    def blocking(self) -> list[Finding]:
        """Findings that make spxdl not work here: a difference, or a configured dataset outside the subscription."""
        return [f for f in self.findings if f.verdict == Verdict.DIFFERS
                or (f.verdict == Verdict.NO_SUBSCRIPTION and f.check in self.configured)]

    @property
    def outcome(self) -> str:
        """``unreachable`` (no terminal answered), ``differs`` (something spxdl needs differs) or ``ok``."""
        if self.unreachable is not None:
            return "unreachable"
        return Verdict.DIFFERS if self.blocking() else Verdict.OK

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "url": self.url, "api": self.api, "simulated": self.simulated,
                "session": self.session.isoformat() if self.session else None,
                "error": None if self.unreachable is None else str(self.unreachable),
                "counts": self.counts(), "findings": [f.as_dict() for f in self.findings],
                "capture": str(self.capture_dir) if self.capture_dir else None}


class Doctor:
    """One doctor session against one terminal: the client, every answer it got, and the findings."""

    def __init__(self, settings: Settings, client: TerminalClient, recorder: Recorder, report: DoctorReport) -> None:
        self.settings, self.client, self.recorder, self.report = settings, client, recorder, report
        self.calendar = settings.calendar()
        self.listed_expirations: frozenset[date] = frozenset()
        self.listed_strikes: frozenset[float] = frozenset()

    @property
    def api(self) -> str:
        return self.client.api

    def run(self) -> None:
        if not self.status():
            return
        self.report.session = self.calendar.last_complete_session()
        expiration = self.expirations()
        strike = self.strikes(expiration) if expiration else None
        for dataset in datasets.DATASETS.values():
            self.dataset(dataset, expiration, strike)
        self.calendar_check()

    # -- status and lists ---------------------------------------------------------------------

    def status(self) -> bool:
        """Connect; the status answer's bytes. False when nothing more can be asked."""
        mark = self.recorder.mark()
        try:
            self.client.connect()
        except TerminalUnavailable as exc:
            self.report.unreachable = exc
            return False
        except PermissionDenied as exc:
            self.report.add([Finding("status", Verdict.DIFFERS, f"{exc}: log the terminal in with an account "
                                                                f"whose credentials it accepts")])
            return False
        self.report.api, self.report.simulated, self.report.url = self.api, self.client.simulated, self.client.base_url
        answer = self._last(self.recorder.since(mark, STATUS_PATHS[self.api]))
        found = framing("status", answer) + content_type("status", answer, "text/plain")
        word = answer.text.strip()
        self.report.add(found or [Finding("status", Verdict.OK, f"{answer.head.endpoint}: {word} (API {self.api}"
                                                                f"{', spxdl simulator' if self.client.simulated else ''})")])
        return True

    def expirations(self) -> date | None:
        """SPXW's expirations; the nearest one on or after the session."""
        path = LIST_PATHS[self.api]["expirations"]
        mark = self.recorder.mark()
        try:
            listed = self.client.expirations(ROOT)
            found: list[Finding] = []
        except SpxdlError as exc:
            found = self._failed("expirations", mark, path, exc)
            values = self._lenient_list(mark, path, ("expiration", "date"))
            if values is None:
                self.report.add(found)
                return None
            listed = sorted({parse_wire_date(value) for value in values})
        answer = self._last(self.recorder.since(mark, path))
        self.listed_expirations = frozenset(listed)
        session = self.report.session
        later = [expiration for expiration in listed if expiration >= session]
        found = list(dict.fromkeys(found + csv_answer("expirations", answer)))
        if not later:
            found.append(Finding("expirations", Verdict.DIFFERS, f"no {ROOT} expiration on or after {session} "
                                                                  f"among {len(listed)} listed"))
        self.report.add(found or [Finding("expirations", Verdict.OK, f"{len(listed)} {ROOT} expirations listed; "
                                                                      f"the nearest from {session}: {later[0]}")])
        return later[0] if later else None

    def strikes(self, expiration: date) -> float | None:
        """The strikes of ``expiration`` (units by magnitude); the middle one."""
        path = LIST_PATHS[self.api]["strikes"]
        mark = self.recorder.mark()
        try:
            self.client.strikes(ROOT, expiration)
            found: list[Finding] = []
        except SpxdlError as exc:
            found = self._failed("strikes", mark, path, exc)
        raw = self._lenient_list(mark, path, ("strike",))
        if raw is None:
            self.report.add(found)
            return None
        wrong_unit = list_strike_units("strikes", [str(v) for v in raw], self.api)
        found = list(dict.fromkeys(found + csv_answer("strikes", self._last(self.recorder.since(mark, path)))
                                   + wrong_unit))
        # Go on with the strikes in dollars as the units' magnitude shows them, so that the datasets' own
        # answers are asked for a strike that exists, and judged.
        unit = 1000.0 if (self.api == "v2") != bool(wrong_unit) else 1.0
        listed = sorted({float(value) / unit for value in raw})
        self.listed_strikes = frozenset(listed)
        if not listed:
            found.append(Finding("strikes", Verdict.DIFFERS, f"no strike listed for {ROOT} {expiration}"))
            self.report.add(found)
            return None
        middle = listed[len(listed) // 2]
        self.report.add(found or [Finding("strikes", Verdict.OK, f"{len(listed)} strikes of {ROOT} {expiration} "
                                                                  f"in the API's unit; asking {middle:g} below")])
        return middle

    # -- a dataset -------------------------------------------------------------------------------

    def dataset(self, dataset: Dataset, expiration: date | None, strike: float | None) -> None:
        """One small request of ``dataset`` (the session before when the latest has no data yet)."""
        check = dataset.name
        path = dataset.path(self.api)
        if path is None:
            self.report.add([Finding(check, Verdict.NOT_SERVED, f"API {self.api} has no such endpoint "
                                                                f"(served by {' and '.join(dataset.apis())})")])
            return
        if expiration is None and not (dataset.all_expirations or dataset.is_index):
            self.report.add([Finding(check, Verdict.DIFFERS, "not asked: no expiration to ask for (see above)")])
            return
        day = self.report.session
        for attempt in range(2):
            asked = self.asked(dataset, day, expiration, strike)
            mark = self.recorder.mark()
            try:
                rows = self.convert(asked)
            except NoData as exc:
                if attempt == 0:
                    day = self.calendar.previous_trading_day(day)
                    continue
                self.report.add([Finding(check, Verdict.DIFFERS, f"no data for {self.report.session} nor {day}: {exc}")])
                return
            except SpxdlError as exc:
                self.report.add(self._failed(check, mark, path, exc, asked))
                return
            answers = [a for a in self.recorder.since(mark, path) if a.head.status == 200] or self.recorder.since(mark)
            found = self.judge(check, answers, asked)
            self.report.add(found or [Finding(check, Verdict.OK, self.describe(asked, rows, answers[-1]))])
            return

    def asked(self, dataset: Dataset, day: date, expiration: date | None, strike: float | None) -> Asked:
        whole_day = dataset.all_expirations or dataset.is_index
        window = WINDOW_MS if dataset.uses_interval else (self.settings.start_ms, self.settings.end_ms)
        return Asked(dataset, self.api, dataset.roots_for((ROOT,))[0], day, None if whole_day else expiration,
                     strike if self.api == "v3" and not dataset.is_index else None,
                     "C" if self.api == "v3" and not dataset.is_index else None, *window,
                     self.listed_strikes, self.listed_expirations)

    def convert(self, asked: Asked) -> int:
        """The request as the engine makes it, read through the converter into Parquet; its rows."""
        dataset, settings = asked.dataset, self.settings
        greeks = {name: getattr(settings, name) for name in ("rate", "rate_value", "annual_div")
                  if dataset.greeks_params and getattr(settings, name) is not None}
        pages = self.client.history(dataset, asked.root, asked.expiration, asked.trade_date, interval="1m",
                                    start_ms=asked.start_ms, end_ms=asked.end_ms, strike=asked.strike,
                                    right=asked.right, **greeks)
        spec = convert.ConvertSpec(dataset, self.api, asked.root, asked.expiration, asked.trade_date, asked.start_ms,
                                   asked.end_ms, datasets.interval_ms("1m") if dataset.uses_interval else None)
        return convert.write_parquet(pages, io.BytesIO(), spec).rows

    def judge(self, check: str, answers: list[Answer], asked: Asked) -> list[Finding]:
        found: list[Finding] = []
        for answer in answers:
            found += csv_answer(check, answer) + pagination(check, answer, self.api)
            found += header_columns(check, answer, asked.dataset.columns(self.api) or ())
            found += judge_rows(check, answer, asked)
        return list(dict.fromkeys(found))  # a page repeats its first page's findings

    def describe(self, asked: Asked, rows: int, answer: Answer) -> str:
        what = ("every expiration" if asked.expiration is None and not asked.dataset.is_index
                else f"exp {asked.expiration}" if asked.expiration else "the index")
        contract = f" strike {asked.strike:g} calls" if asked.strike is not None else ""
        window = " 10:00-10:04" if asked.dataset.uses_interval else ""
        ends = "CRLF" if b"\r\n" in answer.body else "LF"
        frame = "Content-Length" if answer.header("Content-Length") else "chunked"
        return (f"{rows} row(s): {asked.root} {what}{contract} on {asked.trade_date}{window}; CSV, {ends}, {frame}, "
                "header as pinned, rows as expected, converted and read back")

    # -- the calendar --------------------------------------------------------------------------

    def calendar_check(self) -> None:
        if self.api != "v3":
            self.report.add([Finding("calendar", Verdict.NOT_SERVED, f"API {self.api} serves no calendar")])
            return
        mark = self.recorder.mark()
        try:
            result = check_calendar(self.settings, self.client, calendars.comparison_years())
            schedule = self.client.schedule(self.report.session)
        except PermissionDenied:
            self.report.add([Finding("calendar", Verdict.NO_SUBSCRIPTION, "the calendar needs Value or up")])
            return
        except SpxdlError as exc:
            self.report.add(self._failed("calendar", mark, CALENDAR_PATHS["year"], exc))
            return
        found = [f for answer in self.recorder.since(mark) for f in csv_answer("calendar", answer)]
        found += header_columns("calendar", self._last(self.recorder.since(mark, CALENDAR_PATHS["year"])),
                                ("date", "type", "open", "close"))
        kind = calendars.day_kind(schedule.kind, self.report.session)
        if kind == calendars.CLOSED:
            found.append(Finding("calendar", Verdict.DIFFERS, f"the terminal calls {self.report.session} closed, "
                                                              "a session spxdl's calendar has"))
        found.append(Finding("calendar", Verdict.OK if result.agrees else Verdict.DIFFERS, result.detail))
        self.report.add(list(dict.fromkeys(found)))

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _last(answers: list[Answer]) -> Answer:
        return answers[-1]

    def _lenient_list(self, mark: int, path: str, columns: tuple[str, ...]) -> list | None:
        """The values of the last list answer since ``mark``, read leniently (a missing last line end
        added), so that the checks after it can go on; None when there is no whole answer to read."""
        answers = [a for a in self.recorder.since(mark, path) if a.head.status == 200 and a.whole]
        if not answers:
            return None
        text = answers[-1].text
        try:
            values, _ = parse_list_body(text if text.endswith("\n") else text + "\n", columns, endpoint=path)
        except SpxdlError:
            return None
        return values

    def _failed(self, check: str, mark: int, path: str, exc: SpxdlError, asked: Asked | None = None) -> list[Finding]:
        """What a failed request shows: the subscription, or the differences its answer's bytes reveal."""
        if isinstance(exc, PermissionDenied):
            return [Finding(check, Verdict.NO_SUBSCRIPTION, str(exc).splitlines()[0][:200])]
        found: list[Finding] = []
        answers = [a for a in self.recorder.since(mark, path) if a.head.status == 200]
        for answer in answers:
            found += csv_answer(check, answer)
            if asked is not None:
                found += header_columns(check, answer, asked.dataset.columns(self.api) or ())
                found += judge_rows(check, answer, asked)
        found = [f for f in found if f.verdict == Verdict.DIFFERS] or found
        return list(dict.fromkeys(found)) or [Finding(check, Verdict.DIFFERS, str(exc).splitlines()[0][:300])]


def doctor_report(settings: Settings, *, capture_dir: Path | None = None) -> DoctorReport:
    """Run every doctor check against ``settings``' terminal; with ``capture_dir``, capture every answer there."""
    if settings.source == DIRECT:
        return direct_doctor_report(settings, capture_dir)
    capturing = capture.Capture(capture_dir, command=DOCTOR_CAPTURE) if capture_dir else None
    recorder = Recorder(then=capturing)
    report = DoctorReport(settings.terminal_url or "auto (127.0.0.1:25503, then :25510)", settings.datasets,
                          capture_dir=capture_dir)
    with probe_client(settings, read_timeout=max(settings.read_timeout, 60.0), observer=recorder) as client:
        Doctor(settings, client, recorder, report).run()
    if capture_dir is not None:
        capture.write_manifest(capture_dir, DOCTOR_CAPTURE)
        storage.write_json_atomic(Path(capture_dir) / REPORT_FILE, shareable(report))
    return report


def direct_doctor_report(settings: Settings, capture_dir: Path | None) -> DoctorReport:
    """Doctor through the SDK (health/direct.py): no HTTP answer to capture, every dataset read and checked."""
    if capture_dir is not None:
        raise ConfigError("--capture keeps a terminal's HTTP answers byte for byte; the direct source has none: "
                          "leave --capture out", key="source")
    report = DoctorReport("ThetaData through the thetadatadx SDK", settings.datasets)
    with direct_source(settings) as source:
        DirectDoctor(settings, source, report).run()
    return report


def shareable(report: DoctorReport) -> dict[str, Any]:
    """The report as it goes into a capture: the terminal's host as 127.0.0.1, no local path."""
    host = urlsplit(report.url).hostname or ""
    text = json.dumps({**report.as_dict(), "capture": None})
    if host and host != "127.0.0.1":
        text = text.replace(f"//{host}", "//127.0.0.1")
    return json.loads(text)
