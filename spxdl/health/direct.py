"""``spxdl health`` and ``spxdl doctor`` with ``[terminal] source = direct``: ThetaData through the SDK.

There is no terminal and no HTTP answer to judge byte for byte. Health logs in through the SDK and
reports its version, where the credentials came from (never what they are) and the account's
tiers. Doctor then asks, as a run would, SPXW's expirations and the strikes of the nearest one,
and for every dataset a few minutes (10:00 to 10:04) of one strike's calls on the latest complete
session (the session before when that one has no data yet), each read through the converter: a
column the SDK no longer sends, or rows the checks flag, is a difference; a permission answer is
"not in your subscription".
"""

from __future__ import annotations

import io
from datetime import date
from typing import TYPE_CHECKING

from spxdl import convert, datasets
from spxdl.checks import OBSERVATIONS
from spxdl.config import Settings
from spxdl.datasets import Dataset
from spxdl.direct import DirectSource
from spxdl.errors import NoData, PermissionDenied, SpxdlError, TerminalError, TerminalUnavailable
from spxdl.health.checks import Finding, TerminalCheck, Verdict

if TYPE_CHECKING:
    from spxdl.health.doctor import DoctorReport

ROOT = "SPXW"
WINDOW_MS = (36_000_000, 36_240_000)  # 10:00:00 to 10:04:00 New York, as the terminal's doctor asks
NAME = "ThetaData through the thetadatadx SDK"


def direct_source(settings: Settings) -> DirectSource:
    """The SDK's source for a check: one attempt per request (the SDK's own retries aside)."""
    return DirectSource(retries=min(settings.retries, 1), read_timeout=settings.read_timeout)


def where(source: DirectSource) -> str:
    version = f" {source.sdk_version}" if source.sdk_version else ""
    return f"{NAME}{version}"


def check_direct(source: DirectSource) -> TerminalCheck:
    """Log in once; the SDK's version, where the credentials came from and the account's tiers."""
    try:
        source.connect()
        tiers = ", ".join(f"{asset} {tier}" for asset, tier in source.subscription().items())
    except TerminalError as exc:
        return TerminalCheck(False, where(source), "not logged in", "direct", False, str(exc), exc)
    detail = f"credentials from {source.credentials_origin}; subscription: {tiers or 'not told'}"
    return TerminalCheck(True, where(source), "CONNECTED", "direct", False, detail=detail)


class DirectDoctor:
    """One doctor session through the SDK: the source, the report's findings."""

    def __init__(self, settings: Settings, source: DirectSource, report: DoctorReport) -> None:
        self.settings, self.source, self.report = settings, source, report
        self.calendar = settings.calendar()

    def run(self) -> None:
        found = check_direct(self.source)
        self.report.url, self.report.api, self.report.simulated = found.url, "direct", False
        if not found.ok:
            if isinstance(found.exception, TerminalUnavailable):
                self.report.unreachable = found.exception
            else:
                self.report.add([Finding("status", Verdict.DIFFERS, found.error or "not logged in")])
            return
        self.report.add([Finding("status", Verdict.OK, f"logged in: {found.detail}")])
        self.report.session = self.calendar.last_complete_session()
        expiration = self.expiration()
        strike = self.strike(expiration) if expiration else None
        for dataset in datasets.DATASETS.values():
            self.dataset(dataset, expiration, strike)
        self.report.add([Finding("calendar", Verdict.NOT_SERVED, "the direct source serves no calendar: "
                                                                  "[calendar] source = builtin")])

    def expiration(self) -> date | None:
        try:
            listed = self.source.expirations(ROOT)
        except SpxdlError as exc:
            self.report.add([self._failed("expirations", exc)])
            return None
        later = [expiration for expiration in listed if expiration >= self.report.session]
        if not later:
            self.report.add([Finding("expirations", Verdict.DIFFERS, f"no {ROOT} expiration on or after "
                                                                      f"{self.report.session} among {len(listed)}")])
            return None
        self.report.add([Finding("expirations", Verdict.OK, f"{len(listed)} {ROOT} expirations listed; the nearest "
                                                             f"from {self.report.session}: {later[0]}")])
        return later[0]

    def strike(self, expiration: date) -> float | None:
        try:
            listed = self.source.strikes(ROOT, expiration)
        except SpxdlError as exc:
            self.report.add([self._failed("strikes", exc)])
            return None
        middle = listed[len(listed) // 2]
        self.report.add([Finding("strikes", Verdict.OK, f"{len(listed)} strikes of {ROOT} {expiration}; asking "
                                                         f"{middle:g} below")])
        return middle

    def dataset(self, dataset: Dataset, expiration: date | None, strike: float | None) -> None:
        """One small request of ``dataset`` through the SDK and the converter (the session before if none yet)."""
        whole_day = dataset.all_expirations or dataset.is_index
        if expiration is None and not whole_day:
            self.report.add([Finding(dataset.name, Verdict.DIFFERS, "not asked: no expiration to ask for (see above)")])
            return
        day = self.report.session
        for attempt in range(2):
            try:
                result = self.convert(dataset, day, None if whole_day else expiration, strike)
            except NoData as exc:
                if attempt == 0:
                    day = self.calendar.previous_trading_day(day)
                    continue
                self.report.add([Finding(dataset.name, Verdict.DIFFERS, f"no data for {self.report.session} nor "
                                                                        f"{day}: {exc}")])
                return
            except SpxdlError as exc:
                self.report.add([self._failed(dataset.name, exc)])
                return
            self.report.add([self.judged(dataset, result, day)])
            return

    def convert(self, dataset: Dataset, day: date, expiration: date | None, strike: float | None
                ) -> convert.ConvertResult:
        settings = self.settings
        window = WINDOW_MS if dataset.uses_interval else (settings.start_ms, settings.end_ms)
        greeks = {name: getattr(settings, name) for name in ("rate", "rate_value", "annual_div")
                  if dataset.greeks_params and getattr(settings, name) is not None}
        contract = {} if dataset.is_index else {"strike": strike, "right": "C"}
        root = dataset.roots_for((ROOT,))[0]
        pages = self.source.history(dataset, root, expiration, day, interval="1m", start_ms=window[0],
                                    end_ms=window[1], **contract, **greeks)
        spec = convert.ConvertSpec(dataset, "direct", root, expiration, day, *window,
                                   datasets.interval_ms("1m") if dataset.uses_interval else None)
        return convert.write_parquet(pages, io.BytesIO(), spec)

    @staticmethod
    def judged(dataset: Dataset, result: convert.ConvertResult, day: date) -> Finding:
        flagged = {name: count for name, count in result.checks.items() if count and name not in OBSERVATIONS}
        if flagged:
            shown = ", ".join(f"{name} {count}" for name, count in sorted(flagged.items()))
            return Finding(dataset.name, Verdict.DIFFERS, f"{result.rows} row(s) on {day}, and the checks flag {shown}")
        extra = f"; columns not stored: {', '.join(result.extra_columns)}" if result.extra_columns else ""
        verdict = Verdict.TOLERATED if result.extra_columns else Verdict.OK
        return Finding(dataset.name, verdict, f"{result.rows} row(s) on {day} in {result.pages} chunk(s): columns "
                                              f"as pinned, rows as expected, converted and read back{extra}")

    @staticmethod
    def _failed(check: str, exc: SpxdlError) -> Finding:
        if isinstance(exc, PermissionDenied):
            return Finding(check, Verdict.NO_SUBSCRIPTION, str(exc).splitlines()[0][:200])
        return Finding(check, Verdict.DIFFERS, str(exc).splitlines()[0][:300])
