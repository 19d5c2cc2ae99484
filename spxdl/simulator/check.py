"""``spxdl sim --check``: exercise every endpoint family in every format against a running simulator."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import requests

from spxdl.errors import DataError, SchemaMismatch, TerminalError, TerminalUnavailable
from spxdl.simulator import contract
from spxdl.simulator.columns import (
    CALENDAR_DAY_COLUMNS,
    CALENDAR_DAY_PATH,
    CALENDAR_YEAR_COLUMNS,
    CALENDAR_YEAR_PATH,
    DAILY_DATASETS,
    DATASETS,
    INDEX_V2_FORMAT,
    INDEX_V2_PATH,
    INDEX_V3_COLUMNS,
    INDEX_V3_PATH,
    DatasetColumns,
)

CHECK_DAY = date(2024, 3, 14)
ROOT = "SPXW"
# Hourly rows keep the check quick on the realistic profile (a full chain is 130k 1-minute rows).
V2_IVL, V3_INTERVAL = "3600000", "1h"


class Checker:
    """One session against the simulator; every method returns a line or raises."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout

    def get(self, path: str, params: dict[str, Any] | None = None, *, absolute: bool = False) -> requests.Response:
        target = path if absolute else self.url + path
        try:
            r = self.session.get(target, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TerminalUnavailable(f"simulator check could not reach {target}: {exc}", endpoint=path) from None
        if r.status_code != 200:
            raise TerminalError("simulator check got an error answer", endpoint=path, params=params,
                                status=r.status_code, body=r.text)
        return r

    def status(self, path: str) -> str:
        text = self.get(path).text
        if text != "CONNECTED":
            raise DataError(f"{path} answered {text!r}, expected CONNECTED")
        return f"{path}: CONNECTED"

    def v2_expiration(self) -> tuple[date, list[str]]:
        csv_dates = self._csv(self.get("/v2/list/expirations", {"root": ROOT, "use_csv": "true"}))
        json_dates = self.get("/v2/list/expirations", {"root": ROOT}).json()["response"]
        if [int(r[0]) for r in csv_dates[1:]] != json_dates:
            raise DataError("v2 list/expirations differs between CSV and JSON")
        exp = min(d for d in json_dates if d >= int(CHECK_DAY.strftime("%Y%m%d")))
        line = f"/v2/list/expirations csv+json: {len(json_dates)} {ROOT} expirations"
        return date(exp // 10000, exp // 100 % 100, exp % 100), [line]

    def v2_lists(self, exp: date) -> list[str]:
        lines = []
        roots = self.get("/v2/list/roots/option", {"use_csv": "true"}).text
        lines.append(f"/v2/list/roots/option csv: {roots.split()[1:]}")
        for path in ("/v2/list/strikes", "/v2/list/dates/option/quote"):
            params = {"root": ROOT, "exp": exp.strftime("%Y%m%d")}
            rows = self._csv(self.get(path, params | {"use_csv": "true"}))
            values = self.get(path, params).json()["response"]
            if [int(r[0]) for r in rows[1:]] != values:
                raise DataError(f"v2 {path} differs between CSV and JSON")
            lines.append(f"{path} csv+json: {len(values)} values")
        return lines

    def v3_lists(self, exp: date) -> list[str]:
        lines = []
        for path, params in (("/v3/option/list/expirations", {"symbol": ROOT}),
                             ("/v3/option/list/strikes", {"symbol": ROOT, "expiration": exp.isoformat()}),
                             ("/v3/option/list/dates/quote", {"symbol": ROOT, "expiration": exp.isoformat()})):
            rows = self._csv(self.get(path, params | {"format": "csv"}))
            objects = self.get(path, params | {"format": "json"}).json()["response"]
            if len(rows) - 1 != len(objects):
                raise DataError(f"v3 {path} differs between CSV and JSON")
            lines.append(f"{path} csv+json: {len(objects)} rows")
        return lines

    def v2_history(self, ds: DatasetColumns, exp: date) -> tuple[str, list[list[str]]]:
        params = {"root": ROOT, "exp": exp.strftime("%Y%m%d"), "start_date": CHECK_DAY.strftime("%Y%m%d"),
                  "end_date": CHECK_DAY.strftime("%Y%m%d"), "ivl": V2_IVL}
        rows, pages = self._v2_pages(ds.v2_path, params | {"use_csv": "true"})
        if tuple(rows[0]) != ds.v2_columns:
            raise SchemaMismatch(f"v2 {ds.name} CSV header differs", columns=rows[0])
        ticks = self._v2_json_ticks(ds.v2_path, params)
        if ticks != len(rows) - 1:
            raise DataError(f"v2 {ds.name}: CSV has {len(rows) - 1} rows, JSON {ticks}")
        return f"{ds.v2_path} csv+json: {ticks} rows in {pages} page(s)", rows

    def _v2_pages(self, path: str, params: dict) -> tuple[list[list[str]], int]:
        r = self.get(path, params)
        rows, pages = self._csv(r), 1
        while r.headers.get("Next-Page", "null") != "null":
            r = self.get(r.headers["Next-Page"], absolute=True)
            rows.extend(self._csv(r)[1:])
            pages += 1
        return rows, pages

    def _v2_json_ticks(self, path: str, params: dict) -> int:
        body = self.get(path, params).json()
        ticks = sum(len(item["ticks"]) for item in body["response"])
        while body["header"]["next_page"] not in (None, "null"):
            body = self.get(body["header"]["next_page"], absolute=True).json()
            ticks += sum(len(item["ticks"]) for item in body["response"])
        return ticks

    def v3_history(self, ds: DatasetColumns, exp: date) -> tuple[str, list[list[str]]]:
        params = {"symbol": ROOT, "expiration": exp.isoformat(), **v3_day_params(ds.v3_path)}
        rows = self._csv(self.get(ds.v3_path, params | {"format": "csv"}))
        if tuple(rows[0]) != ds.v3_columns:
            raise SchemaMismatch(f"v3 {ds.name} CSV header differs", columns=rows[0])
        body = self.get(ds.v3_path, params | {"format": "json"}).json()["response"]
        count = sum(len(item["data"]) for item in body)
        if count != len(rows) - 1:
            raise DataError(f"v3 {ds.name}: CSV has {len(rows) - 1} rows, JSON {count}")
        return f"{ds.v3_path} csv+json: {count} rows", rows

    def wildcard(self, ds: DatasetColumns) -> str:
        """A daily dataset's every expiration of the day in one v3 request."""
        params = {"symbol": ROOT, "expiration": "*", **v3_day_params(ds.v3_path), "format": "csv"}
        rows = self._csv(self.get(ds.v3_path, params))
        expirations = {row[1] for row in rows[1:]}
        if len(expirations) < 2:
            raise DataError(f"v3 {ds.name} expiration=*: {len(expirations)} expiration(s), expected several")
        return f"{ds.v3_path} expiration=*: {len(rows) - 1} rows of {len(expirations)} expirations"

    def index(self) -> list[str]:
        """SPX at 1h over v2 and v3: the same prices."""
        day = CHECK_DAY.strftime("%Y%m%d")
        v2 = self._csv(self.get(INDEX_V2_PATH, {"root": "SPX", "start_date": day, "end_date": day, "ivl": V2_IVL,
                                                "use_csv": "true"}))
        v3 = self._csv(self.get(INDEX_V3_PATH, {"symbol": "SPX", "date": day, "interval": V3_INTERVAL,
                                                "format": "csv"}))
        if tuple(v2[0]) != INDEX_V2_FORMAT or tuple(v3[0]) != INDEX_V3_COLUMNS:
            raise SchemaMismatch("index price CSV header differs", columns=v2[0] + v3[0])
        if [row[1] for row in v2[1:]] != [row[1] for row in v3[1:]]:
            raise DataError("index price: v2 and v3 differ")
        return [f"{INDEX_V2_PATH} and {INDEX_V3_PATH}: {len(v3) - 1} rows, equal prices"]

    def calendar(self) -> list[str]:
        year = self._csv(self.get(CALENDAR_YEAR_PATH, {"year": str(CHECK_DAY.year), "format": "csv"}))
        day = self._csv(self.get(CALENDAR_DAY_PATH, {"date": CHECK_DAY.strftime("%Y%m%d"), "format": "csv"}))
        if tuple(year[0]) != CALENDAR_YEAR_COLUMNS or tuple(day[0]) != CALENDAR_DAY_COLUMNS:
            raise SchemaMismatch("calendar CSV header differs", columns=year[0] + day[0])
        return [f"{CALENDAR_YEAR_PATH}: {len(year) - 1} days in {CHECK_DAY.year}",
                f"{CALENDAR_DAY_PATH}: {CHECK_DAY} is {day[1][0]}"]

    @staticmethod
    def _csv(r: requests.Response) -> list[list[str]]:
        return list(csv.reader(io.StringIO(r.text)))


def v3_day_params(path: str) -> dict[str, str]:
    """The check day (and the interval, where the path takes one) as the vendor's contract spells them."""
    names = {param.name for param in contract.PARAMS[path]}
    day = CHECK_DAY.strftime("%Y%m%d")
    params = {"date": day} if "date" in names else {"start_date": day, "end_date": day}
    if "interval" in names:
        params["interval"] = V3_INTERVAL
    return params


def same_values(v2_rows: list[list[str]], v3_rows: list[list[str]], ds: DatasetColumns) -> None:
    """v2 and v3 must carry the same numbers for the same contract-minute (first data row)."""
    shared = [c for c in ds.v3_columns[4:] if c in ds.v2_columns]
    v2 = dict(zip(v2_rows[0], v2_rows[1]))
    v3 = dict(zip(v3_rows[0], v3_rows[1]))
    differing = [c for c in shared if v2[c] != v3[c]]
    if differing:
        raise DataError(f"{ds.name}: v2 and v3 differ in {differing}")


def check(url: str) -> list[str]:
    """Run every check against the simulator at ``url``; one line per check, or an spxdl error."""
    c = Checker(url)
    lines = [c.status("/v2/system/mdds/status"), c.status("/v3/terminal/mdds/status")]
    exp, exp_lines = c.v2_expiration()
    lines += exp_lines + c.v2_lists(exp) + c.v3_lists(exp)
    for ds in DATASETS.values():
        v2_rows = None
        if ds.v2_path:
            line, v2_rows = c.v2_history(ds, exp)
            lines.append(line)
        if ds.v3_path:
            line, v3_rows = c.v3_history(ds, exp)
            if v2_rows is not None:
                same_values(v2_rows, v3_rows, ds)
                line += " (values equal to v2)"
            lines.append(line)
        if ds.name in DAILY_DATASETS:
            lines.append(c.wildcard(ds))
    return lines + c.index() + c.calendar()

