"""Reading one page of a CSV answer: its header line, checked against the pinned columns, then the rest.

Every page of an answer carries its own header. A header that holds every pinned column is good,
whatever extra columns it adds (the vendor may add one: the extra is left out and reported). One
that lacks a pinned column, or a page that is not CSV at all (an HTML page, JSON, an empty body),
is a SchemaMismatch naming the first line received and the header expected: it would repeat for
every request, so the engine stops the run at the first one.
"""

from __future__ import annotations

import csv
import sys
from typing import BinaryIO

import pyarrow as pa

from spxdl.errors import DataError, SchemaMismatch, SpxdlError

MAX_HEADER_BYTES = 1 << 16
SHOWN_CHARS = 120


def parse_header(line: bytes) -> list[str]:
    """A CSV header line as column names (quoted or bare, CRLF or LF)."""
    text = line.decode("utf-8-sig", "replace").rstrip("\r\n")
    if not text:
        return []
    return [name.strip() for name in next(csv.reader([text]))]


def check_header(line: bytes, expected: tuple[str, ...], page_number: int) -> tuple[list[str], list[str]]:
    """The header's column names and the extra ones it adds; SchemaMismatch when a pinned one is missing."""
    header = parse_header(line)
    missing = [name for name in expected if name not in header]
    if missing:
        shown = line.decode("utf-8", "replace").rstrip("\r\n")
        shown = shown[:SHOWN_CHARS] + ("..." if len(shown) > SHOWN_CHARS else "")
        what = "an empty body" if not shown.strip() else f"first line {shown!r}"
        raise SchemaMismatch(
            f"page {page_number}: the terminal's answer is not the CSV spxdl expects ({what}; "
            f"missing {', '.join(missing)}); expected header {','.join(expected)}",
            columns=missing,
        )
    return header, [name for name in header if name not in expected]


class PageBody:
    """One page read in whole blocks: its header line first, then the rest for pyarrow.

    Reads go straight to the page's ``read``; the page's ``closed`` flag is never consulted (an
    HTTP body reports itself closed once read to its end, while its last bytes may still be
    held here). At most one block plus the header is held.
    """

    closed = False

    def __init__(self, page: BinaryIO, block_size: int) -> None:
        self._page = page
        self._block_size = block_size
        self._pending = b""
        self._eof = False

    def _read_page(self, size: int) -> bytes:
        if self._eof:
            return b""
        chunk = self._page.read(size) or b""
        self._eof = not chunk
        return chunk

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (everything left when negative); fewer only at the end of the page."""
        want = sys.maxsize if size is None or size < 0 else size
        parts = [self._pending[:want]] if self._pending else []
        self._pending = self._pending[want:]
        have = len(parts[0]) if parts else 0
        while have < want and not self._eof:
            chunk = self._read_page(min(want - have, self._block_size))
            parts.append(chunk)
            have += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)  # one part: no copy

    def header_line(self) -> bytes:
        """The first line of the page (at most MAX_HEADER_BYTES); what follows stays for ``read``."""
        while b"\n" not in self._pending and len(self._pending) < MAX_HEADER_BYTES and not self._eof:
            self._pending += self._read_page(self._block_size)
        line, newline, self._pending = self._pending.partition(b"\n")
        return line + newline

    def at_end(self) -> bool:
        """Whether nothing follows what was read so far."""
        if not self._pending:
            self._pending = self._read_page(self._block_size)
        return not self._pending

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def page_failure(page: BinaryIO, page_number: int, exc: Exception) -> BaseException:
    """The error to raise when reading a page failed: the page's own error first (pyarrow wraps it)."""
    original = getattr(page, "error", None)
    if original is not None:
        return original
    if isinstance(exc, SpxdlError):
        return exc
    if isinstance(exc, pa.ArrowInvalid):
        return DataError(f"page {page_number}: the CSV body cannot be read with the pinned types: {exc}")
    return exc
