"""The registry path through confluent-kafka's client, against a minimal registry server.

No Confluent-compatible registry can run on this machine (Redpanda's and Confluent's need
Docker or a JVM download), so this server implements the two REST calls the engine makes
(register a schema under a subject; fetch a schema by id) the way the Confluent API
documents them. It checks our side of the contract, not a real registry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import schemas
from pipeline.kafka.registry import RegistrySchemaIds
from pipeline.serde import AvroDecoder, AvroEncoder, SerdeError
from tests.unit.test_avro import frame_record


class Registry:
    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.requests: list[str] = []


@pytest.fixture
def registry() -> Iterator[tuple[str, Registry]]:
    state = Registry()

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            state.requests.append(f"POST {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            subject = self.path.split("/")[2]
            text = body["schema"]
            known = [i for i, s in state.schemas.items() if json.loads(s) == json.loads(text)]
            schema_id = known[0] if known else len(state.schemas) + 1
            state.schemas[schema_id] = text
            state.subjects.setdefault(subject, []).append(schema_id)
            self._json(200, {"id": schema_id})

        def do_GET(self) -> None:
            state.requests.append(f"GET {self.path}")
            parts = self.path.split("?")[0].split("/")
            if parts[1:3] == ["schemas", "ids"] and int(parts[3]) in state.schemas:
                self._json(200, {"schema": state.schemas[int(parts[3])], "schemaType": "AVRO"})
            else:
                self._json(404, {"error_code": 40403, "message": "Schema not found"})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()


def test_ids_come_from_the_registry_and_readers_fetch_writers(
    registry: tuple[str, Registry],
) -> None:
    url, state = registry
    writer_ids = RegistrySchemaIds(url)
    encoder = AvroEncoder(schemas.load("frame"), writer_ids, "vae.frames-value")
    assert encoder.schema_id == 1
    assert state.subjects == {"vae.frames-value": [1]}
    data = encoder.encode(frame_record())
    assert data[1:5] == (1).to_bytes(4, "big")

    reader_ids = RegistrySchemaIds(url)  # another process: knows nothing yet
    decoded = AvroDecoder(schemas.load("frame"), reader_ids).decode(data)
    assert decoded == frame_record()
    assert "GET /schemas/ids/1" in " ".join(state.requests)
    fetches = sum(r.startswith("GET /schemas/ids/1") for r in state.requests)
    AvroDecoder(schemas.load("frame"), reader_ids).decode(data)
    assert sum(r.startswith("GET /schemas/ids/1") for r in state.requests) == fetches  # cached


def test_unknown_id_is_a_clear_error(registry: tuple[str, Registry]) -> None:
    url, _ = registry
    data = b"\x00" + (77).to_bytes(4, "big") + b"\x00"
    with pytest.raises(SerdeError, match="schema id 77"):
        AvroDecoder(schemas.load("frame"), RegistrySchemaIds(url)).decode(data)
