"""Faults the simulator injects on demand, and the random draws that decide them."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from spxdl.errors import ConfigError

ERROR_STATUSES = (500, 474, 571)
ERROR_TEXTS = {500: "Internal Server Error", 474: "DISCONNECTED: the terminal lost its connection",
               571: "SERVER_STARTING: the server is restarting"}


@dataclass(frozen=True)
class Faults:
    """Probabilities (0..1) and sizes of the faults; the default injects none."""

    throttle_rate: float = 0.0          # 429 with Retry-After
    retry_after: float = 0.05           # seconds, sent in Retry-After
    error_rate: float = 0.0             # 500 / 474 / 571, equally likely
    cut_rate: float = 0.0               # connection closed part-way through a 200 body
    latency: float = 0.0                # seconds added to every request
    max_concurrent: int | None = None   # requests above this many in flight get 429
    page_expire_rate: float = 0.0       # 477 on a /v2/page fetch

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "cut_rate", "page_expire_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"fault {name} must be between 0 and 1", key=name)
        if self.latency < 0 or self.retry_after < 0:
            raise ConfigError("fault latency and retry_after must not be negative", key="latency")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError("fault max_concurrent must be 1 or more", key="max_concurrent")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Faults":
        """Faults from a JSON object; ConfigError for unknown names or bad values."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"bad fault values: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultDice:
    """Thread-safe draws against the current faults (seeded: runs repeat their pattern)."""

    def __init__(self, faults: Faults, seed: int = 0) -> None:
        self.faults = faults
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _hit(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def throttle(self) -> bool:
        return self._hit(self.faults.throttle_rate)

    def error_status(self) -> int | None:
        if not self._hit(self.faults.error_rate):
            return None
        with self._lock:
            return self._rng.choice(ERROR_STATUSES)

    def cut(self) -> bool:
        return self._hit(self.faults.cut_rate)

    def expire_page(self) -> bool:
        return self._hit(self.faults.page_expire_rate)
