"""The command shell: `vae` and its commands, `vae up`, the benchmarks.

The top layer: it may import the engine (the rest of ``pipeline``), the connectors, loadgen
and the client, and nothing imports it (import-linter checks both; see pyproject.toml).
"""
