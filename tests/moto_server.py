"""moto's S3 API in a process of its own, on loopback: the object store of the object-store tests.

The ``s3`` fixture (conftest.py) starts it once per session. moto runs in its own process, never
in the test process: pyarrow's S3 calls made while holding the GIL deadlock against a server
thread of the same process that needs the GIL to answer.

Run as a script it prints ``PORT <n>`` and then takes commands on stdin, one per line, answering
``ok`` to each, until stdin closes:

    fail <text>       every part uploaded to a key containing <text> fails (HTTP 500, which the
                      AWS SDK retries: about 7 s), until cleared
    refuse <text>     ... is refused (HTTP 400: not retried, fails at once)
    deny <text>       ... is denied (403 AccessDenied)
    truncate <text>   every part uploaded to a key containing <text> is stored 7 bytes short
    garble <text>     ... is stored with its last 8 bytes zeroed (a Parquet footer's length and magic)
    clear             no more faults
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAULTS: dict[str, str] = {}  # mode -> text of the keys it hits
START_TIMEOUT_SECONDS = 60.0
S3_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret",
                  "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}


def use_test_aws_environment(patch: Any) -> None:
    """Only the tests' AWS variables (``patch``: a pytest MonkeyPatch): none of the machine's (a profile, an
    endpoint) can reach a test, and pyarrow never probes a cloud's metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            patch.delenv(name)
    for name, value in S3_ENVIRONMENT.items():
        patch.setenv(name, value)


def run_spxdl(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """``spxdl ARGS`` as its own process, with this process's environment (the tests' AWS variables)
    and ``cwd`` as its HOME."""
    return subprocess.run([sys.executable, "-m", "spxdl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "HOME": str(cwd)})


def serve() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import moto.s3.models as models
    from moto.s3.exceptions import AccessDeniedByLock, S3ClientError
    from moto.server import ThreadedMotoServer

    upload_part = models.S3Backend.upload_part

    def faulty_upload_part(self: Any, bucket_name: str, multipart_id: str, part_id: int, value: bytes) -> Any:
        key = self.get_bucket(bucket_name).multiparts[multipart_id].key_name
        if FAULTS.get("fail") and FAULTS["fail"] in key:
            raise RuntimeError(f"injected failure of part {part_id} of {key}")
        if FAULTS.get("refuse") and FAULTS["refuse"] in key:
            raise S3ClientError("InvalidRequest", f"injected refusal of part {part_id} of {key}")
        if FAULTS.get("deny") and FAULTS["deny"] in key:
            raise AccessDeniedByLock()
        if FAULTS.get("truncate") and FAULTS["truncate"] in key:
            value = value[:-7]
        if FAULTS.get("garble") and FAULTS["garble"] in key:
            value = value[:-8] + bytes(8)
        return upload_part(self, bucket_name, multipart_id, part_id, value)

    models.S3Backend.upload_part = faulty_upload_part
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print("PORT", server.get_host_and_port()[1], flush=True)
    for line in sys.stdin:
        command, _, text = line.strip().partition(" ")
        if command == "clear":
            FAULTS.clear()
        elif command in ("fail", "refuse", "deny", "truncate", "garble"):
            FAULTS[command] = text
        print("ok", flush=True)
    server.stop()


@dataclass
class MotoS3:
    """A moto S3 server process: its port, fault injection, and pyarrow and boto3 clients of it."""

    process: subprocess.Popen
    port: int
    buckets: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *, auth: bool = False) -> "MotoS3":
        """Start a server (``auth``: every request needs credentials moto knows, so ours are refused)."""
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else dict(os.environ)
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = process.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"moto did not start within {START_TIMEOUT_SECONDS:.0f} s: {line!r}")
        return cls(process, int(line.split()[1]))

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, bucket: str, prefix: str = "", *, userinfo: str = "") -> str:
        """``s3://[userinfo@]bucket/prefix`` pointed at this server."""
        at = f"{userinfo}@" if userinfo else ""
        path = f"{bucket}/{prefix}".rstrip("/")
        return f"s3://{at}{path}?endpoint_override={self.endpoint}&scheme=http&region=us-east-1"

    def command(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
        assert ready and self.process.stdout.readline().strip() == "ok", f"moto did not take {line!r}"

    def fail_uploads(self, text: str) -> None:
        self.command(f"fail {text}")

    def refuse_uploads(self, text: str) -> None:
        self.command(f"refuse {text}")

    def deny_uploads(self, text: str) -> None:
        self.command(f"deny {text}")

    def truncate_uploads(self, text: str) -> None:
        self.command(f"truncate {text}")

    def garble_uploads(self, text: str) -> None:
        self.command(f"garble {text}")

    def clear_faults(self) -> None:
        self.command("clear")

    def filesystem(self) -> Any:
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(endpoint_override=self.endpoint, scheme="http", region="us-east-1",
                                 access_key="test-key", secret_key="test-secret", allow_bucket_creation=True)

    def new_bucket(self) -> str:
        """A bucket of its own for one test (moto keeps every bucket for the session)."""
        name = f"spxdl-{uuid.uuid4().hex[:12]}"
        self.filesystem().create_dir(name)
        self.buckets.append(name)
        return name

    def keys(self, bucket: str) -> dict[str, int]:
        """Every object of a bucket (marker objects of empty "directories" included) and its size, by boto3."""
        import boto3

        client = boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                              aws_access_key_id="test-key", aws_secret_access_key="test-secret")
        found: dict[str, int] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def open_uploads(self, bucket: str) -> list[str]:
        """Keys of multipart uploads begun and never completed (what a lifecycle rule aborts)."""
        import boto3

        client = boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                              aws_access_key_id="test-key", aws_secret_access_key="test-secret")
        return [upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


if __name__ == "__main__":
    serve()
