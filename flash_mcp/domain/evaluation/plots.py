"""The comparison chart for compare_evaluations, drawn with matplotlib's Agg canvas (imported lazily).

Left: the two means with their 95% intervals, and the paired difference B - A with its interval,
the zero line and the +-MDE band. Right: every paired row as a line from its A score to its B score
(at most MAX_ROWS, flipped rows first), green when the row improved, red when it regressed.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

MAX_ROWS = 300


@dataclass(frozen=True)
class ComparisonPlot:
    label_a: str
    label_b: str
    mean_a: float
    interval_a: tuple[float, float]
    mean_b: float
    interval_b: tuple[float, float]
    difference: float
    interval: tuple[float, float]
    mde: float | None
    verdict: str
    pairs: list[tuple[float, float, int]]  # (score A, score B, +1 improved / -1 regressed / 0 same)
    by_success: bool  # flips are success changes (else score changes)


def comparison_png(plot: ComparisonPlot) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(f"B = {plot.label_b} vs A = {plot.label_a}: {plot.verdict}", fontsize=10)
    means, rows = figure.subplots(1, 2, width_ratios=[1.1, 1])
    _means(means, plot)
    _rows(rows, plot)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _means(ax, plot: ComparisonPlot) -> None:
    centres = [plot.mean_a, plot.mean_b, plot.difference]
    intervals = [plot.interval_a, plot.interval_b, plot.interval]
    colours = ["tab:gray", "tab:blue", _verdict_colour(plot.verdict)]
    for x, (centre, (low, high), colour) in enumerate(zip(centres, intervals, colours, strict=True)):
        ax.errorbar([x], [centre], yerr=[[centre - low], [high - centre]], fmt="o", color=colour, capsize=6,
                    markersize=7)  # fmt: skip
        ax.annotate(f"{centre:+.3g}" if x == 2 else f"{centre:.3g}", (x, centre), textcoords="offset points",
                    xytext=(9, -3), fontsize=8)  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    if plot.mde is not None:
        ax.axhspan(-plot.mde, plot.mde, xmin=0.7, color="tab:orange", alpha=0.15, label=f"±MDE {plot.mde:.2g}")
        ax.legend(fontsize=7, loc="best")
    ax.set_xticks(range(3), ["A", "B", "B - A\n(paired)"])
    ax.set_xlim(-0.5, 2.6)
    ax.set_ylabel("mean score per row (95% interval)")
    ax.grid(True, axis="y", alpha=0.3)


def _rows(ax, plot: ComparisonPlot) -> None:
    pairs = sorted(plot.pairs, key=lambda p: p[2] == 0)[:MAX_ROWS]
    jitter = random.Random(0)
    counts = {1: 0, -1: 0, 0: 0}
    for a, b, moved in pairs:
        counts[moved] += 1
        offset = jitter.uniform(-0.015, 0.015)
        colour = {1: "tab:green", -1: "tab:red", 0: "0.75"}[moved]
        ax.plot([0, 1], [a + offset, b + offset], "-", color=colour, alpha=0.6 if moved else 0.3, linewidth=1)
    words = ("fail → success", "success → fail", "same success") if plot.by_success else ("up", "down", "same")
    for moved, colour, word in zip((1, -1, 0), ("tab:green", "tab:red", "0.6"), words, strict=True):
        ax.plot([], [], "-", color=colour, label=f"{word}: {counts[moved]} row(s)")
    shown = f" (first {MAX_ROWS})" if len(plot.pairs) > MAX_ROWS else ""
    ax.set_title(f"per-row scores, A → B{shown}", fontsize=9, loc="left")
    ax.set_xticks([0, 1], ["A", "B"])
    ax.set_xlim(-0.15, 1.15)
    ax.set_ylabel("row score")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, axis="y", alpha=0.3)


def _verdict_colour(verdict: str) -> str:
    return {"improved": "tab:green", "regressed": "tab:red"}.get(verdict, "tab:orange")
