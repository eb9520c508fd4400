"""`vae loadgen`: thousands of simulated cameras against a gateway, measured honestly.

Data flow of one run: frames (decoded once) -> N processes x thousands of paced ingest
sockets -> gateway acks (+ detections on a subscribe socket) -> per-process HDR
histograms and counters -> merged report, table, JSON and plot.
"""
