"""What the simulated terminal keeps between requests: rendered bodies and v2 pages waiting to be fetched."""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


class BodyCache:
    """Rendered bodies by request, least recently used dropped beyond a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[list[bytes], list[int]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_or_render(self, key: tuple, render: Callable[[], tuple[list[bytes], list[int]]]):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = render()
        size = sum(len(b) for b in value[0])
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._bytes += size
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, (old, _) = self._items.popitem(last=False)
                self._bytes -= sum(len(b) for b in old)
        return value


@dataclass
class StoredPage:
    body: bytes
    content_type: str
    next_url: str
    rows: int
    key: str
    created: float


class PageStore:
    """v2 pages waiting to be fetched: global increasing ids, bounded count, expiring by age."""

    def __init__(self, capacity: int = 64, max_age: float = 600.0) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self._pages: OrderedDict[int, StoredPage] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def allocate(self, n: int) -> list[int]:
        with self._lock:
            return [next(self._ids) for _ in range(n)]

    def put(self, page_id: int, page: StoredPage) -> None:
        with self._lock:
            self._pages[page_id] = page
            while len(self._pages) > self.capacity:
                self._pages.popitem(last=False)

    def get(self, page_id: int) -> StoredPage | None:
        with self._lock:
            page = self._pages.get(page_id)
            if page is not None and time.monotonic() - page.created > self.max_age:
                del self._pages[page_id]
                return None
            return page
