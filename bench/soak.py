"""`make soak`: kill spxdl at random moments under a faulty terminal, re-run, compare with a clean run.

1. A clean reference: `spxdl run` against a fault-free simulator.
2. The soak: the same range against a simulator that answers 10 % 429, 5 % 5xx and cuts 3 % of
   bodies mid-stream; each run's whole process group is SIGKILLed at a random moment, ``--kills``
   times; then runs go on until one completes.
3. The archives must be identical file for file (sha256), with no temp file left, and
   `spxdl verify` must find nothing wrong.

Everything talks to 127.0.0.1 only; counts and times are bounded. Prints what it did and exits 1
if the archives differ.

    .venv/bin/python bench/soak.py [--kills 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sim_process import start_simulator  # bench/ is on sys.path when run as a script

SPXDL = [sys.executable, "-m", "spxdl"]
RANGE = ["--start", "2024-01-08", "--end", "2024-02-16", "--root", "SPXW,SPX", "--max-dte", "10",
         "--workers", "2", "--threads", "2"]
FAULTS = ["--throttle-rate", "0.10", "--error-rate", "0.05", "--cut-rate", "0.03", "--latency", "0.05"]
RUN_TIMEOUT = 300


def run_spxdl(url: str, data_dir: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPXDL_")}
    return subprocess.Popen([*SPXDL, "--quiet", "run", *RANGE, "--terminal-url", url, "--data-dir", str(data_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def run_to_completion(url: str, data_dir: Path, tries: int = 5) -> int:
    """Runs until one exits 0; how many it took."""
    for attempt in range(1, tries + 1):
        if run_spxdl(url, data_dir).wait(timeout=RUN_TIMEOUT) == 0:
            return attempt
    raise SystemExit(f"no run completed in {tries} tries")


def digest(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(data_dir.rglob("*.parquet")) if not p.name.startswith(".")}


def counters(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/sim/counters", timeout=10) as answer:
        return json.load(answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="spxdl-soak-") as scratch:
        reference, soaked = Path(scratch) / "reference", Path(scratch) / "soak"
        clean_sim, clean_url = start_simulator("tiny")
        faulty_sim, faulty_url = start_simulator("tiny", *FAULTS)
        try:
            started = time.monotonic()
            run_to_completion(clean_url, reference)
            clean_seconds = time.monotonic() - started
            print(f"clean run: {len(digest(reference))} files in {clean_seconds:.1f} s")
            killed = runs_started = 0
            while killed < args.kills and runs_started < 3 * args.kills:
                process = run_spxdl(faulty_url, soaked)
                runs_started += 1
                time.sleep(chance.uniform(0.5, 3.0))  # workers start after about a second
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    killed += 1
                process.wait(timeout=30)
            runs = run_to_completion(faulty_url, soaked)
            served = counters(faulty_url)
        finally:
            for sim in (clean_sim, faulty_sim):
                sim.terminate()
                sim.wait(timeout=30)
        time.sleep(1)  # let the killed workers' exits be reaped before looking for their temp files
        temps = [p for p in soaked.rglob("*") if ".tmp-" in p.name]
        verify = subprocess.run([*SPXDL, "verify", "--data-dir", str(soaked)], capture_output=True, text=True)
        same = digest(reference) == digest(soaked)
        statuses = served.get("requests", {})
        print(f"soak: {runs_started} runs, {killed} of them SIGKILLed (whole process group) at random moments, "
              f"then {runs} run(s) to completion")
        print(f"  the faulty terminal answered: {json.dumps(statuses, sort_keys=True)[:400]}")
        print(f"  cut responses: {served.get('cut', {})}")
        print(f"  archives identical (sha256 of every file): {same}; temp files left: {len(temps)}; "
              f"spxdl verify: exit {verify.returncode}")
        return 0 if same and not temps and verify.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
