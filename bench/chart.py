"""The ratio chart: ours ÷ each peer, one panel per metric, with the targets marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.sdks import LABELS
from bench.targets import Summary, median

# (scenario, metric, title, lower is better, {peer: target ratio})
PANELS: tuple[tuple[str, str, str, bool, dict[str, float]], ...] = (
    (
        "caller_cost",
        "mean_us",
        "track() caller cost (mean)",
        True,
        {"otel": 0.5, "segment": 0.3, "posthog": 0.2},
    ),
    ("throughput", "events_per_s", "delivered events/s", False, {"otel": 1.5}),
    (
        "rt_burst_50",
        "events_per_s",
        "events/s over a 50 ms round trip, defaults",
        False,
        {"posthog": 5.0, "segment": 5.0},
    ),
    ("rt_burst_0", "events_per_s", "events/s, 0 ms, defaults", False, {"otel": 2.0}),
    ("import_time", "import_ms", "import time", True, {"posthog": 0.8}),
    ("memory_queued", "bytes_per_event", "memory per queued event", True, {}),
)
PEERS = ("otel", "segment", "posthog", "requests")


def draw(summary: Summary, path: Path, subtitle: str) -> None:
    fig, axes = plt.subplots(3, 2, figsize=(11, 9.5))
    for ax, (scenario, metric, title, lower, targets) in zip(axes.flat, PANELS):
        ours = median(summary, scenario, "databuddy", metric)
        rows = []
        for peer in PEERS:
            theirs = median(summary, scenario, peer, metric)
            if ours is not None and theirs:
                rows.append((LABELS[peer], ours / theirs, targets.get(peer)))
        better = "lower" if lower else "higher"
        ax.set_title(f"{title}: ours ÷ peer ({better} is better)", fontsize=10)
        if not rows:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
            continue
        names = [r[0] for r in rows]
        ratios = [r[1] for r in rows]
        colors = []
        for _, ratio, target in rows:
            goal = target if target is not None else 1.0
            ok = ratio <= goal if lower else ratio >= goal
            colors.append("#2e8b57" if ok else "#d2691e")
        ax.barh(names, ratios, color=colors)
        ax.set_xscale("log")
        ax.axvline(1.0, color="grey", linewidth=1)
        for y, (_, ratio, target) in enumerate(rows):
            ax.text(ratio, y, f" {ratio:.2f}×", va="center", fontsize=9)
            if target is not None:
                ax.plot([target, target], [y - 0.4, y + 0.4], color="crimson", linewidth=2)
        low, high = min(*ratios, 1.0), max(*ratios, 1.0)
        for _, _, target in rows:
            if target is not None:
                low, high = min(low, target), max(high, target)
        ax.set_xlim(low / 2, high * 3)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.invert_yaxis()
    fig.suptitle(f"databuddy_otel vs peers — red ticks: targets\n{subtitle}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
