"""The flags of `vae bench inference`, kept apart so `vae --help` imports no model code."""

from __future__ import annotations

import argparse

BACKEND_LABELS = ("tensorrt", "torch-cuda", "onnxruntime-cuda", "onnxruntime-cpu", "torch-cpu")
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    labels = BACKEND_LABELS
    parser.add_argument(
        "--backends",
        default="all",
        help=f"Comma-separated, of {', '.join(labels)}; 'all' tries each (default).",
    )
    parser.add_argument("--precisions", default="fp32,fp16", help="Default fp32,fp16.")
    parser.add_argument(
        "--batches", default=",".join(map(str, DEFAULT_BATCHES)), help="Batch sizes to run."
    )
    parser.add_argument(
        "--levels", default="model,detect,pipeline", help="Any of model, detect, pipeline."
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="Measuring time per point, model and detect."
    )
    parser.add_argument(
        "--pipeline-seconds",
        type=float,
        default=8.0,
        help="Frames per pipeline point: this many seconds' worth at the raw model's rate.",
    )
    parser.add_argument("--media", default="", help="Clip to take frames from (sample clip).")
    parser.add_argument(
        "--json", default="artifacts/bench/inference.json", help="Where every figure goes."
    )
    parser.add_argument(
        "--markdown", default="", help="Rewrite the Inference section of this file."
    )
    parser.add_argument("--plot", default="", help="Write the throughput plot (PNG) here.")
    parser.add_argument(
        "--from-json",
        default="",
        help="Measure nothing: render --markdown and --plot from a saved run's JSON (e.g. one "
        "taken on a GPU machine).",
    )
