"""The gateway's WebSocket connection: websockets' ServerConnection, with two hooks that let
ingest run from the connection's own callbacks instead of a task per frame.

websockets hands every data frame to an assembler that a coroutine reads with ``recv()``:
for a camera that is, per frame, a future, a task wake-up and an async iterator step. An
ingest socket instead sets ``frame_sink``: data frames (text, binary, continuation) go to
it as they are parsed, on the loop, inside ``data_received``; control frames (ping, pong,
close) still go to websockets. ``writable`` is called when the transport's write buffer
drained below its low-water mark again (acks written faster than a client reads them).
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import OPEN

FrameSink = Callable[[Frame], None]


class GatewayConnection(ServerConnection):
    """A ServerConnection whose data frames can bypass ``recv()``."""

    frame_sink: FrameSink | None = None
    writable: Callable[[], None] | None = None

    def hand_frames_to(self, sink: FrameSink | None) -> None:
        """Send this socket's data frames to ``sink`` from now on (None: back to ``recv``)."""
        self.frame_sink = sink
        if sink is None:
            return
        # The handler sets the sink before it first yields, so no frame can be waiting yet;
        # if one were, it goes to the sink first, in order.
        queued = self.recv_messages.frames
        while len(queued):
            sink(queued.queue.popleft())

    def process_event(self, event: object) -> None:
        sink = self.frame_sink
        if sink is not None and isinstance(event, Frame) and event.opcode in DATA_OPCODES:
            sink(event)
        else:
            super().process_event(event)  # type: ignore[arg-type]

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.writable is not None:
            self.writable()

    def write_now(self, text: str) -> bool:
        """Write a text message without waiting (no flow control: the caller bounds what it
        writes); False when the socket is no longer open."""
        if self.protocol.state is not OPEN:
            return False
        self.protocol.send_text(text.encode())
        try:
            self.send_data()
        except Exception as exc:  # the transport failed: websockets closes the connection
            self.set_connection_exc(exc)
            self.transport.abort()
            return False
        return True
