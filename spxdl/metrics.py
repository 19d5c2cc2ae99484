"""``logs/metrics.csv``: one row per finished task and one per run, appended by the engine's parent.

Columns: kind (task | run), key, state, rows, bytes, seconds, rows_per_s, retries, failures,
finished_at (New York time, ISO), dropped (rows ``[validation] mode = drop`` left out), then one
column per check of ``checks.CHECKS`` (rows, or contracts, it counted; empty where a row was
written before that column existed). Several runs may append at once: each append is one
``write`` on an ``O_APPEND`` descriptor under an ``flock`` of the file itself, and a file of an
older spxdl is widened to today's columns first (``storage.append_csv_rows``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping

from spxdl import checks, storage
from spxdl.trading_calendar import NY

METRICS_CSV = "metrics.csv"
RATE_RUNS = 20  # the latest runs whose rows/s estimate a dry run's time


def _now_ny() -> str:
    return datetime.now(NY).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MetricsRow:
    """One line of ``metrics.csv``."""

    kind: str
    key: str
    state: str
    rows: int
    bytes: int
    seconds: float
    retries: int = 0
    failures: int = 0
    finished_at: str = field(default_factory=_now_ny)
    dropped: int = 0
    checks: Mapping[str, int] = field(default_factory=dict)  # check name -> rows (or contracts) it counted

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_csv_fields(self) -> dict[str, object]:
        values: dict[str, object] = {name: getattr(self, name) for name in BASE_FIELDS if name != "rows_per_s"}
        values.update(seconds=f"{self.seconds:.3f}", rows_per_s=f"{self.rows_per_s:.0f}", dropped=self.dropped)
        values.update({name: self.checks.get(name, 0) for name in checks.CHECKS})
        return values


BASE_FIELDS = ("kind", "key", "state", "rows", "bytes", "seconds", "rows_per_s", "retries", "failures", "finished_at")
FIELDS = (*BASE_FIELDS, "dropped", *checks.CHECKS)


def metrics_path(data_dir: Path) -> Path:
    """Where the metrics of ``data_dir`` go."""
    return storage.logs_dir(data_dir) / METRICS_CSV


def append(data_dir: Path, rows: Iterable[MetricsRow]) -> None:
    """Append ``rows`` (a header first if the file is new)."""
    fields = [row.as_csv_fields() for row in rows]
    if fields:
        storage.append_csv_rows(metrics_path(data_dir), fields, FIELDS)


def read(data_dir: Path) -> list[dict[str, str]]:
    """Every row of ``metrics.csv`` (empty if there is none yet)."""
    path = metrics_path(data_dir)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def past_rows_per_second(data_dir: Path, runs: int = RATE_RUNS) -> float | None:
    """Rows per second over the latest ``runs`` runs that stored rows (None without any): a dry run's clock."""
    done = [row for row in read(data_dir) if row.get("kind") == "run" and _number(row.get("rows")) > 0
            and _number(row.get("seconds")) > 0][-runs:]
    if not done:
        return None
    return sum(_number(row["rows"]) for row in done) / sum(_number(row["seconds"]) for row in done)


def _number(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0
