"""Stream analytics: tracks, line crossings, zone presence, loitering and windowed counts.

The pieces here are pure (no broker, no sockets), so each is unit-tested on its own:
geometry (``geometry.py``), per-track state machines (``lines.py``, ``zones.py``), events
and their deterministic ids (``events.py``), event-time windows (``windows.py``), the
tracker wrapper (``tracking.py``) and the per-stream processor that joins them
(``stream.py``). The rules document is ``pipeline.protocol.rules`` (the gateway validates
it too); ``app.py`` is the faust-streaming wiring.
"""
