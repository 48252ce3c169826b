"""Reading a run: metric trends, the warning signs TRAINING.md teaches, a summary, a chart, a CSV."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flash_mcp.domain.runs.noise import describe, trend

if TYPE_CHECKING:
    from flash_mcp.domain.evaluation.checkpoints import CheckpointEval
# The evaluation store and the chart are imported where used: listing tools must not load them.

# How long a healthy run can go without a heartbeat, by plane and algorithm (seconds).
# Flash throttles training heartbeats to ~15 minutes (OPD reports at least every minute);
# the local trainer reports every step.
HEARTBEAT_NORMAL_S = {("flash", "sft"): 900, ("flash", "grpo"): 900, ("flash", "opd"): 60}
LOCAL_HEARTBEAT_NORMAL_S = 120
STUCK_POINTS = 3


def series(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Metric rows (one dict per step) as {name: [(step, value), ...]}."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("step", "time", "attempt") and isinstance(value, (int, float)):
                out.setdefault(key, []).append((int(row.get("step", 0)), float(value)))
    return out


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


def checkpoint_evals(home: Path, view: Any, rows: list[dict[str, Any]]) -> list[CheckpointEval]:
    """Finished held-out evaluations of this run's checkpoints; RUN/final sits at the run's last step."""
    from flash_mcp.domain.evaluation.checkpoints import for_run

    last = view.step or view.total_steps or max((int(r.get("step", 0)) for r in rows), default=0)
    return for_run(home, view.run_id, last)


def run_warnings(
    metrics: dict[str, list[tuple[int, float]]],
    evals: list[CheckpointEval],
    samples: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Every warning a run reader shows: the metric warning signs, the train/held-out divergence alarm and
    reward hacking seen in the rollouts (`hacking.py`). The run summary resource and get_run both call this,
    so they always say the same thing."""
    from flash_mcp.domain.evaluation.checkpoints import divergence
    from flash_mcp.domain.runs.hacking import suspect

    hack = suspect(samples or [])
    return warnings(metrics) + divergence(metrics, evals) + ([hack.text()] if hack else [])


def summary_markdown(
    view: Any, rows: list[dict[str, Any]], base_uri: str, evals: list[CheckpointEval], samples: list | None = None
) -> str:
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
        lines += ["", "| metric | first | latest | trend (change ± 2 SE of noise) |", "|---|---|---|---|"]
        for name, points in metrics.items():
            found = trend(name, [v for _, v in points])
            lines.append(f"| {name} | {found.first:.4g} | {found.last:.4g} | {describe(found)} |")
    lines += _evaluations(evals)
    found = run_warnings(metrics, evals, samples)
    if found:
        lines += ["", "## Warnings", *(f"- {w}" for w in found)]
    if view.notes:
        lines += ["", "## Notes", *(f"- {n}" for n in view.notes)]
    lines += ["", "## Read next", f"- {base_uri}/metrics (CSV), {base_uri}/chart.png", f"- {base_uri}/samples"]
    lines.append(f"- {base_uri}/logs" + (" (why it failed)" if view.state == "failed" else ""))
    if not evals and view.state == "done":
        lines.append(
            f"- did it improve? evaluate(target='{view.run_id}/final') and evaluate(target='base') on a held-out "
            "split with the same sampling, then compare_evaluations(base_eval, final_eval)"
        )
    return "\n".join(lines) + "\n"


def _evaluations(evals: list[CheckpointEval]) -> list[str]:
    """Held-out evaluations of the run's checkpoints, in step order (not ranked)."""
    if not evals:
        return []
    lines = ["", "## Held-out evaluations (by step; choose checkpoints with compare_evaluations, not training reward)"]
    for c in evals:
        interval = f" [{c.low:.3g}, {c.high:.3g}]" if c.low is not None and c.high is not None else ""
        success = f", success {c.success_rate:.0%}" if c.success_rate is not None else ""
        mean = "-" if c.mean is None else f"{c.mean:.3g}"
        lines.append(f"- {c.target} (step {c.step}, {c.eval_id}): mean {mean}{interval}{success}, {c.rows} rows")
    return lines


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


def chart_png(rows: list[dict[str, Any]], title: str, evals: list[CheckpointEval] | None = None) -> bytes:
    """Reward, loss and KL against step with noise bands, held-out evaluations marked at their checkpoints."""
    from flash_mcp.domain.runs.plots import EvalMark, run_chart_png

    marks = [
        EvalMark(step=c.step, mean=c.mean, low=c.low, high=c.high, label=c.target.split("/", 1)[1])
        for c in evals or []
        if c.mean is not None and c.low is not None and c.high is not None
    ]
    return run_chart_png(series(rows), title, marks)


def age(timestamp: float) -> str:
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
