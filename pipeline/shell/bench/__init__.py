"""Benchmarks: `vae bench inference` measures the inference engine at three levels."""
