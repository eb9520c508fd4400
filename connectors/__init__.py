"""Connectors at the edges of the engine: frame sources that feed the gateway.

``sources`` turn files and cameras into JPEG frames; ``replay`` pushes them to the
gateway as live streams (the simulated cameras of `vae replay` and `vae up`).
"""
