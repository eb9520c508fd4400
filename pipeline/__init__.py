"""video-analytics-engine: the engine package.

Data flow, one folder per hop: ``gateway`` (WebSocket ingest) -> ``kafka`` (frames topic)
-> ``worker`` (batched detection with ``inference``) -> ``kafka`` (detections topic) ->
``gateway`` (WebSocket fan-out). ``topics`` declares every topic once; ``serde`` and
``protocol`` are the pure pieces between. ``shell`` is not part of the engine: it is the
`vae` command line on top of the engine and the tools (connectors, loadgen, client).
"""

__version__ = "0.1.0"
