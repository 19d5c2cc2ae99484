"""The loopback HTTP/1.1 server: keep-alive, and ``Simulator``, the simulated terminal's lifecycle.

``Simulator`` binds at construction (so ``url`` is known at once), then either runs in a daemon
thread (context manager) or in the foreground (``serve_forever``, for ``spxdl sim``). What each
request is answered with, and how the answer is framed, faulted and counted: ``app.py``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spxdl import __version__
from spxdl.errors import ConfigError
from spxdl.simulator.app import SIMULATOR_HEADER, WRITE_SLICE, Outcome, SimulatorApp, json_reply, write_chunks
from spxdl.simulator.counters import counter_lines
from spxdl.simulator.faults import Faults
from spxdl.simulator.flavors import TERMINAL, THETADATADX, check_choices, get_flavor
from spxdl.simulator.model import MB, MarketModel, SessionRules, get_profile
from spxdl.simulator.quirks import Quirks
from spxdl.simulator.routes import Terminal
from spxdl.trading_calendar import TradingCalendar

logger = logging.getLogger(__name__)

__all__ = ["SIMULATOR_HEADER", "WRITE_SLICE", "Handler", "Outcome", "SimServer", "Simulator", "SimulatorApp",
           "json_reply", "loopback_address", "write_chunks"]


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
