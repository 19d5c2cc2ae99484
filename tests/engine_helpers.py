"""Helpers of the engine tests: settings, archive fingerprints, process watching, and a driver.

Run as a script, this file is the driver of the subprocess tests: it plans and runs a range with
the engine, prints one line per progress event (``event <kind> <task> <expiration>``) and exits
with 128 + the signal number when a signal stopped the run, 0 when complete, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import http.server
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import date
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow.parquet as pq  # noqa: E402

from spxdl import engine  # noqa: E402
from spxdl.config import Settings  # noqa: E402

START = date(2024, 1, 10)  # Wednesday
END = date(2024, 1, 11)  # Thursday: two tasks per root


def make_settings(data_dir: Path, url: str, **changes: object) -> Settings:
    """Small, quick settings against the simulator at ``url``."""
    base = Settings(
        terminal_url=url,
        data_dir=Path(data_dir),
        workers=2,
        threads=2,
        min_dte=0,
        max_dte=8,
        retries=2,
        connect_timeout=2.0,
        read_timeout=20.0,
        expiration_attempts=3,
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------
# the archive on disk


def data_files(data_dir: Path) -> list[Path]:
    """Every Parquet data file (temp files are hidden and excluded)."""
    return sorted(path for path in Path(data_dir).rglob("*.parquet") if not path.name.startswith("."))


def archive_digest(data_dir: Path) -> dict[str, str]:
    """Relative path -> sha256 of every data file."""
    return {
        str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest() for path in data_files(data_dir)
    }


def served_rows(sim) -> dict[tuple[str, date, date], int]:
    """(root, trade date, expiration) -> rows the simulator served in complete history bodies."""
    served = {}
    for key, rows in sim.counters()["rows_by_request"].items():
        _api, _dataset, root, expiration, days = key.split()[:5]
        first, last = days.split("..")
        assert first == last, key  # the engine asks for one trade date at a time
        served[(root, date.fromisoformat(first), date.fromisoformat(expiration))] = rows
    return served


def file_rows(data_dir: Path) -> dict[tuple[str, date, date], int]:
    """(root, trade date, expiration) -> rows, from the data files' footers."""
    rows = {}
    for path in data_files(data_dir):
        root = path.parent.parent.name.split("=")[1]
        trade_date = date.fromisoformat(path.parent.name.split("=")[1])
        expiration = date.fromisoformat(pq.ParquetFile(path).schema_arrow.metadata[b"expiration"].decode())
        rows[(root, trade_date, expiration)] = pq.ParquetFile(path).metadata.num_rows
    return rows


def temp_files(data_dir: Path) -> list[Path]:
    """Temp files left in the archive."""
    return sorted(path for path in Path(data_dir).rglob("*") if ".tmp-" in path.name)


def day_files(data_dir: Path) -> dict[Path, dict]:
    """Every ``_day.json``, parsed."""
    return {path: json.loads(path.read_text()) for path in Path(data_dir).rglob("_day.json")}


def ledger_problems(data_dir: Path) -> list[str]:
    """Where the ledger and the files disagree: complete without its file or with another sha256,
    or a data file not recorded complete."""
    problems = []
    recorded = set()
    for path, day in day_files(data_dir).items():
        for name, entry in day["expirations"].items():
            if entry["state"] != "complete":
                continue
            file = path.parent / (entry["file"] or "?")
            if not file.exists():
                problems.append(f"{path.parent} {name}: complete but {file.name} is missing")
                continue
            recorded.add(file)
            if hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
                problems.append(f"{file}: sha256 differs from the ledger")
    problems += [f"{path}: on disk but not recorded complete" for path in data_files(data_dir) if path not in recorded]
    return problems


def claims(data_dir: Path) -> list[str]:
    """Task directories whose ``_day.json`` still holds a claim."""
    return [str(path.parent) for path, day in day_files(data_dir).items() if day.get("claim")]


# ---------------------------------------------------------------------------------------------
# processes


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def session_pids(session: int) -> list[int]:
    """Processes of a session (the driver and everything it started), zombies included.

    Killed orphans stay zombies until init reaps them (here up to ~2 s), and the temp-file sweep
    counts a zombie's pid as alive: a re-run starts only once they are gone.
    """
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session:
            pids.append(int(stat.parent.name))
    return pids


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Driver:
    """A subprocess in its own session (this file's driver, or ``spxdl``); its output read by a thread."""

    def __init__(self, data_dir: Path, url: str, *args: str, cli: bool = False, tz: str | None = None) -> None:
        if cli:
            command = [sys.executable, "-m", "spxdl", "run", "--data-dir", str(data_dir), "--terminal-url", url]
        else:
            command = [sys.executable, str(Path(__file__)), "--data-dir", str(data_dir), "--url", url]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("SPXDL_CONFIG", None)
        if tz:
            env["TZ"] = tz
        self.process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=env,
            cwd=data_dir.parent,  # no spxdl.ini of the checkout applies
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)  # the driver is gone: stop waiting for lines

    def _lines(self, deadline: float) -> Iterator[str | None]:
        """Output lines as they come until ``deadline``; a last None once the driver has ended (left
        in the queue for the next reader)."""
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                self.lines.put(None)
                yield None
                return
            yield line

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 30.0) -> bool:
        """Wait until ``count`` output lines starting with ``prefix`` were seen; False if the driver ended first."""
        seen = 0
        for line in self._lines(time.monotonic() + timeout) if count > 0 else ():
            if line is None:
                return False
            seen += line.startswith(prefix)
            if seen >= count:
                return True
        return seen >= count

    def wait(self, timeout: float = 60.0) -> int:
        return self.process.wait(timeout=timeout)

    def output_closed(self, timeout: float = 30.0) -> bool:
        """Wait until every process holding the output (helpers such as multiprocessing's resource
        tracker included) has closed it; False on timeout."""
        return any(line is None for line in self._lines(time.monotonic() + timeout))

    def text(self) -> str:
        return "".join(self.output)


# ---------------------------------------------------------------------------------------------
# a terminal whose subscription lacks the history endpoints


Answer = tuple[int, dict[str, str], bytes]


class QuietServer(http.server.ThreadingHTTPServer):
    """A client that hangs up part-way (a run stopping) is normal here, not a traceback on stderr."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class StandInTerminal:
    """A loopback server relaying every request to ``upstream``; ``on_history`` may change history answers.

    The simulator has no fault for a subscription without the data, another terminal on the
    account or a drifted header; this stands in front of it so that a run meets those answers.
    ``on_history(status, headers, body)`` gets each history answer whole and returns the one to
    send (bodies go out whole, with Content-Length).
    """

    def __init__(self, upstream: str, on_history: Callable[[int, dict[str, str], bytes], Answer] | None = None,
                 *, deny: tuple[str, ...] = (), intercept: Callable[[str], Answer | None] | None = None,
                 drop: tuple[str, ...] = ()) -> None:
        """``deny``: paths answered 471 (a subscription without them); ``intercept(path and query)`` may
        answer a request itself; the others are relayed, without the headers named in ``drop``."""
        target = urllib.parse.urlsplit(upstream)
        change = on_history or (lambda status, headers, body: (status, headers, body))

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.split("?")[0] in deny:
                    self._answer(471, {"Content-Type": "text/plain"}, b"PERMISSION: your subscription does not include this")
                    return
                own = intercept(self.path) if intercept else None
                if own is not None:
                    self._answer(*own)
                    return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                try:
                    connection.request("GET", self.path)
                    response = connection.getresponse()
                    answer = (response.status, dict(response.getheaders()), response.read())
                finally:
                    connection.close()
                if "hist" in self.path.split("?")[0]:  # v2 bulk_hist/hist, v3 history
                    answer = change(*answer)
                self._answer(*answer)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                dropped = ("content-length", "transfer-encoding", "connection", "date", "server",
                           *(name.lower() for name in drop))
                for name, value in headers.items():
                    if name.lower() not in dropped:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "StandInTerminal":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def answering(status: int, text: str) -> Callable[[int, dict[str, str], bytes], Answer]:
    """An ``on_history`` that answers every history request with ``status`` and ``text``."""
    return lambda *_: (status, {"Content-Type": "text/plain"}, text.encode())


def with_columns(change: Callable[[list[str]], list[str]]) -> Callable[[int, dict[str, str], bytes], Answer]:
    """An ``on_history`` that rewrites every CSV line's cells (header included) with ``change``."""

    def rewrite(status: int, headers: dict[str, str], body: bytes) -> Answer:
        if status != 200:
            return status, headers, body
        lines = body.decode().split("\r\n")
        rewritten = [",".join(change(line.split(","))) if line else line for line in lines]
        return status, headers, "\r\n".join(rewritten).encode()

    return rewrite


def DenyingTerminal(upstream: str) -> StandInTerminal:
    """A terminal whose subscription lacks the history endpoints: every history request answers 471."""
    return StandInTerminal(upstream, answering(471, "PERMISSION: your subscription does not include this data"))


# ---------------------------------------------------------------------------------------------
# the driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--start", type=date.fromisoformat, default=START)
    parser.add_argument("--end", type=date.fromisoformat, default=END)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-dte", type=int, default=0)
    parser.add_argument("--max-dte", type=int, default=8)
    parser.add_argument("--api", default="auto")
    parser.add_argument("--executor", default="process")
    args = parser.parse_args(argv)
    settings = make_settings(
        args.data_dir,
        args.url,
        workers=args.workers,
        threads=args.threads,
        min_dte=args.min_dte,
        max_dte=args.max_dte,
        terminal_api=args.api,
        executor=args.executor,
    )
    plan = engine.plan(settings, args.start, args.end)
    print(f"planned {len(plan.tasks)} held {len(plan.held)}", flush=True)

    def show(event: engine.Event) -> None:
        print(f"event {event.kind} {event.task.key} {event.expiration or '-'} {event.state or '-'}", flush=True)

    summary = engine.run(plan, settings, on_event=show)
    print(f"summary {json.dumps(summary.by_state(), sort_keys=True)} interrupted {summary.interrupted}", flush=True)
    if summary.interrupted:
        return 128 + summary.interrupted
    return 0 if summary.complete else 1


if __name__ == "__main__":
    sys.exit(main())
