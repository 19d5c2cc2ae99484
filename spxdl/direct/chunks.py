"""An SDK history request as an iterator of Arrow tables, one per gRPC chunk, pulled as the reader asks.

The SDK streams by calling a handler once per chunk (``builder.stream_async(handler)``), on a worker
thread of its own, and fetches the next chunk only when the handler returns. The handler here hands
its chunk to this iterator through a one-place asyncio queue and returns only once the reader has
taken it: the reader works on one chunk while the SDK prepares at most the next, never a whole day.
The iterator drives a private event loop only while it waits for the next chunk; spxdl starts no
thread. Closing the iterator early cancels the stream (the SDK drops it) and makes a handler that
still waits raise, which stops the SDK's stream for good.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

import pyarrow as pa

HANDOVER_POLL_SECONDS = 0.1  # how often a waiting handler looks whether the reader went away
_END = object()


class StreamClosed(Exception):
    """Raised in the SDK's handler once the reader has gone: the SDK stops the stream."""


class Handover:
    """The one place between the SDK's thread (``handler``) and the reader (``next_table``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[pa.Table] = asyncio.Queue(maxsize=1)
        self.closed = False

    def handler(self, chunk: Any) -> None:
        """On the SDK's thread: hand ``chunk`` over, waiting while the queue is full (until the reader left)."""
        if self.closed:
            raise StreamClosed("the reader has gone")
        handed = asyncio.run_coroutine_threadsafe(self._hand_over(chunk.to_arrow()), self.loop)
        while True:
            try:
                handed.result(timeout=HANDOVER_POLL_SECONDS)
                return
            except TimeoutError:
                if self.closed:
                    raise StreamClosed("the reader has gone") from None

    async def _hand_over(self, table: pa.Table) -> None:
        await self.queue.put(table)

    async def next_table(self, done: asyncio.Future) -> Any:
        """The next chunk; _END once the stream finished (its error raised here)."""
        taking = asyncio.ensure_future(self.queue.get())
        await asyncio.wait({taking, done}, return_when=asyncio.FIRST_COMPLETED)
        if not taking.done():
            taking.cancel()
            if self.queue.empty():
                done.result()
                return _END
            taking = None  # the last chunk came in just as the stream ended
        return taking.result() if taking is not None else self.queue.get_nowait()


def stream_tables(builder: Any) -> Iterator[pa.Table]:
    """Each chunk of ``builder``'s answer as an Arrow table, in the SDK's order; the SDK's error at the end."""
    loop = asyncio.new_event_loop()
    handover = Handover(loop)
    done: asyncio.Future[Any] | None = None
    try:
        done = loop.run_until_complete(_start(builder, handover))
        while True:
            table = loop.run_until_complete(handover.next_table(done))
            if table is _END:
                return
            yield table
    finally:
        handover.closed = True
        if done is not None and not done.done():
            done.cancel()
            loop.run_until_complete(asyncio.sleep(0))  # let the cancellation reach the SDK
        loop.close()


async def _start(builder: Any, handover: Handover) -> asyncio.Future:
    return asyncio.ensure_future(builder.stream_async(handover.handler))
