"""Replaying a capture: each recorded answer served again over loopback, read by spxdl's client and converter.

A capture directory holds ``manifest.json`` (the shape of tests/data's) and the body files it
lists. ``capture_dirs`` finds every such directory under tests/data (tests/data itself, and any
capture copied into it). ``Replayer`` serves one recorded answer (and the pages it points to) with
its recorded status, headers and framing; ``replay`` makes the call spxdl makes for that endpoint,
read from the recorded request, and returns what came of it. The tests judge the outcome by rule,
never by file name, so a new capture needs no code.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from spxdl import convert
from spxdl.datasets import DATASETS, INTERVALS, Dataset
from spxdl.terminal import CALENDAR_PATHS, LIST_PATHS, STATUS_PATHS, TerminalClient, parse_wire_date

DATA = Path(__file__).parent / "data"
FRAMING = ("content-length", "transfer-encoding", "content-encoding", "connection", "date", "server")


def capture_dirs(root: Path = DATA) -> list[Path]:
    """Every directory under ``root`` (itself included) holding a manifest.json."""
    return sorted({path.parent for path in root.rglob("manifest.json")})


def entries(directory: Path) -> list[dict[str, Any]]:
    """The manifest's fixtures whose body file is in the directory (the manifest may list bodies kept elsewhere)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    return [entry for entry in manifest["fixtures"] if (directory / entry["file"]).is_file()]


def header(headers: dict[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


@dataclass
class Recorded:
    """One recorded answer: where it was asked, what came back."""

    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, directory: Path, entry: dict[str, Any]) -> "Recorded":
        url = (entry.get("request") or {}).get("url") or f"http://127.0.0.1{entry['endpoint']}"
        parts = urlsplit(url)
        response = entry.get("response") or {}
        headers = dict(response.get("headers") or {})
        if not header(headers, "content-type") and response.get("content_type"):
            headers["Content-Type"] = response["content_type"]
        return cls(parts.path, dict(parse_qsl(parts.query)), int(response.get("status") or 200), headers,
                   (directory / entry["file"]).read_bytes())


class Replayer:
    """A loopback server answering the recorded answers of one capture; the status word for the rest."""

    def __init__(self, answers: list[Recorded], first: Recorded) -> None:
        self.first = first
        self.by_path = {answer.path: answer for answer in answers}
        self.asked: list[tuple[str, dict[str, str]]] = []
        replayer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                replayer.asked.append((path, dict(parse_qsl(query))))
                answer = replayer.answer_for(path)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    if name.lower() not in FRAMING:
                        self.send_header(name, replayer.local(value))
                chunked = "chunked" in header(answer.headers, "transfer-encoding").lower()
                self.send_header("Transfer-Encoding" if chunked else "Content-Length",
                                 "chunked" if chunked else str(len(answer.body)))
                self.end_headers()
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(answer.body), answer.body))
                else:
                    self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer_for(self, path: str) -> Recorded:
        if path == self.first.path:
            return self.first
        if path in self.by_path:
            return self.by_path[path]
        if path in STATUS_PATHS.values():
            return Recorded(path, {}, 200, {"Content-Type": "text/plain"}, b"CONNECTED")
        return Recorded(path, {}, 404, {"Content-Type": "text/plain"}, f"No implementation for {path}".encode())

    def local(self, value: str) -> str:
        """A recorded URL (a Next-Page) pointed at this server."""
        if value.startswith("http://") or value.startswith("https://"):
            parts = urlsplit(value)
            return self.url + parts.path + (f"?{parts.query}" if parts.query else "")
        return value

    def __enter__(self) -> "Replayer":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Outcome:
    """What spxdl made of a replayed answer: a value, rows written, or the error it raised."""

    kind: str  # status, list, calendar, history, or "other" (an endpoint spxdl does not call)
    value: Any = None
    rows: int | None = None
    error: Exception | None = None
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def dataset_at(api: str, path: str) -> Dataset | None:
    return next((dataset for dataset in DATASETS.values() if dataset.path(api) == path), None)


def interval_name(api: str, query: dict[str, str]) -> str:
    if api == "v3":
        return query.get("interval", "1m")
    by_ms = {str(ms): name for name, ms in INTERVALS.items()}
    return by_ms.get(query.get("ivl", "60000"), "1m")


def clock_ms(text: str | None, default: int) -> int:
    if not text:
        return default
    if text.isdigit():
        return int(text)
    hours, minutes, seconds = text.split(":")
    return (int(hours) * 3600 + int(minutes) * 60) * 1000 + round(float(seconds) * 1000)


def history_call(client: TerminalClient, dataset: Dataset, api: str, query: dict[str, str]) -> int:
    """The history request spxdl makes for ``query``, converted into Parquet and read back; its rows."""
    root = query.get("symbol") or query.get("root") or "SPXW"
    expiration_text = query.get("expiration") or query.get("exp")
    expiration = None if dataset.is_index or expiration_text in (None, "*", "0") else parse_wire_date(expiration_text)
    day = parse_wire_date(query.get("date") or query.get("start_date"))
    interval = interval_name(api, query)
    start_ms, end_ms = clock_ms(query.get("start_time"), 34_200_000), clock_ms(query.get("end_time"), 57_600_000)
    strike = float(query["strike"]) if api == "v3" and query.get("strike") not in (None, "*") else None
    right = {"call": "C", "put": "P", "c": "C", "p": "P"}.get((query.get("right") or "").lower())
    pages = client.history(dataset, root, expiration, day, interval=interval, start_ms=start_ms, end_ms=end_ms,
                           strike=strike, right=right if strike is not None else None)
    spec = convert.ConvertSpec(dataset, api, root, expiration, day, start_ms, end_ms,
                               INTERVALS.get(interval) if dataset.uses_interval else None)
    sink = io.BytesIO()
    written = convert.write_parquet(pages, sink, spec)
    table = pq.read_table(pa.BufferReader(sink.getvalue()), use_threads=False)
    assert table.num_rows == written.rows
    return written.rows


def the_call(client: TerminalClient, api: str, recorded: Recorded) -> tuple[str, Callable[[], Any]]:
    """(kind, the call spxdl makes for the recorded endpoint)."""
    path, query = recorded.path, recorded.query
    symbol = query.get("symbol") or query.get("root") or ""
    expiration_text = query.get("expiration") or query.get("exp")
    expiration = parse_wire_date(expiration_text) if expiration_text and expiration_text not in ("*", "0") else None
    if path == STATUS_PATHS.get(api):
        return "status", client.status
    lists = LIST_PATHS[api]
    if path == lists["expirations"]:
        return "list", lambda: client.expirations(symbol)
    if path == lists["strikes"]:
        return "list", lambda: client.strikes(symbol, expiration or date(2000, 1, 3))
    if path == lists["dates"]:
        return "list", lambda: client.dates(symbol, expiration or date(2000, 1, 3))
    if path == CALENDAR_PATHS["year"]:
        return "calendar", lambda: client.holidays(int(query.get("year", "2024")))
    if path == CALENDAR_PATHS["day"]:
        return "calendar", lambda: [client.schedule(parse_wire_date(query["date"]))]
    dataset = dataset_at(api, path)
    if dataset is not None:
        return "history", lambda: history_call(client, dataset, api, query)
    return "other", lambda: None


def replay(directory: Path, entry: dict[str, Any]) -> Outcome:
    """Serve ``entry``'s answer (and the capture's other answers, for its pages) and make spxdl's call."""
    api = entry.get("api") or "v3"
    recorded = Recorded.of(directory, entry)
    others = [Recorded.of(directory, other) for other in entries(directory) if other["file"] != entry["file"]]
    with Replayer(others, recorded) as replayer, TerminalClient(replayer.url, api=api, retries=0,
                                                                 sleep=lambda seconds: None) as client:
        kind, call = the_call(client, api, recorded)
        outcome = Outcome(kind)
        if kind != "other":
            try:
                value = call()
                outcome.value, outcome.rows = value, value if kind == "history" else None
            except Exception as exc:  # judged by the test
                outcome.error = exc
        outcome.asked = list(replayer.asked)
    return outcome


def body_lines(body: bytes) -> list[str]:
    """The data lines of a CSV body (its header left out)."""
    return [line for line in body.decode("utf-8", "replace").splitlines()[1:] if line.strip()]


def intact(directory: Path, entry: dict[str, Any]) -> bool:
    """Whether the body file is the one the manifest describes (length and sha256)."""
    data = (directory / entry["file"]).read_bytes()
    body = entry.get("body") or {}
    return len(data) == body.get("byte_length") and hashlib.sha256(data).hexdigest() == body.get("sha256")
