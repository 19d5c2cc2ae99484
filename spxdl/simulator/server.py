"""The loopback HTTP/1.1 server: keep-alive, Content-Length or chunked bodies, faults, counters.

``Simulator`` binds at construction (so ``url`` is known at once), then either runs in a daemon
thread (context manager) or in the foreground (``serve_forever``, for ``spxdl sim``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spxdl import __version__
from spxdl.errors import ConfigError
from spxdl.simulator.counters import Counters, counter_lines
from spxdl.simulator.faults import ERROR_TEXTS, FaultDice, Faults
from spxdl.simulator.model import MarketModel, SessionRules, get_profile
from spxdl.simulator.routes import JSON_TYPE, Reply, Terminal

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

    def __init__(self, terminal: Terminal, faults: Faults, identity: str, seed: int) -> None:
        self.terminal = terminal
        self.dice = FaultDice(faults, seed)
        self.counters = Counters()
        self.identity = identity

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
        try:
            reply = self._answer(path, query, in_flight)
            cut = reply.status == 200 and len(reply.body) > 1 and self.dice.cut()
            sent = self._send(h, reply, cut)
            count_path = "/v2/page" if path.startswith("/v2/page/") else path
            self.counters.record(count_path, reply.status, rows=reply.rows, sent=sent, cut=cut,
                                 key=reply.key)
        finally:
            self.counters.leave()

    def _answer(self, path: str, query: str, in_flight: int) -> Reply:
        faults = self.faults
        if faults.max_concurrent is not None and in_flight > faults.max_concurrent:
            return self._throttled(f"Too many concurrent requests (limit {faults.max_concurrent})")
        if faults.latency:
            time.sleep(faults.latency)
        if self.dice.throttle():
            return self._throttled("Too many requests")
        status = self.dice.error_status()
        if status is not None:
            return Reply(status, ERROR_TEXTS[status].encode())
        if path.startswith("/v2/page/") and self.dice.expire_page():
            return Reply(477, b"No page found: the page expired")
        return self.terminal.handle(path, query)

    def _throttled(self, text: str) -> Reply:
        return Reply(429, text.encode(), headers={"Retry-After": f"{self.faults.retry_after:g}"})

    def serve_post(self, h: "Handler") -> None:
        length = int(h.headers.get("Content-Length") or 0)
        data = h.rfile.read(length) if length else b""
        self._send(h, self._control_post(h.path.partition("?")[0], data))

    def _control_get(self, path: str) -> Reply:
        if path == "/sim/counters":
            return json_reply(self.counters.snapshot())
        if path == "/sim/faults":
            return json_reply(self.faults.as_dict())
        return Reply(404, f"No implementation for {path}".encode())

    def _control_post(self, path: str, data: bytes) -> Reply:
        if path == "/sim/reset":
            self.counters.reset()
            return Reply(200, b"OK")
        if path != "/sim/faults":
            return Reply(404, f"No implementation for {path}".encode())
        try:
            values = json.loads(data or b"{}")
            if not isinstance(values, dict):
                raise ConfigError("send a JSON object of fault names and values")
            self.set_faults(Faults.from_mapping(values))
        except (ValueError, ConfigError) as exc:
            return Reply(400, str(exc).encode())
        return json_reply(self.faults.as_dict())

    def _send(self, h: "Handler", reply: Reply, cut: bool = False) -> int:
        """Write the reply; with ``cut`` stop part-way through the body and drop the connection."""
        h.send_response(reply.status)
        h.send_header("Content-Type", reply.content_type)
        h.send_header(SIMULATOR_HEADER, self.identity)
        for name, value in reply.headers.items():
            h.send_header(name, value)
        body = memoryview(reply.body)
        limit = len(body) // 2 if cut else len(body)
        if reply.chunked:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            sent = write_chunked(h.wfile, body[:limit], finish=not cut)
        else:
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body[:limit])
            sent = limit
        if cut:
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        return sent


def write_chunked(out: Any, body: memoryview, finish: bool) -> int:
    """Send ``body`` as HTTP chunks of up to WRITE_SLICE bytes; the last-chunk only if ``finish``."""
    for start in range(0, len(body), WRITE_SLICE):
        piece = body[start:start + WRITE_SLICE]
        out.write(b"%x\r\n" % len(piece))
        out.write(piece)
        out.write(b"\r\n")
    if finish:
        out.write(b"0\r\n\r\n")
    return len(body)


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


class Simulator:
    """A simulated ThetaData Terminal (v2 and v3 on one loopback port)."""

    def __init__(self, *, profile: str = "tiny", seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 faults: Faults = Faults(), page_rows: int | None = None,
                 apis: tuple[str, ...] = ("v2", "v3"), session: SessionRules = SessionRules()) -> None:
        unknown = set(apis) - {"v2", "v3"}
        if unknown or not apis:
            raise ConfigError(f"simulator apis must be v2 and/or v3, not {sorted(unknown) or 'none'}",
                              key="apis")
        if page_rows is not None and page_rows < 1:
            raise ConfigError("page_rows must be 1 or more", key="page_rows")
        family, address = loopback_address(host)
        self.profile = get_profile(profile)
        self.seed = seed
        self.identity = f"spxdl-sim/{__version__}; profile={profile}; seed={seed}"
        model = MarketModel(self.profile, seed, session)
        terminal = Terminal(model, base_url=lambda: self.url, page_rows=page_rows, apis=tuple(apis))
        self.app = SimulatorApp(terminal, faults, self.identity, seed)
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
        """Serve in the foreground until Ctrl-C (KeyboardInterrupt ends it quietly)."""
        logger.info("simulator serving at %s (%s)", self.url, self.identity)
        try:
            self._server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            logger.info("simulator interrupted")
        finally:
            self._server.server_close()

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

    @property
    def faults(self) -> Faults:
        return self.app.faults
