"""video-analytics-engine: the engine package.

Data flow, one folder per hop: ``gateway`` (WebSocket ingest) -> ``kafka`` (frames topic)
-> ``worker`` (batched detection with ``inference``) -> ``kafka`` (detections topic) ->
``gateway`` (WebSocket fan-out). ``serde`` and ``protocol`` are the pure pieces between.
"""

__version__ = "0.1.0"
