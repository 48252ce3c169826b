"""Samples from the model while it trains: greedy answers to the same training rows before the first
step, at a few steps through the run and at the end, scored by the environment. Row ids are
split-qualified ("train:example_000001") so they never collide with an evaluation's rows."""

from __future__ import annotations

from pathlib import Path

from flash_mcp.domain.runs.rundir import SAMPLES, append_jsonl
from flash_mcp.jobs.evaluator.generate import generate
from flash_mcp.jobs.trainer.rows import Rows

PROBE_ROWS = 8
PROBE_FRACTIONS = (0.25, 0.5, 0.75)
PROBE_TOKENS = 32


def probe_steps(total: int | None) -> set[int]:
    """Step 0 (before training) and a few steps through the run; the end is sampled separately."""
    if not total:
        return {0}
    return {0} | {round(total * f) for f in PROBE_FRACTIONS if 0 < round(total * f) < total}


def record_probe(rows: Rows, model, tokenizer, run_dir: Path, step: int, max_tokens: int) -> None:
    """Greedy answers for the first training rows at `step`, scored by the worker, appended to samples.jsonl."""
    prompts = rows.prompts[:PROBE_ROWS]
    was_training = model.training
    model.eval()
    try:
        answers = generate(model, tokenizer, prompts, max_tokens=max_tokens, temperature=0.0)
    finally:
        model.train(was_training)
    scored = rows.score([(index, answer.text) for index, (answer,) in enumerate(answers)])
    for row, prompt, (answer,), (reward, reason) in zip(rows.ids[:PROBE_ROWS], prompts, answers, scored, strict=True):
        append_jsonl(run_dir / SAMPLES, {
            "step": step, "row_id": row, "prompt": prompt[-1].get("content"),
            "completion": answer.text, "reward": reward, "reason": reason, "kind": "probe",
            "truncated": answer.truncated,
        })  # fmt: skip


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class Probe(_callback_base()):
    """Samples at step 0 and at `steps`; the trainer samples the end itself."""

    def __init__(self, rows: Rows, tokenizer, run_dir: Path, steps: set[int], max_tokens: int):
        self.rows, self.tokenizer, self.run_dir = rows, tokenizer, run_dir
        self.steps, self.max_tokens = steps, max_tokens

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if 0 in self.steps and model is not None:
            record_probe(self.rows, model, self.tokenizer, self.run_dir, 0, self.max_tokens)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.steps - {0} and model is not None:
            record_probe(self.rows, model, self.tokenizer, self.run_dir, state.global_step,
                         self.max_tokens)  # fmt: skip
        return control
