"""Throughput against batch size: one panel per level, one line per backend and precision."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.shell.bench.results import LEVELS, Point

PANEL_TITLES = {"model": "raw model", "detect": "JPEG -> detections", "pipeline": "through Kafka"}


def plot_throughput(points: Sequence[Point], path: Path, title: str) -> Path:
    """Write a small PNG (a few tens of KB) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [level for level in LEVELS if any(p.level == level for p in points)]
    figure, axes = plt.subplots(
        1, len(levels), figsize=(4.2 * len(levels), 3.6), sharey=True, squeeze=False
    )
    for axis, level in zip(axes[0], levels, strict=True):
        mine = [p for p in points if p.level == level]
        for key in sorted({p.key for p in mine}):
            line = sorted((p for p in mine if p.key == key), key=lambda p: p.batch)
            axis.plot(
                [p.batch for p in line],
                [p.images_per_s for p in line],
                marker="o",
                linestyle="-" if key[1] == "fp32" else "--",
                label=f"{key[0]} {key[1]}",
            )
        axis.set_xscale("log", base=2)
        batches = sorted({p.batch for p in mine})
        axis.set_xticks(batches, [str(b) for b in batches])
        axis.minorticks_off()
        axis.set_xlabel("batch size")
        axis.set_title(PANEL_TITLES[level])
        axis.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("images / s")
    axes[0][-1].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
