"""The run over time as a PNG: latency percentiles per second above, throughput below."""

from __future__ import annotations

from pathlib import Path

from loadgen.report import Report

STYLES = {  # measure -> (colour, label)
    "gateway": ("tab:blue", "gateway"),
    "ack_rtt": ("tab:orange", "ack round trip"),
    "end_to_end": ("tab:green", "end to end"),
}


def plot_report(report: Report, path: Path) -> None:
    """Write the plot; matplotlib's Agg backend, so no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [row for row in report.series if row["t"] >= 0]
    t = [row["t"] for row in series]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, (colour, label) in STYLES.items():
        points = [(row["t"], row[name]) for row in series if name in row]
        if not points:
            continue
        xs = [x for x, _ in points]
        top.plot(xs, [p["p50"] for _, p in points], color=colour, ls=":", label=f"{label} p50")
        top.plot(xs, [p["p99"] for _, p in points], color=colour, ls="-", label=f"{label} p99")
    target = report.config.get("target_p99_ms")
    if target:
        top.axhline(
            float(target), color="tab:red", lw=0.8, ls="--", label=f"target p99 {target} ms"
        )
    top.set_yscale("log")
    top.set_ylabel("latency per second (ms)")
    top.legend(loc="upper left", fontsize=8, ncol=2)
    top.grid(True, which="both", alpha=0.3)
    top.set_title(
        f"vae loadgen: {report.config.get('streams')} streams x {report.config.get('fps')} fps, "
        f"{report.config.get('frame_kb', 0):.0f} KB frames"
    )
    bottom.plot(t, [row["sent"] for row in series], label="sent/s", color="tab:gray")
    bottom.plot(t, [row["acked"] for row in series], label="acked/s", color="tab:blue")
    if any(row["detected"] for row in series):
        bottom.plot(t, [row["detected"] for row in series], label="detected/s", color="tab:green")
    if any(row["rejected"] for row in series):
        bottom.plot(t, [row["rejected"] for row in series], label="refused/s", color="tab:red")
    bottom.set_ylabel("frames per second")
    bottom.set_xlabel("seconds into the run")
    bottom.legend(loc="lower right", fontsize=8)
    bottom.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
