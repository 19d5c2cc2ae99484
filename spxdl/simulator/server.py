"""The loopback HTTP/1.1 server: keep-alive, Content-Length or chunked bodies, faults, counters.

``Simulator`` binds at construction (so ``url`` is known at once), then either runs in a daemon
thread (context manager) or in the foreground (``serve_forever``, for ``spxdl sim``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from spxdl import __version__
from spxdl.errors import ConfigError
from spxdl.simulator.counters import Counters, counter_lines
from spxdl.simulator.faults import FaultDice, Faults
from spxdl.simulator.flavors import TERMINAL, THETADATADX, TerminalFlavor, check_choices, denied_paths, get_flavor
from spxdl.simulator.model import MB, MarketModel, SessionRules, get_profile
from spxdl.simulator.quirks import Quirks
from spxdl.simulator.routes import CSV_TYPE, JSON_TYPE, Reply, Terminal
from spxdl.trading_calendar import TradingCalendar

logger = logging.getLogger(__name__)

SIMULATOR_HEADER = "X-Spxdl-Simulator"
WRITE_SLICE = 1 << 20        # bytes per chunk of a chunked body


def loopback_address(host: str) -> tuple[int, str]:
    """(address family, address) to bind; ConfigError unless every address of host is loopback."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM) if host else []
    except socket.gaierror:
        infos = []
    addresses = [(info[0], info[4][0]) for info in infos]
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for _, a in addresses):
        raise ConfigError(f"the simulator listens on loopback only; {host!r} is not a loopback "
                          "address (use 127.0.0.1)", key="host")
    ipv4 = [a for a in addresses if a[0] == socket.AF_INET]
    return (ipv4 or addresses)[0]


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

    def serve_get(self, h: "Handler") -> None:
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

    def serve_post(self, h: "Handler") -> None:
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

    def _send(self, h: "Handler", reply: Reply, cut: bool = False,
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


class Handler(BaseHTTPRequestHandler):
    """Thin HTTP/1.1 handler: keep-alive, everything else in SimulatorApp."""

    protocol_version = "HTTP/1.1"
    server: "SimServer"

    def version_string(self) -> str:
        return "spxdl-sim/" + __version__

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs
        # add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.app.counters.connection_opened()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.app.serve_get(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.app.serve_post(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s " + format, self.address_string(), *args)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, family: int, address: tuple[str, int], app: SimulatorApp) -> None:
        self.address_family = family
        self.app = app
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log instead of printing a traceback (library code never prints)."""
        logger.debug("error serving %s", client_address, exc_info=True)


class Simulator:
    """A simulated ThetaData Terminal (v2 and v3 on one loopback port), or thetadatadx-server (v3).

    ``flavor`` is how it speaks (``terminal`` or ``thetadatadx``: flavors.py), ``tier`` the
    subscription it serves (``free``, ``value``, ``standard``, ``pro``; datasets above it answer
    the flavour's permission answer).
    """

    def __init__(self, *, profile: str = "tiny", seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults = Faults(), page_rows: int | None = None,
                 apis: tuple[str, ...] | None = None, session: SessionRules = SessionRules(),
                 quirks: Quirks = Quirks(), calendar_closures: Any = (), flavor: str = TERMINAL,
                 tier: str = "pro", body_cache_mb: int | None = None) -> None:
        check_choices(flavor, tier)
        if apis is None:
            apis = ("v3",) if flavor == THETADATADX else ("v2", "v3")
        unknown = set(apis) - {"v2", "v3"}
        if unknown or not apis:
            raise ConfigError(f"simulator apis must be v2 and/or v3, not {sorted(unknown) or 'none'}",
                              key="apis")
        if flavor == THETADATADX and "v2" in apis:
            raise ConfigError("thetadatadx-server serves API v3 only: leave apis out", key="apis")
        if page_rows is not None and page_rows < 1:
            raise ConfigError("page_rows must be 1 or more", key="page_rows")
        if body_cache_mb is not None and body_cache_mb < 1:
            raise ConfigError("body_cache_mb must be 1 or more", key="body_cache_mb")
        family, address = loopback_address(host)
        self.profile = get_profile(profile)
        if body_cache_mb is not None:  # benchmarks keep a whole day's bodies rendered
            self.profile = dataclasses.replace(self.profile, body_cache_bytes=body_cache_mb * MB)
        self.seed = seed
        self.flavor = flavor
        self.identity = f"spxdl-sim/{__version__}; profile={profile}; seed={seed}" + (
            f"; flavor={flavor}" if flavor != TERMINAL else "")
        # Closures given here change only what the calendar endpoints answer (a test's terminal whose
        # calendar differs from spxdl's); the market keeps the built-in calendar.
        model = MarketModel(self.profile, seed, session, TradingCalendar(extra_closures=calendar_closures))
        terminal = Terminal(model, base_url=lambda: self.url, page_rows=page_rows, apis=tuple(apis),
                            flavor=get_flavor(flavor))
        self.app = SimulatorApp(terminal, faults, self.identity, seed, quirks, tier)
        try:
            self._server = SimServer(family, (address, port), self.app)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="port") from None
        bound_port = self._server.server_address[1]
        shown = f"[{address}]" if family == socket.AF_INET6 else address
        self.url = f"http://{shown}:{bound_port}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Simulator":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="spxdl-simulator", daemon=True)
        self._thread.start()
        logger.info("simulator serving at %s (%s)", self.url, self.identity)

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (KeyboardInterrupt ends it quietly), then release the port.

        The server runs in its thread and this one only waits: a KeyboardInterrupt raised inside the
        server's own loop (while it starts a request's thread, say) could leave it half stopped.
        """
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.2)
        except KeyboardInterrupt:
            logger.info("simulator interrupted")
        finally:
            self.close()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def counters(self) -> dict[str, Any]:
        return self.app.counters.snapshot()

    def counter_lines(self) -> list[str]:
        """The counters as lines of text (printed by ``spxdl sim`` at exit)."""
        return counter_lines(self.counters())

    def reset_counters(self) -> None:
        self.app.counters.reset()

    def set_faults(self, faults: Faults) -> None:
        self.app.set_faults(faults)

    def set_quirks(self, quirks: Quirks) -> None:
        """Answer CSV differently from the documented wire (``Quirks``); ``Quirks()`` restores it."""
        self.app.quirks = quirks

    @property
    def faults(self) -> Faults:
        return self.app.faults
