"""`vae sink postgres`: events, counts (and detections) upserted into PostgreSQL (psycopg 3).

A batch is one transaction: events inserted by ``event_id`` (a repeat does nothing), counts
upserted by window key keeping the highest revision, detections by ``(stream_id,
frame_id)``. The sink commits its offsets only after PostgreSQL's COMMIT returned, with
``synchronous_commit`` on for its session, so a committed offset always means a row on
disk. The tables are created and migrated at start, under an advisory lock (replicas may
start together); the versions applied are in ``<schema>.schema_version``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from connectors.sinks.base import Context, Destination, DestinationUnavailable
from connectors.sinks.options import PostgresOptions
from connectors.sinks.records import COUNTS, DETECTIONS, EVENT, Batch, SinkItem, timestamp

log = logging.getLogger(__name__)

# Each migration once, in order; a new one is appended, never edited.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "events, counts and detections",
        """
        CREATE TABLE {s}.events (
            event_id         text PRIMARY KEY,
            stream_id        text NOT NULL,
            rule             text NOT NULL,
            kind             text NOT NULL,
            phase            text NOT NULL,
            label            text NOT NULL,
            class_id         integer NOT NULL,
            track_id         bigint NOT NULL,
            direction        text NOT NULL,
            start_time       timestamptz NOT NULL,
            end_time         timestamptz NOT NULL,
            frame_id         bigint NOT NULL,
            score            real NOT NULL,
            x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
            frame_partition  integer NOT NULL,
            frame_offset     bigint NOT NULL,
            trigger_frame_id bigint NOT NULL,
            written_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX events_stream_time ON {s}.events (stream_id, start_time);
        CREATE INDEX events_time ON {s}.events (start_time);
        CREATE TABLE {s}.counts (
            stream_id      text NOT NULL,
            rule           text NOT NULL,
            kind           text NOT NULL,
            label          text NOT NULL,
            window_start   timestamptz NOT NULL,
            window_end     timestamptz NOT NULL,
            crossed_in     integer NOT NULL,
            crossed_out    integer NOT NULL,
            entries        integer NOT NULL,
            peak_occupancy integer NOT NULL,
            revision       integer NOT NULL,
            written_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (stream_id, rule, kind, label, window_start)
        );
        CREATE INDEX counts_stream_time ON {s}.counts (stream_id, window_start);
        CREATE INDEX counts_time ON {s}.counts (window_start);
        CREATE TABLE {s}.detections (
            stream_id    text NOT NULL,
            frame_id     bigint NOT NULL,
            capture_time timestamptz NOT NULL,
            width        integer NOT NULL,
            height       integer NOT NULL,
            model        text NOT NULL,
            inferred     boolean NOT NULL,
            objects      jsonb NOT NULL,
            written_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (stream_id, frame_id)
        );
        CREATE INDEX detections_time ON {s}.detections (capture_time);
        """,
    ),
)

EVENT_COLUMNS = (
    "event_id", "stream_id", "rule", "kind", "phase", "label", "class_id", "track_id",
    "direction", "start_time", "end_time", "frame_id", "score", "x1", "y1", "x2", "y2",
    "frame_partition", "frame_offset", "trigger_frame_id",
)  # fmt: skip
COUNTS_COLUMNS = (
    "stream_id", "rule", "kind", "label", "window_start", "window_end", "crossed_in",
    "crossed_out", "entries", "peak_occupancy", "revision",
)  # fmt: skip
COUNTS_KEY = ("stream_id", "rule", "kind", "label", "window_start")
DETECTIONS_COLUMNS = (
    "stream_id", "frame_id", "capture_time", "width", "height", "model", "inferred", "objects",
)  # fmt: skip


def event_row(v: dict[str, Any]) -> tuple[Any, ...]:
    times = {"start_time": timestamp(v["start_ts_us"]), "end_time": timestamp(v["end_ts_us"])}
    return tuple(times[c] if c in times else v[c] for c in EVENT_COLUMNS)


def counts_row(v: dict[str, Any]) -> tuple[Any, ...]:
    times = {
        "window_start": timestamp(v["window_start_us"]),
        "window_end": timestamp(v["window_end_us"]),
    }
    return tuple(times[c] if c in times else v[c] for c in COUNTS_COLUMNS)


def detections_row(v: dict[str, Any]) -> tuple[Any, ...]:
    return (
        v["stream_id"],
        v["frame_id"],
        timestamp(v["capture_ts_us"]),
        v["width"],
        v["height"],
        v["model"],
        v.get("inferred", True),
        json.dumps(v["objects"]),
    )


def _insert(schema: str, table: str, columns: Sequence[str], conflict: sql.Composable) -> sql.SQL:
    return sql.SQL("INSERT INTO {t} ({c}) VALUES ({v}) ON CONFLICT {k}").format(  # type: ignore[return-value]
        t=sql.Identifier(schema, table),
        c=sql.SQL(", ").join(map(sql.Identifier, columns)),
        v=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        k=conflict,
    )


class PostgresSink(Destination):
    """Upserts by key in one transaction per batch."""

    name: ClassVar[str] = "postgres"

    def __init__(self, options: PostgresOptions) -> None:
        self.options = options
        self.schema = options.schema
        self._conn: psycopg.Connection[Any] | None = None
        s = self.schema
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
            for c in COUNTS_COLUMNS[len(COUNTS_KEY) :]
        )
        self._statements: dict[str, tuple[Any, Callable[[dict[str, Any]], tuple[Any, ...]]]] = {
            EVENT: (
                _insert(s, "events", EVENT_COLUMNS, sql.SQL("(event_id) DO NOTHING")),
                event_row,
            ),
            COUNTS: (
                _insert(
                    s,
                    "counts",
                    COUNTS_COLUMNS,
                    sql.SQL(
                        "({k}) DO UPDATE SET {u}, written_at = now() "
                        "WHERE {t}.revision < EXCLUDED.revision"
                    ).format(
                        k=sql.SQL(", ").join(map(sql.Identifier, COUNTS_KEY)),
                        u=updates,
                        t=sql.Identifier("counts"),
                    ),
                ),
                counts_row,
            ),
            DETECTIONS: (
                _insert(
                    s, "detections", DETECTIONS_COLUMNS, sql.SQL("(stream_id, frame_id) DO NOTHING")
                ),
                detections_row,
            ),
        }

    def describe(self) -> str:
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.options.dsn)
        except psycopg.ProgrammingError:
            return f"postgresql (schema {self.schema})"
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        return f"postgresql://{where} (schema {self.schema})"

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        try:
            conn = psycopg.connect(
                self.options.dsn,
                connect_timeout=self.options.connect_timeout_s,
                application_name="vae-sink-postgres",
                # A server gone silent (a network cut) is found in about 25 s, not hours.
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
            # A COMMIT returns only once the WAL is on disk, whatever the server's default:
            # the Kafka commit that follows must never get ahead of the rows.
            conn.execute("SET synchronous_commit TO on")
            # After a cut that the server did not see, the old session may sit idle in its
            # transaction holding the batch's row locks: the server ends it after 30 s, and
            # the retry's INSERTs give up waiting on it after 10 s (then retried again).
            conn.execute("SET idle_in_transaction_session_timeout TO '30s'")
            conn.execute("SET lock_timeout TO '10s'")
            conn.commit()
        except psycopg.OperationalError as exc:
            raise DestinationUnavailable(f"cannot connect: {exc}".strip()) from exc
        self._conn = conn
        return conn

    def open(self) -> None:
        conn = self._connect()
        try:
            self._migrate(conn)
        except psycopg.OperationalError as exc:
            self._drop()
            raise DestinationUnavailable(f"migration interrupted: {exc}") from exc

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        s = sql.Identifier(self.schema)
        with conn.transaction():
            # One sink migrates at a time; the others wait here, then find nothing to do.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"vae-sink:{self.schema}",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_version ("
                    "version integer PRIMARY KEY, description text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(s)
            )
            row = conn.execute(
                sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(s)
            ).fetchone()
            current = int(row[0]) if row else 0
            if current > len(MIGRATIONS):
                raise RuntimeError(
                    f"schema {self.schema!r} is at version {current}, newer than this sink "
                    f"({len(MIGRATIONS)}): upgrade the sink"
                )
            for version, (description, text) in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                conn.execute(sql.SQL(text).format(s=s))
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)"
                    ).format(s),
                    (version, description),
                )
                log.info("postgres: schema %s migrated to version %d", self.schema, version)

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def write(self, batch: Batch, context: Context) -> None:
        conn = self._connect()
        try:
            self._write_all(conn, batch)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._drop()
            raise DestinationUnavailable(f"write failed: {exc}".strip()) from exc
        except psycopg.Error as exc:
            # The server refused a value (a NUL in a text, say): find the records it refuses,
            # one by one, and give them up; the rest are written.
            log.warning("postgres refused the batch (%s): writing its records one by one", exc)
            self._write_each(conn, batch, context)

    def _rows(self, items: list[SinkItem]) -> dict[str, list[tuple[Any, ...]]]:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for item in items:
            assert item.value is not None
            rows.setdefault(item.kind, []).append(self._statements[item.kind][1](item.value))
        return rows

    def _write_all(self, conn: psycopg.Connection[Any], batch: Batch) -> None:
        items = batch.todo(EVENT) + batch.latest_counts() + batch.todo(DETECTIONS)
        with conn.transaction(), conn.cursor() as cursor:
            for kind, rows in self._rows(items).items():
                cursor.executemany(self._statements[kind][0], rows)

    def _write_each(self, conn: psycopg.Connection[Any], batch: Batch, context: Context) -> None:
        for item in batch.todo():
            try:
                with conn.transaction(), conn.cursor() as cursor:
                    for kind, rows in self._rows([item]).items():
                        cursor.execute(self._statements[kind][0], rows[0])
                item.done = True
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop()
                raise DestinationUnavailable(f"write failed: {exc}".strip()) from exc
            except psycopg.Error as exc:
                context.dead_letter(item, "refused", f"postgres: {exc}".strip())

    def close(self) -> None:
        self._drop()
