"""Trends that respect noise: a metric rises or falls only when the change exceeds its own noise.

The first and last thirds of a series are compared. The change is the difference of their means;
its standard error comes from the series' step-to-step noise, estimated from successive
differences (von Neumann): sigma^2 = var(x[t+1] - x[t]) / 2. Taking the variance of the
differences around their own mean removes a steady trend, so a smooth decline is not mistaken for
noise. The window means then have standard error sigma / sqrt(w) each, and the change
sqrt(2 / w) * sigma. A trend is called only beyond NOISE_Z standard errors.

Beyond its noise is not enough: a change must also be meaningful in size, at least MEANINGFUL (1%) of the
series' scale, the larger of its level (the first window's mean, in absolute value) and its range (max - min).
Entropy moving +0.0003 on 5.98 is beyond a tiny noise but 0.005% of its level: flat, not a trend. A reward
moving 0 -> 0.05 has level 0, so its range sets the scale and the move counts.
"""

from __future__ import annotations

import itertools
import math

from pydantic import BaseModel, Field

NOISE_Z = 2.0  # about a 95% two-sided band for the change between windows
MIN_POINTS = 3
MEANINGFUL = 0.01  # the smallest change called a trend, as a share of the series' scale
RISING, FALLING, FLAT, TOO_FEW = "rising", "falling", "flat (within noise)", "too few points"
NEGLIGIBLE = "flat (negligible change)"


class Trend(BaseModel):
    name: str
    points: int
    first: float
    last: float
    min: float
    max: float
    change: float = Field(description="Mean of the last third minus mean of the first third")
    noise: float = Field(description="Standard error of that change, from the step-to-step noise")
    trend: str = Field(
        description="rising or falling when |change| > 2 x noise and >= 1% of the series' scale (max of |level|, "
        "range); otherwise 'flat (within noise)', 'flat (negligible change)' or 'too few points'"
    )


def step_noise(values: list[float]) -> float:
    """The step-to-step noise sigma of a series, robust to a steady trend; 0 below three points."""
    steps = [b - a for a, b in itertools.pairwise(values)]
    if len(steps) < 2:
        return 0.0
    centre = math.fsum(steps) / len(steps)
    return math.sqrt(math.fsum((s - centre) ** 2 for s in steps) / (len(steps) - 1) / 2)


def meaningful(change: float, values: list[float], window: int) -> bool:
    """Whether `change` is at least MEANINGFUL of the series' scale: max(|first window's mean|, max - min)."""
    level = abs(math.fsum(values[:window]) / window)
    scale = max(level, max(values) - min(values))
    return abs(change) >= MEANINGFUL * scale


def direction(values: list[float]) -> tuple[str, float, float]:
    """(label, change, noise) for a series of finite values in step order."""
    if len(values) < MIN_POINTS:
        return TOO_FEW, (values[-1] - values[0]) if values else 0.0, 0.0
    window = max(1, len(values) // 3)
    head, tail = values[:window], values[-window:]
    change = math.fsum(tail) / window - math.fsum(head) / window
    noise = step_noise(values) * math.sqrt(2 / window)
    if change == 0 or abs(change) <= NOISE_Z * noise:
        return FLAT, change, noise
    if not meaningful(change, values, window):
        return NEGLIGIBLE, change, noise
    return (RISING if change > 0 else FALLING), change, noise


def trend(name: str, values: list[float]) -> Trend:
    """The trend of one metric; non-finite values (NaN losses) are left out of the call."""
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    label, change, noise = direction(finite)
    return Trend(
        name=name, points=len(values), first=values[0] if values else 0.0, last=values[-1] if values else 0.0,
        min=min(finite), max=max(finite), change=change, noise=noise, trend=label,
    )  # fmt: skip


def describe(found: Trend) -> str:
    """'rising (+0.46 ± 0.029)': the call, the change and its 95% noise band (2 standard errors)."""
    band = NOISE_Z * found.noise
    shown = "0" if band <= 1e-9 * max(1.0, abs(found.change)) else f"{band:.2g}"
    return f"{found.trend} ({found.change:+.3g} ± {shown})"
