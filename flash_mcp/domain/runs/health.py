"""Reading a run: metric trends, the warning signs TRAINING.md teaches, a summary, a chart, a CSV."""

from __future__ import annotations

import io
import math
import time
from typing import Any

from flash_mcp.domain.runs.noise import Trend, trend

# How long a healthy run can go without a heartbeat, by plane and algorithm (seconds).
# Flash throttles training heartbeats to ~15 minutes (OPD reports at least every minute);
# the local trainer reports every step.
HEARTBEAT_NORMAL_S = {("flash", "sft"): 900, ("flash", "grpo"): 900, ("flash", "opd"): 60}
LOCAL_HEARTBEAT_NORMAL_S = 120
STUCK_POINTS = 3


def thin(points: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = len(points) / limit
    return [*(points[int(i * stride)] for i in range(limit - 1)), points[-1]]


def warnings(metrics: dict[str, list[tuple[int, float]]]) -> list[str]:
    """The warning signs of a run that is not learning, in plain words."""
    found = []
    rewards = [v for _, v in metrics.get("reward", [])]
    if len(rewards) >= STUCK_POINTS and len(set(rewards[-STUCK_POINTS:])) == 1:
        level = rewards[-1]
        if level in (0.0, 1.0):
            found.append(f"reward is stuck at {level:g}: every recent group scored the same, so GRPO has no signal")
        if len(set(rewards)) == 1:
            found.append(f"reward never moved from {rewards[0]:g} over {len(rewards)} steps")
    zero_std = [v for _, v in metrics.get("frac_reward_zero_std", [])]
    if zero_std and zero_std[-1] >= 0.8:
        found.append(f"frac_reward_zero_std is {zero_std[-1]:.2f}: most groups carry no learning signal")
    truncation = [v for _, v in metrics.get("truncation_rate", [])]
    if len(truncation) >= STUCK_POINTS and truncation[-1] > 0.5 and trend("t", truncation).trend == "rising":
        found.append(f"truncation_rate is rising ({truncation[-1]:.2f}): completions hit max_completion_tokens")
    losses = [v for _, v in metrics.get("loss", [])]
    if any(not math.isfinite(v) for v in losses):
        found.append("loss is NaN or infinite: stop the run and lower the learning rate")
    return found


def heartbeat_normal_s(plane: str, algorithm: str) -> int:
    if plane == "local":
        return LOCAL_HEARTBEAT_NORMAL_S
    return HEARTBEAT_NORMAL_S.get((plane, algorithm), 900)


def summary_markdown(view: Any, rows: list[dict[str, Any]], base_uri: str) -> str:
    """A few hundred tokens: is the run healthy, and what to read next."""
    metrics = series(rows)
    lines = [f"# {view.run_id}: {view.state}" + (f" ({view.stage})" if view.stage else "")]
    trained = f" (trained: {view.trained_model})" if view.trained_model else ""
    lines.append(f"{view.plane} plane · {view.algorithm} · {view.model}{trained} · config {view.config or '-'}")
    if view.step is not None:
        total = f"/{view.total_steps}" if view.total_steps else ""
        lines.append(f"progress: step {view.step}{total}")
    if view.heartbeat_age_s is not None:
        normal = heartbeat_normal_s(view.plane, view.algorithm)
        verdict = "normal" if view.heartbeat_age_s <= normal else "LATE: check the logs before assuming it is dead"
        lines.append(f"heartbeat: {view.heartbeat_age_s:.0f}s ago ({verdict}; normal is under {normal}s here)")
    lines.append(f"cost: settled {_usd(view.cost_usd)}, quote {_usd(view.estimated_cost_usd)}")
    if view.error:
        lines.append(f"error: {view.error}")
    if metrics:
        lines += ["", "| metric | latest | best | trend |", "|---|---|---|---|"]
        for name, points in metrics.items():
            values = [v for _, v in points]
            best = min(values) if name in ("loss", "truncation_rate", "kl") else max(values)
            lines.append(f"| {name} | {values[-1]:.4g} | {best:.4g} | {trend(name, values).trend} |")
    found = warnings(metrics)
    if found:
        lines += ["", "## Warnings", *(f"- {w}" for w in found)]
    if view.notes:
        lines += ["", "## Notes", *(f"- {n}" for n in view.notes)]
    lines += ["", "## Read next", f"- {base_uri}/metrics (CSV), {base_uri}/chart.png", f"- {base_uri}/samples"]
    lines.append(f"- {base_uri}/logs" + (" (why it failed)" if view.state == "failed" else ""))
    return "\n".join(lines) + "\n"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    names = sorted({k for row in rows for k in row if k not in ("step", "time")})
    lines = [",".join(["step", *names])]
    for row in rows:
        lines.append(",".join([str(row.get("step", "")), *(_cell(row.get(n)) for n in names)]))
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


CHART_PANELS = ("reward", "loss", "kl")
_WIDTH, _PANEL_HEIGHT, _MARGIN = 640, 180, 48


def chart_png(rows: list[dict[str, Any]], title: str) -> bytes:
    """Reward, loss and KL (those present) against step, one panel each, as a PNG."""
    from PIL import Image, ImageDraw

    metrics = series(rows)
    panels = [name for name in CHART_PANELS if metrics.get(name)] or ["(no metrics yet)"]
    image = Image.new("RGB", (_WIDTH, 28 + _PANEL_HEIGHT * len(panels)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill="black")
    for index, name in enumerate(panels):
        _panel(draw, 28 + index * _PANEL_HEIGHT, name, metrics.get(name, []))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _panel(draw, top: int, name: str, points: list[tuple[int, float]]) -> None:
    left, right, bottom = _MARGIN, _WIDTH - 16, top + _PANEL_HEIGHT - 24
    draw.rectangle((left, top + 8, right, bottom), outline="gray")
    draw.text((left + 4, top + 10), name, fill="black")
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    if not finite:
        return
    steps, values = [s for s, _ in finite], [v for _, v in finite]
    low, high = min(values), max(values)
    first, last = min(steps), max(steps)
    span_v, span_s = (high - low) or 1.0, (last - first) or 1

    def xy(step: int, value: float) -> tuple[float, float]:
        x = left + 4 + (right - left - 8) * (step - first) / span_s
        y = bottom - 4 - (bottom - top - 20) * (value - low) / span_v
        return x, y

    coords = [xy(s, v) for s, v in finite]
    if len(coords) == 1:
        x, y = coords[0]
        draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill="navy")
    else:
        draw.line(coords, fill="navy", width=2)
    draw.text((4, top + 8), f"{high:.3g}", fill="gray")
    draw.text((4, bottom - 12), f"{low:.3g}", fill="gray")
    draw.text((left, bottom + 4), f"step {first}", fill="gray")
    draw.text((right - 60, bottom + 4), f"step {last}", fill="gray")


def age(timestamp: float) -> str:
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
