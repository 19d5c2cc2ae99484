"""The vendor ``thetadata`` package's own conversion of one chain to a DataFrame, timed, with peak RSS growth.

Run by ``bench/sources.py`` with the Python of ``.venv-vendor`` (``make bench`` creates it): the
vendor's client needs pandas and polars, which bring NumPy, and pyarrow loads NumPy in every process
wherever it is installed, so the package is installed whole only there (``.venv`` holds its
protobuf modules alone, for the tests' gRPC double). Standard library and the vendor's package only.

    .venv-vendor/bin/python bench/vendor_convert.py polars|pandas CHAIN.json

CHAIN.json: the hex of each serialized ``ResponseData`` message, as ``sources.py`` writes it. Prints
one JSON line: rows, seconds and the peak RSS growth in MB.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def status_kib(name: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(name + ":"))


def reset_peak() -> int:
    """Reset the peak RSS (Linux); the RSS now, in bytes."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return status_kib("VmHWM") * 1024


def convert(frame_type: str, path: Path) -> dict[str, float]:
    """``ThetaClient._convert_response_stream`` over the chain's messages to ``frame_type``."""
    from thetadata._proto.endpoints_pb2 import ResponseData
    from thetadata.client import ThetaClient

    parsed = []
    for text in json.loads(path.read_bytes()):  # what a grpc stub yields: parsed messages
        message = ResponseData()
        message.ParseFromString(bytes.fromhex(text))
        parsed.append(message)
    client = ThetaClient.__new__(ThetaClient)  # no login: the conversion reads only dataframe_type
    client.dataframe_type = frame_type
    base = reset_peak()
    started = time.perf_counter()
    frame = client._convert_response_stream(parsed)
    seconds = time.perf_counter() - started
    return {"rows": frame.shape[0], "seconds": seconds, "peak_growth_mb": (peak_rss() - base) / 2**20}


if __name__ == "__main__":
    print(json.dumps(convert(sys.argv[1], Path(sys.argv[2]))))
