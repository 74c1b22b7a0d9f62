"""The plot `make bench` writes: occupancy against abandon rate, per scenario and mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: dict[str, Any], path: Path) -> None:
    """Occupancy against abandon rate: one point per scenario and mode (and hand-tuned baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = {"preview": "s", "progressive": "o", "predictive": "^"}
    colours = {
        "preview": "#888888", "progressive": "#1f77b4", "predictive": "#d62728",
        "ratio": "#2ca02c", "level": "#9467bd",
    }  # fmt: skip
    for name, entry in results["scenarios"].items():
        for mode, m in entry["modes"].items():
            ax.scatter(
                100 * m["abandon_rate"], m["occupancy"], marker=markers[mode], color=colours[mode],
                label=mode, s=40,
            )  # fmt: skip
            if mode == "predictive":
                ax.annotate(name, (100 * m["abandon_rate"], m["occupancy"]), fontsize=6, alpha=0.7)
        for baseline, b in (entry.get("baselines") or {}).items():
            if b:
                ax.scatter(
                    100 * b["abandon_rate"], b["occupancy"], marker="x", color=colours[baseline],
                    label=f"fixed {baseline}, tuned with hindsight", s=30,
                )  # fmt: skip
    ax.axvline(3.0, color="black", linestyle="--", linewidth=1)
    ax.text(3.05, 0.95, "3 % (Ofcom)", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="lower center")
    ax.set_xlabel("abandon rate over the day (% of live answered calls)")
    ax.set_ylabel("operator occupancy ((talk + wrap-up) / logged-in)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 3.6)
    ax.grid(alpha=0.3)
    ax.set_title("Pacing benchmark: occupancy against abandon rate, per scenario and mode")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
