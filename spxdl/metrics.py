"""``logs/metrics.csv``: one row per finished task and one per run, appended by the engine's parent.

Columns: kind (task | run), key, state, rows, bytes, seconds, rows_per_s, retries, failures,
finished_at (New York time, ISO). Several runs may append at once: each row is one ``write``
on an ``O_APPEND`` descriptor, and the header is written under an ``flock`` of the file itself.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable

from spxdl import storage
from spxdl.trading_calendar import NY

METRICS_CSV = "metrics.csv"


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

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_csv_fields(self) -> dict[str, object]:
        values = asdict(self)
        values["seconds"] = f"{self.seconds:.3f}"
        values["rows_per_s"] = f"{self.rows_per_s:.0f}"
        return values


FIELDS = ("kind", "key", "state", "rows", "bytes", "seconds", "rows_per_s", "retries", "failures", "finished_at")


def metrics_path(data_dir: Path) -> Path:
    """Where the metrics of ``data_dir`` go."""
    return storage.logs_dir(data_dir) / METRICS_CSV


def append(data_dir: Path, rows: Iterable[MetricsRow]) -> None:
    """Append ``rows`` (a header first if the file is new)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    for row in rows:
        writer.writerow(row.as_csv_fields())
    if not buffer.getvalue():
        return
    storage.append_lines(metrics_path(data_dir), buffer.getvalue(), header=",".join(FIELDS) + "\n")


def read(data_dir: Path) -> list[dict[str, str]]:
    """Every row of ``metrics.csv`` (empty if there is none yet)."""
    path = metrics_path(data_dir)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
