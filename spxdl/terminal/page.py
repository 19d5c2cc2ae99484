"""A streamed answer body: ``Page``, the file-like view of one page that the CSV reader pulls from.

A page is complete only when read to its end; a body cut short raises ``BodyTruncated``.
"""

from __future__ import annotations

import http.client
import io
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import requests
import urllib3.exceptions

from spxdl.errors import BodyTruncated, TerminalError
from spxdl.terminal.status import empty_answer

log = logging.getLogger(__name__)

ERROR_BODY_BYTES = 4096  # read this much of an error body for the message, never more
BODY_IN_ERROR = 200

# Errors urllib3 or the socket raise while a body is being read: the body is cut.
BODY_READ_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@dataclass(frozen=True)
class AnswerHead:
    """The head of one answer as an observer sees it: the request as sent, the status and the headers."""

    url: str  # the URL as sent, query string included
    endpoint: str
    params: Mapping[str, str]
    number: int  # the page's place in its answer
    status: int
    headers: Mapping[str, str]
    request_headers: Mapping[str, str]


class BodySink(Protocol):
    """Where an observer takes an answer's body: every byte as read, then whether it was read whole."""

    def write(self, chunk: bytes) -> None: ...

    def finish(self, complete: bool) -> None: ...


# Told about every answer (status probes, lists, pages, errors); returns where its body goes, or None.
Observer = Callable[[AnswerHead], "BodySink | None"]


class GuardedSink:
    """A sink whose failures are logged and end it, never the download that feeds it."""

    def __init__(self, sink: BodySink | None, endpoint: str) -> None:
        self._sink = sink
        self._endpoint = endpoint

    def write(self, chunk: bytes) -> None:
        self._call("write", chunk)

    def finish(self, complete: bool) -> None:
        self._call("finish", complete)
        self._sink = None

    def _call(self, method: str, value: Any) -> None:
        if self._sink is None:
            return
        try:
            getattr(self._sink, method)(value)
        except Exception as exc:  # an observer (a capture on a full disk, say) must not fail the answer
            log.warning("%s: the answer's observer failed (%s); it sees no more of this answer", self._endpoint, exc)
            self._sink = None


def null_to_none(value: Any) -> str | None:
    """A header field as text; None when absent, empty, JSON null or the string "null"."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text == "" or text.lower() == "null" else text


def _is_framed(headers: Mapping[str, str]) -> bool:
    """Whether a body's end can be checked: a Content-Length, or chunked transfer encoding."""
    return "Content-Length" in headers or "chunked" in headers.get("Transfer-Encoding", "").lower()


class Page(io.RawIOBase):
    """One page of an answer, read from the socket as it arrives; read it to its end.

    ``readinto`` raises BodyTruncated when the connection fails part-way (urllib3 errors are
    translated here) or when a CSV body ends in the middle of a line; the error is also kept in
    ``error``, since a reader in between (pyarrow) may replace it with its own exception. The
    in-flight slot and the connection are given back when the page is read to its end, fails or
    is closed.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        endpoint: str,
        params: Mapping[str, Any],
        number: int = 1,
        require_final_newline: bool = True,
        on_done: Callable[[], None] | None = None,
        started: float | None = None,
        sink: BodySink | None = None,
    ) -> None:
        super().__init__()
        self._sink = GuardedSink(sink, endpoint)
        self._response = response
        self.endpoint = endpoint
        self.params = dict(params)
        self.number = number
        self.status = response.status_code
        self.headers = response.headers
        self.next_url: str | None = null_to_none(response.headers.get("Next-Page"))
        self.error: TerminalError | None = None
        self.bytes_read = 0
        self.complete = False
        self._require_final_newline = require_final_newline
        self._on_done = on_done
        self._started = time.monotonic() if started is None else started
        self._head = bytearray()  # the first bytes, for error messages
        self._ahead = b""  # bytes ``is_empty`` read that no reader has had yet
        self._last_byte = b""
        self._finished = False
        if require_final_newline and not _is_framed(response.headers):
            log.warning(
                "%s: the terminal sent a body with neither Content-Length nor chunked encoding; "
                "a connection cut at a line end cannot be told from the end of the answer", endpoint
            )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes of the body; 0 at its end; BodyTruncated if cut."""
        view = memoryview(buffer).cast("B")
        chunk = self._next(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` next bytes of the body (all the rest when negative), as urllib3 gives
        them (no copy); b"" at its end; BodyTruncated if cut."""
        if size is None or size < 0:
            return self.readall()
        return self._next(size)

    def _next(self, size: int) -> bytes:
        if self.error is not None:
            raise self.error
        ahead = self._take_ahead(size)
        if ahead and len(ahead) == size:
            return ahead
        if self.complete:
            return ahead
        if self.closed:
            raise ValueError("I/O operation on a closed page")
        if not size:
            return b""  # urllib3 answers b"" to a zero-byte read, which is not the end
        try:
            chunk = self._response.raw.read(size - len(ahead), decode_content=True)
        except BODY_READ_ERRORS as exc:
            raise self._truncated(f"the connection failed after {self.bytes_read} bytes of the body: {exc}") from exc
        if not chunk:
            self._reached_end()
            return ahead
        self._note(chunk)
        return ahead + chunk if ahead else chunk

    def _take_ahead(self, size: int) -> bytes:
        """Up to ``size`` of the bytes read ahead (``is_empty``), taken out."""
        ahead, self._ahead = self._ahead[:size], self._ahead[size:]
        return ahead

    def is_empty(self) -> bool:
        """Whether the body holds no byte at all: its Content-Length says so, or else its first byte is read
        ahead (and kept for the next read). BodyTruncated when the body is cut before its first byte.
        """
        if self.bytes_read or self._ahead:
            return False
        if self.complete:
            return True
        length = self.headers.get("Content-Length")
        if length is not None and length.strip().isdigit():
            return int(length) == 0
        ahead = bytearray(1)
        size = self.readinto(ahead)
        self._ahead = bytes(ahead[:size])
        return size == 0

    def close(self) -> None:
        """Give back the slot; an unfinished body closes its connection instead of reusing it."""
        if not self._finished:
            self._response.close()
            self._finish("closed before its end")
        super().close()

    def _note(self, chunk: bytes) -> None:
        if len(self._head) < BODY_IN_ERROR:
            self._head += chunk[: BODY_IN_ERROR - len(self._head)]
        self.bytes_read += len(chunk)
        self._last_byte = chunk[-1:]
        self._sink.write(chunk)

    def _reached_end(self) -> None:
        self._sink.finish(True)  # the body arrived whole by its framing, whatever its last byte
        if self._require_final_newline and self.bytes_read and self._last_byte != b"\n":
            raise self._truncated(f"the body ended in the middle of a line after {self.bytes_read} bytes")
        self.complete = True
        self._response.raw.release_conn()
        self._finish("read whole")

    def _truncated(self, message: str) -> BodyTruncated:
        error = BodyTruncated(
            f"page {self.number}: {message}",
            endpoint=self.endpoint,
            params=self.params,
            status=self.status,
            body=self._head.decode("utf-8", "replace"),
        )
        self.error = error
        self._response.close()
        self._finish("truncated")
        return error

    def _finish(self, outcome: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._sink.finish(self.complete)
        if self._on_done is not None:
            self._on_done()
        log.debug(
            "%s %s -> %s, %d bytes, %.0f ms (page %d, %s)",
            self.endpoint,
            self.params,
            self.status,
            self.bytes_read,
            (time.monotonic() - self._started) * 1000,
            self.number,
            outcome,
        )


def refuse_empty(page: Page) -> None:
    """NoData (and the page closed) when a history page holds no byte: thetadatadx-server's answer of no row."""
    try:
        empty = page.is_empty()
    except BaseException:
        page.close()
        raise
    if empty:
        page.close()
        raise empty_answer(page.endpoint, page.params)


def check_read_to_end(page: Page) -> None:
    """Raise the page's own error, or RuntimeError when it was not read to its end."""
    if page.error is not None:
        raise page.error
    if not page.complete:
        raise RuntimeError(f"page {page.number} of {page.endpoint} was not read to its end before the next one")


def read_error_body(response: requests.Response) -> bytes:
    """The first ``ERROR_BODY_BYTES`` of a non-200 answer, for its error message (b"" if cut)."""
    try:
        return response.raw.read(ERROR_BODY_BYTES, decode_content=True) or b""
    except BODY_READ_ERRORS:
        return b""
