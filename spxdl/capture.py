"""Captures: the terminal's answers byte for byte, with status, headers and request, in tests/data's shape.

A ``Capture`` is a terminal observer (``spxdl.terminal.Observer``): the client tells it about every
answer it gets and hands it the body's bytes as they are read. Each complete body goes into the
capture directory under the name tests/data uses (``<api>-<endpoint>-<symbol>.<ext>``) next to a
hidden record of its request and response; ``write_manifest`` gathers the records into
``manifest.json``, shaped like ``tests/data/manifest.json``, so that a capture copied into
``tests/data/captures/`` is replayed by the test suite without a code change.

Nothing that identifies the user is kept: the host of every URL (the request's, a ``Next-Page``)
becomes ``127.0.0.1``, cookies and authorisation headers are left out, and no path, user or
machine name is written. ``first_only`` keeps only the first complete answer of each endpoint
(``spxdl run --capture``: several worker processes capture into one directory, and the first to
claim a name wins).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from spxdl import __version__, storage
from spxdl.errors import BodyTruncated
from spxdl.terminal import AnswerHead, BodySink
from spxdl.urls import with_host

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RECORD_SUFFIX = ".record.json"
HIDDEN_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "proxy-authorization"})
EXTENSIONS = {"text/csv": ".csv", "application/json": ".json"}
FIDELITY_LEVELS = {
    "verbatim": "exact bytes of the response body as spxdl's client read them (after any Content-Encoding "
                "was undone), cross-checked against the answer's framing",
}
DESCRIPTION = ("Answers of a ThetaData Terminal captured by spxdl {version} ({command}). Each entry describes one "
               "body file in this folder; the host of every URL is replaced by 127.0.0.1.")


def endpoint_slug(endpoint: str) -> tuple[str, str]:
    """(api, slug) of an endpoint path: ``/v3/option/history/greeks/first_order`` -> (v3, option-history-greeks-first-order)."""
    parts = [part for part in endpoint.strip("/").split("/") if part]
    api = parts[0] if parts and parts[0] in ("v2", "v3") else "v3"
    rest = parts[1:] if parts and parts[0] == api else parts
    return api, re.sub(r"[^a-z0-9]+", "-", "-".join(rest).lower()).strip("-") or "root"


def base_name(head: AnswerHead) -> str:
    """``<api>-<endpoint>-<symbol>`` with the extension of the answer's content (``.txt`` for errors)."""
    api, slug = endpoint_slug(head.endpoint)
    params = head.params
    symbol = params.get("symbol") or params.get("root") or params.get("year") or params.get("date") or "none"
    content_type = _header(head.headers, "content-type").split(";")[0].strip().lower()
    extension = EXTENSIONS.get(content_type, ".txt") if head.status == 200 else ".txt"
    page = f"-page{head.number}" if head.number > 1 else ""
    return f"{api}-{slug}-{re.sub(r'[^A-Za-z0-9]+', '', symbol) or 'none'}{page}{extension}"


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


def clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers without anything that identifies the user: no cookies or credentials, hosts as 127.0.0.1."""
    return {key: with_host(value) for key, value in headers.items() if key.lower() not in HIDDEN_HEADERS}


class Capture:
    """An observer writing each complete answer, byte for byte, into ``directory``."""

    def __init__(self, directory: Path, *, first_only: bool = False, command: str = "capture") -> None:
        self.directory = Path(directory)
        self.first_only = first_only
        self.command = command

    def __call__(self, head: AnswerHead) -> BodySink | None:
        name = self._claim(base_name(head))
        if name is None:
            return None
        return CaptureSink(self, head, name)

    def _claim(self, name: str) -> str | None:
        """A file name of this capture that nobody else writes; None when ``first_only`` has one already."""
        stem, extension = name.rsplit(".", 1)
        for copy in range(1, 1000):
            candidate = name if copy == 1 else f"{stem}-{copy}.{extension}"
            if storage.create_bytes_once(self.directory / candidate, b""):
                return candidate
            if self.first_only:
                return None
        return None

    def record(self, head: AnswerHead, name: str, body: BodyFacts) -> dict[str, Any]:
        """The manifest entry of one captured answer (the shape of tests/data/manifest.json's)."""
        api, _slug = endpoint_slug(head.endpoint)
        simulated = bool(_header(head.headers, "x-spxdl-simulator"))
        content_type = _header(head.headers, "content-type")
        encoded = _header(head.headers, "content-encoding")
        url = with_host(head.url)
        return {
            "file": name,
            "api": api,
            "endpoint": head.endpoint,
            "symbol": head.params.get("symbol") or head.params.get("root"),
            "captured_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "source": {"tool": f"spxdl {__version__}", "command": self.command,
                       "terminal": "spxdl simulator" if simulated else "ThetaData Terminal", "page": head.number,
                       "license": "market data: the vendor's terms of use apply"},
            "request": {"method": "GET", "url": url, "query_params": dict(parse_qsl(urlsplit(url).query)),
                        "request_headers": clean_headers(head.request_headers), "recorded": True},
            "response": {"status": head.status, "headers": clean_headers(head.headers),
                         "headers_note": "header names as the client received them; hosts replaced by 127.0.0.1",
                         "content_type": content_type.split(";")[0].strip() or None},
            "body": {"fidelity": "verbatim",
                     "fidelity_notes": "the body as spxdl's client read it" + (
                         f" (sent with Content-Encoding {encoded}, stored decoded)" if encoded else ""),
                     "byte_length": body.length, "sha256": body.sha256, "contains_crlf": body.crlf,
                     "contains_tab": body.tab, "ends_with_newline": body.final_newline},
            "format_facts": body.facts(head.headers),
        }


class BodyFacts:
    """What is known of a body as it streams past: length, sha256, line ends, tabs, last byte."""

    def __init__(self) -> None:
        self.length = 0
        self._digest = hashlib.sha256()
        self.crlf = self.lf_only = self.tab = False
        self._last = b""

    def add(self, chunk: bytes) -> None:
        joined = self._last + chunk
        self.crlf = self.crlf or b"\r\n" in joined
        self.lf_only = self.lf_only or re.search(rb"(?<!\r)\n", joined) is not None
        self.tab = self.tab or b"\t" in chunk
        self._digest.update(chunk)
        self.length += len(chunk)
        self._last = chunk[-1:]

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    @property
    def final_newline(self) -> bool:
        return self._last == b"\n"

    def facts(self, headers: Mapping[str, str]) -> list[str]:
        """One line per format fact the body shows (line ends, final line end, framing)."""
        ends = "CRLF and bare LF" if self.crlf and self.lf_only else "CRLF" if self.crlf else "LF" if self.lf_only else None
        framing = ("Content-Length " + _header(headers, "content-length") if _header(headers, "content-length")
                   else "chunked" if "chunked" in _header(headers, "transfer-encoding").lower() else "neither "
                   "Content-Length nor chunked")
        facts = [f"lines end with {ends}" if ends else "no line ending at all",
                 "ends with a line ending" if self.final_newline else "no line ending after the last line",
                 f"framing: {framing}"]
        return facts


class CaptureSink:
    """One answer's body on its way into the capture: a temp file, renamed into place when whole."""

    def __init__(self, capture: Capture, head: AnswerHead, name: str) -> None:
        self.capture, self.head, self.name = capture, head, name
        self.path = capture.directory / name
        self.body = BodyFacts()
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(storage.atomic_output(self.path))

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self.body.add(chunk)

    def finish(self, complete: bool) -> None:
        if not complete:  # the temp file goes, as on any error inside atomic_output; nothing is raised
            cut = BodyTruncated(f"{self.head.endpoint}: the body did not arrive whole; not captured")
            self._stack.__exit__(BodyTruncated, cut, None)
            storage.discard(self.path)  # give the name back: a later answer may take it
            return
        self._stack.close()
        record = self.capture.record(self.head, self.name, self.body)
        storage.write_json_atomic(self.capture.directory / f".{self.name}{RECORD_SUFFIX}", record)
        log.debug("captured %s (%d bytes)", self.path, self.body.length)


def records(directory: Path) -> list[dict[str, Any]]:
    """Every captured answer's record in ``directory``, in the order they were captured."""
    found = []
    for path in Path(directory).glob(f".*{RECORD_SUFFIX}"):
        with contextlib.suppress(ValueError, OSError):
            found.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(found, key=lambda record: (record["captured_at"], record["file"]))


def write_manifest(directory: Path, command: str = "capture") -> Path:
    """Gather the records of ``directory`` into its ``manifest.json`` (tests/data's shape); its path."""
    path = Path(directory) / MANIFEST
    storage.write_json_atomic(path, {
        "description": DESCRIPTION.format(version=__version__, command=command),
        "fidelity_levels": FIDELITY_LEVELS,
        "fixtures": records(directory),
        "excluded": [],
        "corroborating_evidence": [],
    })
    return path
