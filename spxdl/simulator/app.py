"""``SimulatorApp``: what the simulator answers each request with, and how the answer goes out.

Behind the thin HTTP handler: the faults drawn per request (throttles, errors, expired pages,
latency, cut bodies), thetadatadx-server's queue above ``max_concurrent``, the control endpoints
under ``/sim/``, the answer written with Content-Length or chunked, and each answer counted
(``Outcome``) before its last byte leaves.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from spxdl.errors import ConfigError
from spxdl.simulator.counters import Counters
from spxdl.simulator.faults import FaultDice, Faults
from spxdl.simulator.flavors import TerminalFlavor, denied_paths
from spxdl.simulator.quirks import Quirks
from spxdl.simulator.routes import CSV_TYPE, JSON_TYPE, Reply, Terminal

logger = logging.getLogger(__name__)

SIMULATOR_HEADER = "X-Spxdl-Simulator"
WRITE_SLICE = 1 << 20        # bytes per chunk of a chunked body


class SimulatorApp:
    """Faults, counters and the terminal behind the HTTP handler."""

    def __init__(self, terminal: Terminal, faults: Faults, identity: str, seed: int, quirks: Quirks = Quirks(),
                 tier: str = "pro") -> None:
        self.terminal = terminal
        self.flavor: TerminalFlavor = terminal.flavor
        self.denied = denied_paths(tier)
        self.quirks = quirks
        self.dice = FaultDice(faults, seed)
        self.counters = Counters()
        self.identity = identity
        self._upstream = threading.Condition()  # requests above max_concurrent queue here (thetadatadx)
        self._upstream_busy = 0

    @property
    def faults(self) -> Faults:
        return self.dice.faults

    def set_faults(self, faults: Faults) -> None:
        self.dice.faults = faults

    def serve_get(self, h: BaseHTTPRequestHandler) -> None:
        path, _, query = h.path.partition("?")
        if path.startswith("/sim/"):
            self._send(h, self._control_get(path))
            return
        in_flight = self.counters.enter()
        left = []
        queued = self.flavor.queues and self.faults.max_concurrent is not None
        if queued:
            self._take_upstream_slot()

        def leave() -> None:
            if not left:
                left.append(True)
                self.counters.leave()
                if queued:
                    self._give_upstream_slot()

        try:
            reply = self._answer(path, query, in_flight)
            cut = reply.status == 200 and len(reply.body) > 1 and self.dice.cut()
            count_path = "/v2/page" if path.startswith("/v2/page/") else path
            outcome = Outcome(self.counters, count_path, reply)

            def finishing() -> None:
                # Before the last byte: once a client has the whole body it may send its next
                # request, which must not meet this one still counted as in flight.
                outcome.complete()
                leave()

            try:
                if cut:
                    outcome.cut(self._send(h, reply, cut=True))
                else:
                    self._send(h, reply, before_last_byte=finishing)
            except OSError as exc:  # the client went away part-way through the answer
                logger.debug("client left during %s: %s", path, exc)
                h.close_connection = True
                outcome.lost()
        finally:
            leave()

    def _take_upstream_slot(self) -> None:
        """Wait until fewer than max_concurrent requests are served (thetadatadx-server queues them)."""
        with self._upstream:
            while self.faults.max_concurrent is not None and self._upstream_busy >= self.faults.max_concurrent:
                self._upstream.wait(0.05)
            self._upstream_busy += 1

    def _give_upstream_slot(self) -> None:
        with self._upstream:
            self._upstream_busy -= 1
            self._upstream.notify()

    def _answer(self, path: str, query: str, in_flight: int) -> Reply:
        faults, flavor = self.faults, self.flavor
        if not flavor.queues and faults.max_concurrent is not None and in_flight > faults.max_concurrent:
            return self._throttled(f"Too many concurrent requests (limit {faults.max_concurrent})")
        if faults.latency:
            time.sleep(faults.latency)
        if self.dice.throttle():
            return self._throttled("Too many requests")
        status = self.dice.error_status()
        if status is not None:
            return flavor.server_error(status)
        if path.startswith("/v2/page/") and self.dice.expire_page():
            return Reply(477, b"No page found: the page expired")
        if path in self.denied:
            return flavor.permission_denied(path)
        try:
            reply = self.terminal.handle(path, query)
        except Exception:  # a simulator bug: answer like the terminal's UNCAUGHT_ERROR, keep serving
            logger.exception("simulator failed on %s?%s", path, query)
            reply = Reply(572, b"UNCAUGHT_ERROR: the simulator failed on this request")
        if reply.status == 200 and reply.content_type == CSV_TYPE and self.quirks.active:
            reply.body = self.quirks.apply(path, reply.body)
        reply = flavor.shape(path, reply)
        delay = flavor.assembly_seconds(reply)
        if delay:
            time.sleep(delay)  # the whole answer is built before its first byte
        return reply

    def _throttled(self, text: str) -> Reply:
        return self.flavor.throttled(text, self.faults.retry_after)

    def serve_post(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        data = h.rfile.read(length) if length else b""
        self._send(h, self._control_post(h.path.partition("?")[0], data))

    def _control_get(self, path: str) -> Reply:
        if path == "/sim/counters":
            return json_reply(self.counters.snapshot())
        if path == "/sim/faults":
            return json_reply(self.faults.as_dict())
        if path == "/sim/quirks":
            return json_reply(self.quirks.as_dict())
        return Reply(404, f"No implementation for {path}".encode())

    def _control_post(self, path: str, data: bytes) -> Reply:
        if path == "/sim/reset":
            self.counters.reset()
            return Reply(200, b"OK")
        if path not in ("/sim/faults", "/sim/quirks"):
            return Reply(404, f"No implementation for {path}".encode())
        try:
            values = json.loads(data or b"{}")
            if not isinstance(values, dict):
                raise ConfigError("send a JSON object of names and values")
            if path == "/sim/quirks":
                self.quirks = Quirks.from_mapping(values)
                return json_reply(self.quirks.as_dict())
            self.set_faults(Faults.from_mapping(values))
        except (ValueError, ConfigError) as exc:
            return Reply(400, str(exc).encode())
        return json_reply(self.faults.as_dict())

    def _send(self, h: BaseHTTPRequestHandler, reply: Reply, cut: bool = False,
              before_last_byte: Callable[[], None] = lambda: None) -> int:
        """Write the reply and return the body bytes sent.

        With ``cut`` stop half-way through the body and drop the connection. Otherwise call
        ``before_last_byte`` just before the body's end goes out, so that a client which has read
        a whole body always finds it in the counters.
        """
        h.send_response(reply.status)
        if reply.content_type:
            h.send_header("Content-Type", reply.content_type)
        h.send_header(SIMULATOR_HEADER, self.identity)
        for name, value in reply.headers.items():
            h.send_header(name, value)
        body = memoryview(reply.body)
        if reply.chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if cut:
            half = body[:len(body) // 2]
            if reply.chunked:
                write_chunks(h.wfile, half)
            else:
                h.wfile.write(half)
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return len(half)
        if reply.chunked:
            write_chunks(h.wfile, body)
            before_last_byte()
            h.wfile.write(b"0\r\n\r\n")
        else:
            h.wfile.write(body[:-1])
            before_last_byte()
            h.wfile.write(body[-1:])
        return len(body)


class Outcome:
    """Counts one answer: completed (before its last byte leaves), cut, or lost to the client."""

    def __init__(self, counters: Counters, path: str, reply: Reply) -> None:
        self.counters, self.path, self.reply = counters, path, reply
        self.recorded = False

    def complete(self) -> None:
        self.counters.record(self.path, self.reply.status, rows=self.reply.rows, sent=len(self.reply.body),
                             key=self.reply.key)
        self.recorded = True

    def cut(self, sent: int) -> None:
        self.counters.record(self.path, self.reply.status, rows=self.reply.rows, sent=sent, cut=True)

    def lost(self) -> None:
        if self.recorded:
            self.counters.uncomplete(self.reply.rows, len(self.reply.body), self.reply.key)
        else:
            self.cut(0)


def write_chunks(out: Any, body: memoryview) -> None:
    """Send ``body`` as HTTP chunks of up to WRITE_SLICE bytes (without the last-chunk)."""
    for start in range(0, len(body), WRITE_SLICE):
        piece = body[start:start + WRITE_SLICE]
        out.write(b"%x\r\n" % len(piece))
        out.write(piece)
        out.write(b"\r\n")


def json_reply(obj: Any) -> Reply:
    return Reply(200, json.dumps(obj, indent=1, sort_keys=True).encode(), JSON_TYPE)
