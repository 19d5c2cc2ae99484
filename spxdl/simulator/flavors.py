"""How the simulated server speaks: as the ThetaData Terminal (the default) or as thetadatadx-server.

thetadatadx-server (Apache-2.0, a Rust binary of the ThetaDataDx project) serves the terminal's
``/v3`` routes from a direct connection to the vendor. Its paths, parameters, CSV headers and line
ends are the terminal's; what differs is read from its source (release 0.2.0, ``tools/server``):

- errors are plain text naming the upstream gRPC status: no data is a 500 ``gRPC status NotFound:
  ...`` (a 200 with an empty body when the contract exists and the window holds no row), a tier
  problem a 500 ``gRPC status PermissionDenied: ...``, a bad parameter a 400 naming it, an unknown
  route a 404 with an empty body; exhausted upstream retries a 500 (``gRPC status Unavailable``,
  ``Request deadline exceeded``);
- a busy upstream is a 503 with ``Retry-After`` in whole seconds (at least 1), never a 429: requests
  above the upstream's concurrency queue instead of being refused;
- every answer is built whole before its first byte and sent with Content-Length (no chunks, no
  pages), so it starts after a delay that grows with its rows;
- numbers print shortest (``5150.0``, ``12.3``), ``text/csv; charset=utf-8``, v3 only.

The market, the rows and the parameter checks are the simulator's own; only the speech differs.
Where the source does not settle something, the choice is a guess listed in docs/simulator.md.
"""

from __future__ import annotations

import math
import re
from typing import Any

from spxdl.errors import ConfigError
from spxdl.simulator.columns import (
    BY_V2_PATH,
    BY_V3_PATH,
    CALENDAR_DAY_PATH,
    CALENDAR_YEAR_PATH,
    INDEX_V2_PATH,
    INDEX_V3_PATH,
)
from spxdl.simulator.faults import ERROR_TEXTS
from spxdl.simulator.params import NO_ROWS, Reply

TERMINAL, THETADATADX = "terminal", "thetadatadx"
FLAVORS = (TERMINAL, THETADATADX)
TIERS = ("free", "value", "standard", "pro")
TEXT_UTF8, CSV_UTF8 = "text/plain; charset=utf-8", "text/csv; charset=utf-8"
# What thetadatadx-server answers when its upstream retries run out (the fault mix's 500/474/571).
UPSTREAM_FAILURES = {500: "gRPC status Unavailable: upstream connection lost after retries",
                     474: "Request deadline exceeded after 300000 ms",
                     571: "gRPC status Internal: upstream failed"}
# Guess: the server assembles about a million rows a second before it sends the first byte.
ASSEMBLY_ROWS_PER_SECOND = 1_000_000
# A number field with zeros after its last significant decimal: 12.30 -> 12.3, 5150.000 -> 5150.0.
_TRAILING = re.compile(rb"(?<=[,\n])(-?\d+\.\d*[1-9])0+(?=[,\r\n])")
_ALL_ZERO = re.compile(rb"(?<=[,\n])(-?\d+\.)0{2,}(?=[,\r\n])")


# The least subscription each dataset needs, written from the vendor's v3 contract (its
# ``min_subscription`` per path, tests/data/v3-openapi-facts.json; a test compares them). v2 paths
# take their dataset's (a guess). The lists need none.
MIN_TIER: dict[str, str] = {
    "eod": "free", "quote": "value", "ohlc": "value", "open_interest": "value", "index_price": "value",
    "calendar": "value", "greeks": "standard", "greeks_eod": "standard", "greeks_second_order": "pro",
}


def _dataset_paths() -> dict[str, str]:
    """Every path of a dataset, the index or the calendar -> the name ``MIN_TIER`` knows it by."""
    named = {path: ds.name for table in (BY_V2_PATH, BY_V3_PATH) for path, ds in table.items()}
    named.update({INDEX_V2_PATH: "index_price", INDEX_V3_PATH: "index_price", CALENDAR_YEAR_PATH: "calendar",
                  CALENDAR_DAY_PATH: "calendar"})
    return named


def denied_paths(tier: str) -> frozenset[str]:
    """The paths a subscription of ``tier`` is refused."""
    rank = TIERS.index(tier)
    return frozenset(path for path, name in _dataset_paths().items() if TIERS.index(MIN_TIER[name]) > rank)


def check_choices(flavor: str, tier: str) -> None:
    """ConfigError naming the choices for an unknown flavour or tier."""
    if flavor not in FLAVORS:
        raise ConfigError(f"unknown simulator flavor {flavor!r}: use {' or '.join(FLAVORS)}", key="flavor")
    if tier not in TIERS:
        raise ConfigError(f"unknown subscription tier {tier!r}: use {', '.join(TIERS)}", key="tier")


def trim_numbers(body: bytes) -> bytes:
    """CSV numbers printed shortest, as thetadatadx-server's serializer prints them (``12.30`` -> ``12.3``)."""
    return _ALL_ZERO.sub(rb"\g<1>0", _TRAILING.sub(rb"\1", body))


class TerminalFlavor:
    """The ThetaData Terminal's speech: status codes of its own, 429 above the concurrency it serves."""

    name = TERMINAL
    queues = False  # above max_concurrent: 429 at once

    def csv_body(self, body: bytes) -> bytes:
        return body

    def throttled(self, text: str, retry_after: float) -> Reply:
        return Reply(429, text.encode(), headers={"Retry-After": f"{retry_after:g}"})

    def server_error(self, status: int) -> Reply:
        return Reply(status, ERROR_TEXTS[status].encode())

    def permission_denied(self, path: str) -> Reply:
        """v2 answers 471; v3 terminals answer 403 for an endpoint above the tier (third parties saw it)."""
        if path.startswith("/v2/"):
            return Reply(471, b"PERMISSION: your subscription does not include this data")
        return Reply(403, b"Forbidden: your subscription does not include this endpoint")

    def shape(self, path: str, reply: Reply) -> Reply:
        return reply

    def assembly_seconds(self, reply: Reply) -> float:
        return 0.0


class ThetadatadxFlavor(TerminalFlavor):
    """thetadatadx-server's speech (see the module docstring)."""

    name = THETADATADX
    queues = True

    def csv_body(self, body: bytes) -> bytes:
        return trim_numbers(body)

    def throttled(self, text: str, retry_after: float) -> Reply:
        seconds = max(1, math.ceil(retry_after))
        body = f"upstream is at capacity; retry shortly: gRPC status ResourceExhausted: {text}"
        return Reply(503, body.encode(), TEXT_UTF8, headers={"Retry-After": str(seconds)})

    def server_error(self, status: int) -> Reply:
        return Reply(500, UPSTREAM_FAILURES[status].encode(), TEXT_UTF8)

    def permission_denied(self, path: str) -> Reply:
        text = "gRPC status PermissionDenied: Your subscription does not include this data."
        return Reply(500, text.encode(), TEXT_UTF8)

    def shape(self, path: str, reply: Reply) -> Reply:
        """The terminal's answer as the server sends it: its status, text and headers."""
        if reply.status == 200:
            return self._success(path, reply)
        text = reply.body.decode("utf-8", "replace")
        if reply.status == 404:
            return Reply(404, b"", "")
        if reply.status == 472 and reply.reason == NO_ROWS:
            return Reply(200, b"", CSV_UTF8, self._disposition(path))
        if reply.status == 472:
            return Reply(500, b"gRPC status NotFound: No data for the specified timeframe & contract.", TEXT_UTF8)
        if reply.status == 473:
            return Reply(400, _server_parameter_text(text).encode(), TEXT_UTF8)
        if reply.status == 410:
            return Reply(410, reply.body, TEXT_UTF8)
        if reply.status == 570:
            return Reply(500, f"gRPC status InvalidArgument: {text}".encode(), TEXT_UTF8)
        if reply.status in (429, 500, 503):
            return reply  # already the server's own (faults)
        return Reply(500, f"gRPC status Internal: {text}".encode(), TEXT_UTF8)

    def _success(self, path: str, reply: Reply) -> Reply:
        reply.chunked = False  # built whole, sent with Content-Length
        reply.headers.pop("Next-Page", None)
        if reply.content_type.startswith("text/csv"):
            reply.content_type = CSV_UTF8
            reply.headers.update(self._disposition(path) if reply.key else {})
        elif reply.content_type.startswith("text/plain"):
            reply.content_type = TEXT_UTF8
        return reply

    @staticmethod
    def _disposition(path: str) -> dict[str, str]:
        name = path.removeprefix("/v3/").replace("/", "_")
        return {"Content-Disposition": f'attachment; filename="{name}.csv"'}

    def assembly_seconds(self, reply: Reply) -> float:
        return reply.rows / ASSEMBLY_ROWS_PER_SECOND


def _server_parameter_text(text: str) -> str:
    """The simulator's 473 text as the server words a bad parameter, the first one only
    (``missing required parameter: 'x'``)."""
    text = text.removeprefix("Invalid parameters: ").split("; ")[0]
    missing = re.fullmatch(r"missing required parameter '(\w+)'", text)
    return f"missing required parameter: '{missing.group(1)}'" if missing else text


FLAVOR_CLASSES: dict[str, Any] = {TERMINAL: TerminalFlavor, THETADATADX: ThetadatadxFlavor}


def get_flavor(name: str) -> TerminalFlavor:
    """The flavour called ``name``; ConfigError naming the known ones otherwise."""
    check_choices(name, "pro")
    return FLAVOR_CLASSES[name]()
