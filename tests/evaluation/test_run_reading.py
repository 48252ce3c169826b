"""Reading a run with its held-out evaluations: trends within noise, the divergence alarm, the chart."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

from PIL import Image

from flash_mcp.domain.evaluation import checkpoints
from flash_mcp.domain.runs import health
from flash_mcp.planes.base import RunView
from tests.evaluation.records import store

RUN = "local-1-abc"


def view(algorithm: str = "grpo", step: int = 20) -> RunView:
    now = time.time()
    return RunView(run_id=RUN, plane="local", state="done", algorithm=algorithm, model="tiny", created_at=now,
                   updated_at=now, step=step, total_steps=step)  # fmt: skip


def rising_reward(steps: int = 20) -> list[dict]:
    rng = random.Random(2)
    return [
        {"step": s, "reward": 0.2 + 0.7 * s / steps + rng.gauss(0, 0.03), "kl": 0.01 * s} for s in range(1, steps + 1)
    ]


def held_out(home: Path, early: list[float], late: list[float]) -> None:
    store(home, "eval-step5", f"{RUN}/step-5", early)
    store(home, "eval-final", f"{RUN}/final", late)
    store(home, "eval-other", "local-2-def/final", late)  # another run's checkpoint: not this run's


def test_reward_rising_while_held_out_reward_stays_flat_raises_the_alarm(isolated_home: Path) -> None:
    rng = random.Random(5)
    scores = [float(rng.random() < 0.4) for _ in range(30)]
    held_out(isolated_home, scores, scores[::-1])
    rows = rising_reward()
    evals = health.checkpoint_evals(isolated_home, view(), rows)
    assert [(c.target, c.step) for c in evals] == [(f"{RUN}/step-5", 5), (f"{RUN}/final", 20)]
    found = health.run_warnings(health.series(rows), evals)
    assert len(found) == 1 and found[0].startswith("training reward rose (")
    assert "held-out reward did not improve detectably" in found[0] and "never by training reward" in found[0]
    summary = health.summary_markdown(view(), rows, f"flash://runs/{RUN}", evals)
    assert "| reward |" in summary and "| rising (" in summary
    assert "## Held-out evaluations (by step; choose checkpoints with compare_evaluations" in summary
    assert f"- {RUN}/step-5 (step 5, eval-step5): mean " in summary and "30 rows" in summary
    assert found[0] in summary and "best" not in summary


def test_no_alarm_when_held_out_reward_improves_too(isolated_home: Path) -> None:
    held_out(isolated_home, [0.0] * 25 + [1.0] * 5, [1.0] * 25 + [0.0] * 5)
    rows = rising_reward()
    evals = health.checkpoint_evals(isolated_home, view(), rows)
    assert health.run_warnings(health.series(rows), evals) == []


def test_checkpoints_measured_with_different_rulers_are_not_compared(isolated_home: Path) -> None:
    store(isolated_home, "eval-step5", f"{RUN}/step-5", [0.0] * 12, digest="sha256:old")
    store(isolated_home, "eval-final", f"{RUN}/final", [1.0] * 12)
    evals = checkpoints.for_run(isolated_home, RUN, 20)
    found = checkpoints.divergence(health.series(rising_reward()), evals)
    assert len(found) == 1 and "used different rulers" in found[0] and "environment digest" in found[0]


def test_a_quarter_percent_loss_drift_is_flat_and_a_done_run_without_evaluations_points_at_evaluate() -> None:
    rng = random.Random(11)
    rows = [{"step": s, "loss": 2.0 * (1 - 0.0025 * s / 29) + rng.gauss(0, 0.02)} for s in range(30)]
    summary = health.summary_markdown(view("sft", 29), rows, f"flash://runs/{RUN}", [])
    assert "| loss |" in summary and "| flat (within noise) (" in summary
    assert f"evaluate(target='{RUN}/final') and evaluate(target='base')" in summary
    assert "compare_evaluations" in summary


def test_the_run_chart_has_noise_bands_and_held_out_marks(isolated_home: Path) -> None:
    held_out(isolated_home, [float(i % 3 == 0) for i in range(30)], [float(i % 2 == 0) for i in range(30)])
    rows = rising_reward(40)
    for row in rows:
        row["loss"] = 1.0 / (1 + row["step"])
    evals = health.checkpoint_evals(isolated_home, view(step=40), rows)
    png = health.chart_png(rows, f"{RUN} · grpo · done", evals)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (640, 740) and 20_000 < len(png) < 400_000
    sft = health.chart_png([{"step": s, "loss": 1 / s} for s in range(1, 30)], "sft run", evals)
    assert Image.open(io.BytesIO(sft)).size == (640, 510), "held-out scores get their own panel without a reward"
    empty = health.chart_png([], "new run", [])
    assert Image.open(io.BytesIO(empty)).size == (640, 280)
