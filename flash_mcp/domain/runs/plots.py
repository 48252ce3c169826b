"""The run chart, drawn with matplotlib's Agg canvas (imported only when a chart is drawn).

One panel per metric present among reward, loss and KL: the raw series as dots, a centred moving
average, and that average's 95% noise band (+-2 standard errors from the step-to-step noise), with
the trend call in the panel title. Held-out evaluations of the run's checkpoints are marked at their
steps with their 95% intervals: on the reward panel when there is one (same environment, same
scale), otherwise on a panel of their own.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from flash_mcp.domain.runs.noise import NOISE_Z, describe, step_noise, trend

PANELS = ("reward", "loss", "kl")
WIDTH_IN, PANEL_IN, DPI = 6.4, 2.3, 100


@dataclass(frozen=True)
class EvalMark:
    """A held-out evaluation of one checkpoint: its step, mean score and 95% interval."""

    step: int
    mean: float
    low: float
    high: float
    label: str


def smooth(values: list[float]) -> tuple[list[float], int]:
    """Centred moving average over about a tenth of the series (at least 1 point, odd), and its window."""
    window = max(1, len(values) // 10) | 1
    half = window // 2
    out = []
    for i in range(len(values)):
        part = values[max(0, i - half) : i + half + 1]
        out.append(math.fsum(part) / len(part))
    return out, window


def run_chart_png(metrics: dict[str, list[tuple[int, float]]], title: str, marks: list[EvalMark]) -> bytes:
    """Reward, loss and KL (those present) against step, with held-out evaluations marked, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [name for name in PANELS if metrics.get(name)]
    if marks and "reward" not in panels:
        panels.insert(0, "held-out score")
    if not panels:
        panels = ["(no metrics yet)"]
    figure = Figure(figsize=(WIDTH_IN, 0.5 + PANEL_IN * len(panels)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=10)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, panels, strict=True):
        _panel(ax, name, metrics.get(name, []))
        if name in ("reward", "held-out score") and marks:
            _marks(ax, marks)
    axes[-1].set_xlabel("step")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _panel(ax: Any, name: str, points: list[tuple[int, float]]) -> None:
    ax.set_ylabel(name)
    ax.grid(True, alpha=0.3)
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    if not finite and name == "(no metrics yet)":
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no metrics recorded yet", ha="center", va="center", fontsize=11, color="0.4")
        return
    if not finite:
        ax.set_title(name if name == "held-out score" else f"{name}: no finite values", fontsize=9, loc="left")
        return
    steps, values = [s for s, _ in finite], [v for _, v in finite]
    ax.plot(steps, values, ".", color="0.55", markersize=4, label="raw")
    found = trend(name, values)
    if len(values) >= 3:
        smoothed, window = smooth(values)
        band = NOISE_Z * step_noise(values) / math.sqrt(window)
        ax.plot(steps, smoothed, "-", color="tab:blue", linewidth=1.6, label=f"moving average ({window} steps)")
        ax.fill_between(steps, [v - band for v in smoothed], [v + band for v in smoothed], color="tab:blue",
                        alpha=0.18, linewidth=0, label="95% noise band")  # fmt: skip
    ax.set_title(f"{name}: {describe(found)}", fontsize=9, loc="left")
    ax.legend(fontsize=7, loc="best")


def _marks(ax: Any, marks: list[EvalMark]) -> None:
    steps = [m.step for m in marks]
    means = [m.mean for m in marks]
    below = [m.mean - m.low for m in marks]
    above = [m.high - m.mean for m in marks]
    ax.errorbar(steps, means, yerr=[below, above], fmt="D", color="tab:red", ecolor="tab:red", capsize=4,
                markersize=6, label="held-out evaluation (95% interval)")  # fmt: skip
    for mark in marks:
        ax.annotate(mark.label, (mark.step, mark.mean), textcoords="offset points", xytext=(6, 6), fontsize=7,
                    color="tab:red")  # fmt: skip
    ax.margins(x=0.08)
    ax.legend(fontsize=7, loc="best")
