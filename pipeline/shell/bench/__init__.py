"""Benchmarks: `vae bench inference` (the inference engine at three levels) and `vae bench
gateway` (loadgen rows against a fresh broker and gateway each)."""
