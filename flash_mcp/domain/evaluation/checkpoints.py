"""Held-out evaluations of one run's checkpoints, and the divergence alarm.

Reads the evaluation store for finished evaluations whose target is RUN/step-N or RUN/final. The
alarm: training reward rose (or SFT loss fell) beyond its noise between the earliest and the latest
evaluated checkpoint, while the paired held-out comparison of those checkpoints did not say
`improved`. Training reward alone never picks a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flash_mcp.domain.evaluation import pairing, record, stats
from flash_mcp.domain.runs.noise import FALLING, RISING, trend

SCANNED = 500  # newest evaluations looked at for one run


@dataclass(frozen=True)
class CheckpointEval:
    eval_id: str
    target: str
    step: int
    mean: float | None
    low: float | None
    high: float | None
    success_rate: float | None
    rows: int
    evaluation: record.Evaluation


def for_run(home: Path, run_id: str, final_step: int | None) -> list[CheckpointEval]:
    """Finished evaluations of this run's checkpoints, by step (RUN/final at `final_step`), oldest first."""
    found = []
    for eval_id in record.list_eval_ids(home)[:SCANNED]:
        directory = record.evals_root(home) / eval_id
        spec = record.read_spec(directory)
        if spec is None or not spec.target.startswith(f"{run_id}/"):
            continue
        step = _step(spec.target, final_step)
        if step is None:
            continue
        evaluation = record.load_evaluation(directory)
        if evaluation is None or evaluation.state != "done":
            continue
        found.append(_checkpoint(step, evaluation))
    return sorted(found, key=lambda c: (c.step, c.evaluation.created_at))


def _checkpoint(step: int, evaluation: record.Evaluation) -> CheckpointEval:
    scores = [r.score for r in pairing.rows_by_id(evaluation).values()]
    interval = stats.bootstrap_interval(scores, seed=pairing.SEED) if scores else None
    return CheckpointEval(
        eval_id=evaluation.spec.eval_id, target=evaluation.spec.target, step=step,
        mean=stats.mean(scores) if scores else None, low=interval.low if interval else None,
        high=interval.high if interval else None, success_rate=evaluation.summary.success_rate, rows=len(scores),
        evaluation=evaluation,
    )  # fmt: skip


def _step(target: str, final_step: int | None) -> int | None:
    try:
        _, point = record.parse_target(target)
    except ValueError:
        return None
    if point == "final":
        return final_step
    return int(point[len("step-") :]) if point else None


def divergence(metrics: dict[str, list[tuple[int, float]]], evals: list[CheckpointEval]) -> list[str]:
    """Warn when training improved beyond its noise but held-out reward did not (two or more checkpoints)."""
    steps = sorted({c.step for c in evals})
    if len(steps) < 2:
        return []
    early = [c for c in evals if c.step == steps[0]][-1]
    late = [c for c in evals if c.step == steps[-1]][-1]
    differences = pairing.ruler_differences(early.evaluation.spec, late.evaluation.spec)
    if differences:
        return [
            f"held-out evaluations at step {early.step} and {late.step} used different rulers "
            f"({'; '.join(differences)}): evaluate every checkpoint on the same rows and sampling to compare them"
        ]
    trained = _training_improved(metrics, early.step, late.step)
    if trained is None:
        return []
    result = pairing.pair(early.evaluation, late.evaluation).result
    if result.verdict == stats.IMPROVED:
        return []
    low, high = result.interval.low, result.interval.high
    held = (
        f"{early.target} {_num(early.mean)} → {late.target} {_num(late.mean)}; paired difference "
        f"{result.difference:+.3g}, 95% interval [{low:+.3g}, {high:+.3g}]: {result.verdict}"
    )
    return [
        f"training {trained} between steps {early.step} and {late.step}, but held-out reward did not improve "
        f"detectably ({held}). The model may be fitting the training reward rather than the task: read the "
        "samples, and choose checkpoints by held-out evaluation (compare_evaluations), never by training reward"
    ]


def _training_improved(metrics: dict[str, list[tuple[int, float]]], start: int, end: int) -> str | None:
    """'reward rose' / 'loss fell' when that metric moved beyond its noise over [start, end], else None."""
    for name, good, verb in (("reward", RISING, "reward rose"), ("loss", FALLING, "loss fell")):
        points = metrics.get(name, [])
        window = [v for s, v in points if start <= s <= end]
        values = window if len(window) >= 3 else [v for _, v in points]
        if values and trend(name, values).trend == good:
            first, last = values[0], values[-1]
            return f"{verb} ({first:.3g} → {last:.3g})"
    return None


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
